"""The augment step as the engine runs it: a shard at a time, one journal per stage.

The loop itself is tasks/augment (request processor, rate limiter, journal, presets).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sftforge.schemas.steps import AugmentStep

# Where the augment step's progress snapshots go; the flow points it at its progress display
# (the step runs in the flow's process: one rate limiter and one journal for all shards).
progress_sink: Callable[[dict[str, Any]], None] | None = None


class AugmentShards:
    """`apply_batch(records)` -> the same records, augmented (status done or failed)."""

    def __init__(self, config: AugmentStep, workdir: Path) -> None:
        self.config = config
        self.journal = workdir / "journal.sqlite"
        self._server: Any = None

    def _effective_config(self) -> AugmentStep:
        if not self.config.local_server or os.environ.get(self.config.base_url_env):
            return self.config
        if self._server is None:
            # Imported here: only the offline demo starts a server of its own.
            from llmock.testing import LLMockServer

            self._server = LLMockServer()
            self._server.start()
        return self.config.model_copy(update={"base_url": self._server.base_url("openai")})

    def apply_batch(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from sftforge.tasks.steps.augment.runner import augment_records

        wanted = self.config.datasets
        chosen = [i for i, r in enumerate(records) if wanted is None or r.get("dataset") in wanted]
        if not chosen:
            return records
        self.journal.parent.mkdir(parents=True, exist_ok=True)
        done = augment_records(
            [records[i] for i in chosen], self._effective_config(), self.journal, progress_sink
        )
        out = list(records)
        for i, record in zip(chosen, done, strict=True):
            out[i] = record
        return out

    def close(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
