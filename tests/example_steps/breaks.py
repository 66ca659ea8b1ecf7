"""A batch step that always fails (tests/test_api.py: a failed stage is RunFailed)."""

from __future__ import annotations

from typing import ClassVar, Literal

from sftforge.schemas.steps import CONVERSATION, register_step
from sftforge.tasks.base.step_protocol import BatchRunner, BatchStep, Record, StepContext


class Breaks(BatchRunner):
    def apply_batch(self, records: list[Record]) -> tuple[list[Record], bool]:
        raise RuntimeError("the step broke")


@register_step
class BreaksStep(BatchStep):
    kinds: ClassVar[tuple[str, ...]] = CONVERSATION
    step: Literal["breaks"]

    def make_batch(self, context: StepContext) -> BatchRunner:
        return Breaks()
