"""SelFee's "not a question" filter, as SelFee meant it.

SelFee's script computed the pairs whose answer is itself a question (ends with "?"),
meaning to drop them, and then saved that list instead of the rest. This is the filter
as intended: such pairs are rejected.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from sftforge.schemas.steps import INSTRUCTION, register_step
from sftforge.tasks.base.outcome import Rejected
from sftforge.tasks.base.step_protocol import RecordFn, RecordStep, StepContext


def filter_question(record: dict[str, Any]) -> dict[str, Any] | Rejected:
    answer = record.get("output", "").rstrip()
    if answer.endswith("?"):
        return Rejected("answer_is_question", answer[-80:])
    return record


def make_question_filter(datasets: list[str] | None) -> RecordFn:
    if datasets is None:
        return filter_question
    only = set(datasets)

    def filter_question_of(record: dict[str, Any]) -> dict[str, Any] | Rejected:
        return filter_question(record) if record.get("dataset") in only else record

    return filter_question_of


@register_step
class FilterQuestionStep(RecordStep):
    """SelFee's intent: drop pairs whose answer is itself a question (ends with "?")."""

    kinds: ClassVar[tuple[str, ...]] = INSTRUCTION
    reads: ClassVar[tuple[str, ...] | None] = ("output", "dataset")
    step: Literal["filter_question"]
    # Only records of these datasets are checked (SelFee: the ShareGPT pairs); None: every one.
    datasets: list[str] | None = None

    def make(self, context: StepContext) -> RecordFn:
        return make_question_filter(self.datasets)
