"""The augment step: SelFee's answer -> feedback -> revision loop as a batch step.

It runs shard after shard in the flow's process (one rate limiter and one journal for all
shards); the loop itself is the rest of this package (request processor, rate limiter,
journal, presets). Its numbers (iterations, truncation, failures, tokens, cost) reach the
manifest through `summarize` / `combine_summaries`, its live status through the context.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from typing import Any, ClassVar

from sftforge.schemas.steps import INSTRUCTION, register_step
from sftforge.tasks.base.extras import require_extra
from sftforge.tasks.base.step_protocol import BatchRunner, BatchStep, Record, StepContext
from sftforge.tasks.steps.augment.failures import describe_failures, error_class, fails_stage
from sftforge.tasks.steps.augment.options import AugmentOptions

log = logging.getLogger("sftforge.augment")

_COUNTS = ("failed", "iteration_truncated", "context_truncated")
_TOKENS = ("prompt_tokens", "completion_tokens")


@register_step
class AugmentStep(BatchStep, AugmentOptions):  # this order keeps `step`, `name` first
    """SelFee's answer -> feedback -> revision loop over an OpenAI-compatible API."""

    kinds: ClassVar[tuple[str, ...]] = INSTRUCTION
    summary_key: ClassVar[str | None] = "augment"
    # Only records of these datasets are augmented (SelFee: the `selfee` preset for Alpaca and
    # ShareGPT, `selfee_teacher` for FLAN, math and code); the others pass through unchanged.
    datasets: list[str] | None = None
    # Demo: with no OPENAI_BASE_URL set, start a local llmock server and use it.
    local_server: bool = False

    def output_kind(self, input_kind: str) -> str:
        return "augmented"

    def required_extras(self) -> dict[str, tuple[str, str]]:
        if self.local_server and not os.environ.get(self.base_url_env):
            return {"llmock.testing": ("dev", "augment with local_server: true")}
        return {}

    def make_batch(self, context: StepContext) -> AugmentShards:
        return AugmentShards(self, context)

    @classmethod
    def combine_summaries(cls, parts: list[dict[str, Any]]) -> dict[str, Any]:
        total: dict[str, Any] = {key: 0 for key in (*_COUNTS, *_TOKENS)}
        total["cost"] = 0.0
        iterations: Counter[str] = Counter()
        by_error: Counter[str] = Counter()
        for part in parts:
            for key in (*_COUNTS, *_TOKENS, "cost"):
                total[key] += part[key]
            iterations.update(part["iterations"])
            # .get: markers written before failures were classified have no such key.
            by_error.update(part.get("failed_by_error") or {})
        total["cost"] = round(total["cost"], 6)
        total["iterations"] = dict(sorted(iterations.items(), key=lambda kv: int(kv[0])))
        total["failed_by_error"] = dict(sorted(by_error.items()))
        return total


class AugmentShards(BatchRunner):
    """`apply_batch(records)` -> the same records, augmented (status done or failed)."""

    def __init__(self, config: AugmentStep, context: StepContext) -> None:
        self.config = config
        self.journal = context.work_dir / "journal.sqlite"
        self.report = context.report
        self.records_done = context.records_done
        self._server: Any = None

    def _effective_config(self) -> AugmentStep:
        if not self.config.local_server or os.environ.get(self.config.base_url_env):
            return self.config
        if self._server is None:
            # Imported here: only the offline demo starts a server of its own.
            LLMockServer = require_extra(
                "llmock.testing", "dev", "augment with local_server: true"
            ).LLMockServer

            self._server = LLMockServer()
            self._server.start()
        return self.config.model_copy(update={"base_url": self._server.base_url("openai")})

    def _chosen(self, records: list[Record]) -> list[int]:
        wanted = self.config.datasets
        return [i for i, r in enumerate(records) if wanted is None or r.get("dataset") in wanted]

    def apply_batch(self, records: list[Record]) -> tuple[list[Record], bool]:
        from sftforge.tasks.steps.augment.display import status_line
        from sftforge.tasks.steps.augment.runner import augment_records

        chosen = self._chosen(records)
        if not chosen:
            return records, True
        self.journal.parent.mkdir(parents=True, exist_ok=True)
        report, advance = self.report, self.records_done
        skipped = len(records) - len(chosen)  # other datasets' records: done at once

        def on_progress(snap: dict[str, Any]) -> None:
            if report is not None:
                report(status_line(snap))
            if advance is not None:  # the stage's bar, per record
                advance(skipped + snap["records_done"] + snap["records_failed"])

        done = augment_records(
            [records[i] for i in chosen],
            self._effective_config(),
            self.journal,
            None if report is None and advance is None else on_progress,
        )
        out = list(records)
        for i, record in zip(chosen, done, strict=True):
            out[i] = record
        # Written (nothing is dropped) but not complete when a record failed: the next run
        # retries the failed records, and the journal answers the calls that had succeeded.
        return out, not any(record["status"] == "failed" for record in done)

    def summarize(self, records: list[Record]) -> dict[str, Any]:
        """Per shard: iterations, truncation, failures (and their classes), tokens and cost."""
        iterations: Counter[str] = Counter()
        by_error: Counter[str] = Counter()
        summary: dict[str, Any] = {key: 0 for key in (*_COUNTS, *_TOKENS)}
        summary["cost"] = 0.0
        for i in self._chosen(records):
            record = records[i]
            if record.get("status") is None:
                continue
            iterations[str(record.get("iteration") or 0)] += 1
            if record["status"] == "failed":
                summary["failed"] += 1
                by_error[error_class(record.get("error"))] += 1
            summary["iteration_truncated"] += bool(record.get("iteration_truncated"))
            summary["context_truncated"] += bool(record.get("truncated"))
            usage = record.get("usage") or {}
            for key in _TOKENS:
                summary[key] += int(usage.get(key) or 0)
            summary["cost"] += float(usage.get("cost") or 0.0)
        summary["cost"] = round(summary["cost"], 6)
        summary["iterations"] = dict(sorted(iterations.items(), key=lambda kv: int(kv[0])))
        summary["failed_by_error"] = dict(sorted(by_error.items()))
        return summary

    def verdict(self, summary: dict[str, Any]) -> str | None:
        """Fails the stage once `fail_at_failed_share` of its augmented records failed; fewer
        failures are only reported (they stay in the data, status failed, retried next run)."""
        failed = int(summary.get("failed") or 0)
        if not failed:
            return None
        total = sum(summary.get("iterations", {}).values())
        message = describe_failures(
            failed, total, summary.get("failed_by_error") or {}, self.config
        )
        if fails_stage(failed, total, self.config.fail_at_failed_share):
            return message
        log.warning("augment: %s; kept with status failed, a rerun retries them", message)
        return None

    def close(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
