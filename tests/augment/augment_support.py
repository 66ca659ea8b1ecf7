"""Helpers shared by the augment tests (imported by name: tests/augment is on sys.path)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sftforge.tasks.steps.augment.step import AugmentStep

SELFEE_FILE = (
    Path(__file__).resolve().parents[2] / "../shared/data/selfee_conala_feedback.jsonl"
).resolve()

# Looks like a real key, so a leak would be found by the scan in test_augment_secrets.
SECRET_KEY = "sk-test-9f8e7d6c5b4a39281706f5e4d3c2b1a0"


def fast_config(**overrides: Any) -> AugmentStep:
    """A step that does not make tests wait: no ramp, short backoff, small completions."""
    values: dict[str, Any] = {
        "step": "augment",
        "rpm": 60_000,
        "tpm": 10_000_000,
        "ramp_seconds": 0,
        "backoff_base_seconds": 0.05,
        "backoff_max_seconds": 0.5,
        "max_tokens": {"answer": 64, "feedback": 32, "revision": 64},
        "concurrency": 4,
    }
    values.update(overrides)
    return AugmentStep.model_validate(values)


def make_records(n: int, *, stop_every: int = 2, prefix: str = "question") -> list[dict]:
    """Instruction records. With an echo server, the feedback repeats the start of its prompt
    (the instruction), so records whose instruction says "no need" stop after one pair and the
    others run to the cap."""
    records = []
    for i in range(n):
        words = f"{prefix} {i}: write a function that adds {i} to a number"
        if stop_every and i % stop_every == 0:
            words += " (no need to explain)"
        records.append(
            {
                "id": f"r{i}",
                "source": "test",
                "dataset": "unit",
                "instruction": words,
                "input": "",
                "output": "",
            }
        )
    return records
