"""The one entry point tasks/outputs.py calls for every training output of a recipe."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sftforge.schemas.training import (
    CalibrationOutput,
    InstructionTokensOutput,
    OpenChatTokensOutput,
    TrainingOutput,
    TrlOutput,
)
from sftforge.tasks.outputs.calibration import write_calibration
from sftforge.tasks.outputs.instruction_tokens import write_instruction_tokens
from sftforge.tasks.outputs.prompt_templates import TEMPLATE_KINDS
from sftforge.tasks.outputs.token_files import write_openchat_tokens
from sftforge.tasks.outputs.trainer_exports import write_export

_ANY = frozenset({"conversation", "instruction", "augmented"})


def kinds_for(config: TrainingOutput) -> frozenset[str]:
    """The record kinds an output can be written from (checked when a recipe is validated)."""
    if isinstance(config, InstructionTokensOutput):
        return TEMPLATE_KINDS[config.template]
    if isinstance(config, TrlOutput) and config.style == "prompt_completion":
        return _ANY  # standard form: single-turn conversations only, others counted as skipped
    return _ANY


def check_kind(config: TrainingOutput, kind: str) -> None:
    """Raise ValueError (one line, for `sftforge validate`) if `kind` records cannot be used."""
    allowed = kinds_for(config)
    if kind not in allowed:
        what = (
            f"{config.format} template {config.template!r}"
            if isinstance(config, InstructionTokensOutput)
            else config.format
        )
        raise ValueError(
            f"{what} needs {' or '.join(sorted(allowed))} records; "
            f"this recipe's final records are {kind}"
        )


def write_training_output(
    out: Path,
    config: TrainingOutput,
    records: Callable[[], Iterator[dict[str, Any]]],
    kind: str,
    seed: int,
    splitter: Callable[[dict[str, Any]], str],
) -> dict[str, Any]:
    """Write one training output under OUT/export/; return its manifest entry.

    `records()` gives a fresh iterator over the final records each call; `splitter(record)`
    says "train" or "eval" (token files apply it per conversation, before any splitting).
    The entry: {"format", "name", "path", "files": [...], "counts": {...}, …}.
    """
    check_kind(config, kind)
    if isinstance(config, OpenChatTokensOutput):
        return write_openchat_tokens(out, config, records, splitter)
    if isinstance(config, InstructionTokensOutput):
        return write_instruction_tokens(out, config, records, splitter)
    if isinstance(config, CalibrationOutput):
        return write_calibration(out, config, records, seed)
    return write_export(out, config, records, splitter)
