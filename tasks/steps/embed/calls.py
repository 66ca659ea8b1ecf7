"""One shard's texts -> their vectors, through the augment step's API machinery.

Texts go in requests of `batch_size` inputs to an OpenAI-compatible `/embeddings` endpoint,
each request a journaled call (tasks/steps/augment/processor.py): keyed by its content, so a
rerun after a crash, or any later run asking for the same texts, reads the journal instead of
paying again; sent under the same rate limiter (rpm/tpm, learned from response headers),
retries, budget and Ctrl-C handling as augment's chat calls. Vectors are asked for as base64
float32 (what the OpenAI SDK asks for: a quarter of the JSON floats' bytes in the journal);
a server that answers with float lists is read too.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from sftforge.tasks.steps.embed.step import EmbedStep

log = logging.getLogger("sftforge.embed")


@dataclass
class Embedded:
    """A shard's vectors (rows of failed requests are absent) and what they cost."""

    vectors: dict[int, np.ndarray] = field(default_factory=dict)  # text index -> float32
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    calls_sent: int = 0
    calls_cached: int = 0
    prompt_tokens: int = 0
    cost: float = 0.0
    truncated: int = 0


class BadVectors(ValueError):
    """An embeddings response whose vectors do not fit its request (the request fails)."""


def decode_vectors(body: str, expected: int) -> list[np.ndarray]:
    """The `data` of an embeddings response, in input order, as float32 vectors."""
    data = json.loads(body)["data"]
    if len(data) != expected:
        raise BadVectors(f"embeddings: {len(data)} vectors for {expected} inputs")
    vectors: list[np.ndarray] = []
    for item in sorted(data, key=lambda d: d["index"]):
        value = item["embedding"]
        if isinstance(value, str):
            vectors.append(np.frombuffer(base64.b64decode(value), dtype="<f4").copy())
        else:
            vectors.append(np.asarray(value, dtype=np.float32))
    if len({v.shape for v in vectors}) > 1:
        raise BadVectors("embeddings: vectors of different lengths in one response")
    return vectors


def fit_text(count: Any, text: str, limit: int) -> tuple[str, bool]:
    """`text` cut at its end to `limit` tokens (the model's input limit), and whether it was."""
    tokens = count(text)
    if tokens <= limit:
        return text, False
    keep = len(text)
    while tokens > limit and keep > 0:
        keep = int(keep * limit / tokens * 0.97)
        tokens = count(text[:keep])
    return text[:keep], True


def embed_texts(texts: list[str], config: EmbedStep, journal_path: Path) -> Embedded:
    """Vectors for `texts` (one shard), every finished request journaled."""
    from sftforge.tasks.steps.augment.client import credentials

    api_key, base_url = credentials(config)  # type: ignore[arg-type]
    work = _embed(texts, config, journal_path, api_key, base_url)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(work)
    # Called from inside an event loop (an async Prefect task): run ours on a fresh thread.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, work).result()


async def _embed(
    texts: list[str], config: EmbedStep, journal_path: Path, api_key: str, base_url: str | None
) -> Embedded:
    from sftforge.tasks.steps.augment.budget import Ledger
    from sftforge.tasks.steps.augment.client import Redactor, make_client
    from sftforge.tasks.steps.augment.journal import Journal, call_key
    from sftforge.tasks.steps.augment.processor import CallFailed, CallSpec, Processor
    from sftforge.tasks.steps.augment.rate_limit import RateLimiter
    from sftforge.tasks.steps.augment.runner import install_interrupt
    from sftforge.tasks.steps.augment.tokens import make_counter

    counter = make_counter(config.model, "estimate")
    result = Embedded()
    fitted = [fit_text(counter.count, text, config.max_input_tokens) for text in texts]
    result.truncated = sum(cut for _, cut in fitted)
    with Journal(journal_path) as journal:
        client = make_client(config, api_key, base_url)  # type: ignore[arg-type]
        limiter = RateLimiter(
            config.rpm, config.tpm, ramp_seconds=config.ramp_seconds, ramp_start=0.1
        )
        ledger = Ledger(config.prices.get(config.model), config.max_cost, journal.spent)
        processor = Processor(
            client,
            journal,
            limiter,
            ledger,
            concurrency=config.concurrency,
            max_attempts=config.max_attempts,
            backoff_base=config.backoff_base_seconds,
            backoff_max=config.backoff_max_seconds,
            redact=Redactor(api_key),
        )
        interrupted = install_interrupt(processor)

        async def one_request(start: int) -> None:
            chunk = [text or " " for text, _ in fitted[start : start + config.batch_size]]
            request: dict[str, Any] = {
                "model": config.model,
                "input": chunk,
                "encoding_format": "base64",
            }
            if config.dimensions is not None:
                request["dimensions"] = config.dimensions
            spec = CallSpec(
                key=call_key(request, 0),
                request=request,
                prompt_tokens=sum(counter.count(t) for t in chunk),
                max_tokens=0,
                path="/embeddings",
            )
            try:
                answer = await processor.call(spec)
                vectors = decode_vectors(answer.body, len(chunk))
            except (CallFailed, ValueError, KeyError, TypeError) as exc:
                result.failed += len(chunk)
                kind = type(exc).__name__ if not isinstance(exc, CallFailed) else str(exc)[:80]
                result.errors[kind] = result.errors.get(kind, 0) + len(chunk)
                return
            for offset, vector in enumerate(vectors):
                result.vectors[start + offset] = vector

        try:
            starts = list(range(0, len(texts), config.batch_size))
            await asyncio.gather(*(one_request(start) for start in starts))
        finally:
            interrupted.restore()
            await client.close()
        result.calls_sent = processor.stats.sent
        result.calls_cached = processor.stats.cached
        result.prompt_tokens = ledger.prompt_tokens
        result.cost = ledger.run_cost
        if interrupted.fired:
            raise KeyboardInterrupt(
                f"embed interrupted: finished calls are saved in {journal_path}; rerun the "
                "same command to resume (no finished call is sent again)"
            )
    return result
