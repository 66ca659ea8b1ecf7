"""The embed step: one vector per record, from any OpenAI-compatible `/embeddings` endpoint.

    - step: embed
      text: first_user            # or user, all; an instruction's instruction + input
      model: text-embedding-3-small
      dimensions: 256

A batch step (shard after shard in the flow's process, one rate limiter and one journal for
all shards, as `augment`): records pass through unchanged; each shard's vectors go to
`OUT/embeddings/<stage>/` keyed by record id (tasks/steps/embed/vectors.py), where `sftforge
map` and semantic decontamination read them. A step rather than an output, so that it gets
the stage machinery: resumable shard by shard (a rerun reuses the stage's finished shards and
their vector files; the journal answers every request already paid for), Ctrl-C handling,
counts in the manifest, and a place before later steps that read its vectors.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from sftforge.schemas.steps import register_step
from sftforge.tasks.base.step_protocol import BatchRunner, BatchStep, Record, StepContext
from sftforge.tasks.steps.augment.failures import fails_stage
from sftforge.tasks.steps.augment.options import ApiClientOptions, Price
from sftforge.tasks.steps.embed.vectors import vectors_part, write_vectors
from sftforge.tasks.steps.record_texts import record_parts

log = logging.getLogger("sftforge.embed")

# Public list prices (US dollars per million input tokens) at the time of writing.
EMBEDDING_PRICES: dict[str, Price] = {
    "text-embedding-3-small": Price(input=0.02, output=0.0),
    "text-embedding-3-large": Price(input=0.13, output=0.0),
    "text-embedding-ada-002": Price(input=0.10, output=0.0),
}
_COUNTS = ("embedded", "failed", "truncated", "calls_sent", "calls_cached", "prompt_tokens")


class EmbeddingApi(ApiClientOptions):
    """An OpenAI-compatible embeddings endpoint and how to call it (the embed step's options,
    and semantic decontamination's `embedding:`)."""

    model: str = "text-embedding-3-small"
    # A sentence-transformers model (a local path or an HF id already in the cache) to compute
    # the vectors here instead of calling the API (the `embeddings-local` extra); the client
    # options below are then unused.
    local_model: str | None = None
    # Shorter vectors (text-embedding-3 models); None: the model's own size.
    dimensions: int | None = Field(default=None, ge=1)
    batch_size: int = Field(default=64, ge=1, le=2048)  # inputs per request
    # Longer texts are cut at their end to this many (estimated) tokens: OpenAI's limit.
    max_input_tokens: int = Field(default=8191, ge=16)

    # The client (ApiClientOptions), the limits, retries and the budget mean what they mean
    # for `augment` (tasks/steps/augment/options.py); the defaults suit an embeddings endpoint.
    timeout_seconds: float = Field(default=60.0, gt=0)
    concurrency: int = Field(default=4, ge=1)
    rpm: int | None = Field(default=3000, ge=1)
    tpm: int | None = Field(default=1_000_000, ge=1)
    ramp_seconds: float = Field(default=10.0, ge=0)
    max_attempts: int = Field(default=6, ge=1, le=10)
    backoff_base_seconds: float = Field(default=1.0, gt=0)
    backoff_max_seconds: float = Field(default=60.0, gt=0)
    prices: dict[str, Price] = Field(default_factory=lambda: dict(EMBEDDING_PRICES))
    max_cost: float | None = Field(default=None, gt=0)


def local_model_extra(api: EmbeddingApi) -> dict[str, tuple[str, str]]:
    """What a run must be able to import for `api` (checked before it starts)."""
    if api.local_model is None:
        return {}
    return {"sentence_transformers": ("embeddings-local", f"local_model {api.local_model}")}


@register_step
class EmbedStep(BatchStep, EmbeddingApi):
    """One vector per record from an OpenAI-compatible embeddings API (kept beside the data)."""

    step: Literal["embed"]
    # The text embedded: the first user turn, the user turns, or every turn (joined by
    # newlines); for instructions the instruction and input, or with `all` the output too.
    text: Literal["first_user", "user", "all"] = "first_user"
    # The stage fails once this share of its records got no vector (1.0: only when none
    # did -- a wrong key or URL); fewer are reported, and a rerun asks for them again.
    fail_at_failed_share: float | None = Field(default=1.0, ge=0, le=1)

    summary_key: ClassVar[str | None] = "embed"

    def required_extras(self) -> dict[str, tuple[str, str]]:
        return local_model_extra(self)

    def make_batch(self, context: StepContext) -> EmbedShards:
        return EmbedShards(self, context)

    @classmethod
    def combine_summaries(cls, parts: list[dict[str, Any]]) -> dict[str, Any]:
        total: dict[str, Any] = {key: sum(int(p.get(key) or 0) for p in parts) for key in _COUNTS}
        total["cost"] = round(sum(float(p.get("cost") or 0.0) for p in parts), 6)
        total["dimensions"] = max((int(p.get("dimensions") or 0) for p in parts), default=0)
        errors: dict[str, int] = {}
        for part in parts:
            for error, n in (part.get("errors") or {}).items():
                errors[error] = errors.get(error, 0) + n
        total["errors"] = dict(sorted(errors.items()))
        return total


def record_text(record: Record, scope: str) -> str:
    """The text of a record that is embedded."""
    return "\n".join(text for _, text in record_parts(record, scope))  # type: ignore[arg-type]


class EmbedShards(BatchRunner):
    """`apply_batch(records)` -> the same records; their vectors written for the shard."""

    def __init__(self, config: EmbedStep, context: StepContext) -> None:
        self.config = config
        self.journal = context.work_dir / "journal.sqlite"
        self.out = context.out_dir
        self.stage = config.stage
        self.shard = 0
        self.report = context.report
        self._summary: dict[str, Any] = {}

    def start_shard(self, shard: int) -> None:
        self.shard = shard

    def apply_batch(self, records: list[Record]) -> tuple[list[Record], bool]:
        from sftforge.tasks.steps.embed.calls import Embedded, embed_texts

        texts = [record_text(record, self.config.text) for record in records]
        done = embed_texts(texts, self.config, self.journal) if texts else Embedded()
        rows = sorted(done.vectors)
        width = len(done.vectors[rows[0]]) if rows else 0
        matrix = np.vstack([done.vectors[i] for i in rows]) if rows else np.zeros((0, width))
        ids = [str(records[i]["id"]) for i in rows]
        write_vectors(vectors_part(self.out, self.stage, self.shard), ids, matrix)
        self._summary = {
            "embedded": len(rows),
            "failed": done.failed,
            "truncated": done.truncated,
            "calls_sent": done.calls_sent,
            "calls_cached": done.calls_cached,
            "prompt_tokens": done.prompt_tokens,
            "cost": round(done.cost, 6),
            "dimensions": width,
            "errors": dict(done.errors),
        }
        if self.report is not None:
            self.report(
                f"{len(rows)} vectors, {done.calls_sent} requests sent, "
                f"{done.calls_cached} from the journal, ${done.cost:.4f}"
            )
        # Written either way; incomplete while a record has no vector: the next run asks for
        # those again (the journal answers the requests that had succeeded).
        return records, done.failed == 0

    def summarize(self, records: list[Record]) -> dict[str, Any]:
        return dict(self._summary)

    def verdict(self, summary: dict[str, Any]) -> str | None:
        failed = int(summary.get("failed") or 0)
        if not failed:
            return None
        total = failed + int(summary.get("embedded") or 0)
        errors = ", ".join(f"{e} ({n})" for e, n in (summary.get("errors") or {}).items())
        message = f"embed: {failed} of {total} records got no vector: {errors}"
        if fails_stage(failed, total, self.config.fail_at_failed_share):
            return message
        log.warning("%s; a rerun asks for them again", message)
        return None
