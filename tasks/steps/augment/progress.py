"""What the runner reports about a run: progress snapshots while it runs, a log line at the end."""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sftforge.tasks.steps.augment.batch import BatchProcessor
from sftforge.tasks.steps.augment.budget import Ledger
from sftforge.tasks.steps.augment.processor import Processor

log = logging.getLogger("sftforge.augment")

ProgressFn = Callable[[dict[str, Any]], None]

PROGRESS_EVERY_SECONDS = 0.5


class RunProgress:
    """Snapshots of a run for `on_progress` (display.py renders them): every
    PROGRESS_EVERY_SECONDS while it runs, and once at the end."""

    def __init__(
        self,
        records: list[dict],
        results: list[dict | None],
        processor: Processor | BatchProcessor,
        started: float,
        callback: ProgressFn | None,
    ) -> None:
        self.records = records
        self.results = results
        self.processor = processor
        self.started = started
        self.callback = callback

    def snapshot(self) -> dict[str, Any]:
        finished = [r for r in self.results if r is not None]
        stats, ledger = self.processor.stats, self.processor.ledger
        total = len(self.records)
        cost = ledger.run_cost
        return {
            "records_total": total,
            "records_done": sum(1 for r in finished if r["status"] == "done"),
            "records_failed": sum(1 for r in finished if r["status"] == "failed"),
            "calls_sent": stats.sent,
            "calls_cached": stats.cached,
            "records_from_journal": stats.records_from_journal,
            "calls_in_flight": stats.in_flight,
            "calls_failed": stats.failed,
            "retries": stats.retries,
            "rate_limited": stats.rate_limited,
            "prompt_tokens": ledger.prompt_tokens,
            "completion_tokens": ledger.completion_tokens,
            "cost": round(cost, 6),
            "cost_projected": round(cost * total / len(finished), 6) if finished else None,
            "iterations": dict(
                sorted(collections.Counter(r["iteration"] for r in finished).items())
            ),
            "elapsed_seconds": round(time.monotonic() - self.started, 3),
            "stopped": self.processor.stop_reason,
            **self.processor.limiter.rates(),
        }

    def emit(self) -> None:
        if self.callback is not None:
            self.callback(self.snapshot())

    async def loop(self) -> None:
        while True:
            await asyncio.sleep(PROGRESS_EVERY_SECONDS)
            try:
                self.emit()
            except Exception:  # a broken display must not stop paid work
                log.exception("augment: progress callback failed; no more progress reports")
                return


def log_summary(
    results: list[dict],
    processor: Processor | BatchProcessor,
    ledger: Ledger,
    journal_path: Path,
    seconds: float,
) -> None:
    stats = processor.stats
    failed = sum(1 for r in results if r["status"] == "failed")
    log.info(
        "augment: %d records (%d failed) in %.1fs; %d calls sent, %d from the journal, "
        "%d retries; %d prompt + %d completion tokens, $%.4f; journal %s",
        len(results),
        failed,
        seconds,
        stats.sent,
        stats.cached,
        stats.retries,
        ledger.prompt_tokens,
        ledger.completion_tokens,
        ledger.run_cost,
        journal_path,
    )
    if processor.stop_reason:
        log.warning("augment: stopped early: %s", processor.stop_reason)
