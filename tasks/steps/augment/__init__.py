"""SelFee's answer -> feedback -> revision augmentation over an OpenAI-compatible API.

One concern per module: `presets` (prompts, stop rule), `postprocess`, `tokens` (counting and
truncation), `rate_limit`, `retry`, `budget`, `journal`, `client`, `processor` (sending calls
online), `batch` (rounds of calls as Batch API jobs), `batch_api` (its request files and
calls), `loop` (one record's chain), `progress` (the run's snapshots and summary), `display`
and `runner` (the entry point).
"""

from __future__ import annotations

from typing import Any

# The step itself (its options register here); the loop's modules load when it runs.
from sftforge.tasks.steps.augment.step import AugmentStep

__all__ = ["AugmentInterrupted", "AugmentStep", "augment_records"]
_LAZY = ("AugmentInterrupted", "augment_records")


def __getattr__(name: str) -> Any:
    # Lazy, so that importing a light module (journal, presets) does not load the HTTP client.
    if name in _LAZY:
        from sftforge.tasks.steps.augment import runner

        return getattr(runner, name)
    raise AttributeError(name)
