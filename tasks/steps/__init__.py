"""Step registry: a recipe's step config -> the function that applies it to one record."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from sftforge.schemas.steps import (
    AugmentStep,
    CheckStructureStep,
    DedupExactStep,
    FilterBlockedWordsStep,
    FilterLanguageStep,
    FilterModelStep,
    FilterQuestionStep,
    HtmlToMarkdownStep,
    SamplePerGroupStep,
    StepBase,
)
from sftforge.tasks.base.outcome import Rejected
from sftforge.tasks.steps.check_structure import check_structure
from sftforge.tasks.steps.dedup_exact import ExactDeduplicator
from sftforge.tasks.steps.filter_blocked_words import make_blocked_words_filter
from sftforge.tasks.steps.filter_language import make_language_filter
from sftforge.tasks.steps.filter_model import make_model_filter
from sftforge.tasks.steps.filter_question import filter_question
from sftforge.tasks.steps.html_to_markdown import convert_messages
from sftforge.tasks.steps.sample_per_group import GroupSampler

StepFn = Callable[[dict[str, Any]], "dict[str, Any] | Rejected"]


def build_step(config: StepBase | AugmentStep, seed: int = 0, workdir: Path | None = None) -> Any:
    """A fresh step function (stateful steps like dedup get fresh state).

    Most steps are `record -> record | Rejected`; a step that works a shard at a time (augment)
    is an object with `apply_batch(records) -> records`, keeping its state under `workdir`.
    """
    match config:
        case HtmlToMarkdownStep():
            return partial(convert_messages, roles=list(config.roles))
        case CheckStructureStep():
            return partial(
                check_structure,
                min_messages=config.min_messages,
                min_chars=config.min_chars,
                max_chars=config.max_chars,
            )
        case FilterBlockedWordsStep():
            return make_blocked_words_filter(config.words)
        case DedupExactStep():
            return ExactDeduplicator()
        case FilterModelStep():
            return make_model_filter(config.models, config.keep_unknown)
        case FilterLanguageStep():
            return make_language_filter(
                config.languages,
                config.min_score,
                list(config.scopes),
                config.model_path,
                config.max_chars,
                config.strip_code,
                config.datasets,
            )
        case FilterQuestionStep():
            return filter_question
        case SamplePerGroupStep():
            return GroupSampler(config.by, config.max, config.datasets, seed)
        case AugmentStep():
            from sftforge.tasks.steps.augment.step import AugmentShards

            return AugmentShards(config, workdir or Path(".sftforge") / "augment" / config.stage)
    raise ValueError(f"no implementation for step {config!r}")
