"""Calls to an OpenAI-compatible API outside `augment`'s loop: embeddings, and the semantic
decontamination's judge, through the augment step's machinery.

`api_session` opens what every call needs: the journal (each request keyed by its content,
so a rerun after a crash, or any later run asking the same thing, reads the journal instead
of paying again), the rate limiter (rpm/tpm, learned from response headers), retries, the
budget and Ctrl-C handling, as augment's chat calls have them. `embed_texts` sends texts in
requests of `batch_size` inputs and asks for base64 float32 vectors (what the OpenAI SDK asks
for: a quarter of the JSON floats' bytes in the journal); a server that answers with float
lists is read too.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import functools
import json
import logging
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

if TYPE_CHECKING:
    from sftforge.tasks.steps.augment.options import Price
    from sftforge.tasks.steps.augment.processor import Processor
    from sftforge.tasks.steps.embed.step import EmbeddingApi

log = logging.getLogger("sftforge.embed")
T = TypeVar("T")


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


def run_calls(work: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine of API calls to its end, from a thread with or without an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(work)
    # Called from inside an event loop (an async Prefect task): run ours on a fresh thread.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, work).result()


@dataclass
class ApiSession:
    processor: Processor
    ledger: Any  # budget.Ledger: tokens and dollars of this session


@asynccontextmanager
async def api_session(
    config: EmbeddingApi, journal_path: Path, price: Price | None
) -> AsyncIterator[ApiSession]:
    """The journal, client, limiter, budget and processor of a batch of calls; Ctrl-C lets
    the calls in flight finish into the journal, then raises KeyboardInterrupt."""
    from sftforge.tasks.steps.augment.budget import Ledger
    from sftforge.tasks.steps.augment.client import Redactor, credentials, make_client
    from sftforge.tasks.steps.augment.journal import Journal
    from sftforge.tasks.steps.augment.processor import Processor
    from sftforge.tasks.steps.augment.rate_limit import RateLimiter
    from sftforge.tasks.steps.augment.runner import install_interrupt

    api_key, base_url = credentials(config)
    with Journal(journal_path) as journal:
        client = make_client(config, api_key, base_url)
        limiter = RateLimiter(
            config.rpm, config.tpm, ramp_seconds=config.ramp_seconds, ramp_start=0.1
        )
        ledger = Ledger(price, config.max_cost, journal.spent)
        processor = Processor.from_options(
            client, journal, limiter, ledger, config, Redactor(api_key)
        )
        interrupted = install_interrupt(processor)
        try:
            yield ApiSession(processor, ledger)
        finally:
            interrupted.restore()
            await client.close()
        if interrupted.fired:
            raise KeyboardInterrupt(
                f"interrupted: finished calls are saved in {journal_path}; rerun the same "
                "command to resume (no finished call is sent again)"
            )


def embed_texts(texts: list[str], config: EmbeddingApi, journal_path: Path) -> Embedded:
    """Vectors for `texts` (one shard), every finished request journaled; with `local_model`,
    computed here (nothing to journal: a rerun computes them again, for free)."""
    if config.local_model is not None:
        return _embed_locally(texts, config)
    return run_calls(_embed(texts, config, journal_path))


@functools.lru_cache(maxsize=2)
def _local_model(name: str) -> Any:
    from sftforge.tasks.base.extras import require_extra

    library = require_extra("sentence_transformers", "embeddings-local", f"local_model {name}")
    return library.SentenceTransformer(name, device="cpu")


def _embed_locally(texts: list[str], config: EmbeddingApi) -> Embedded:
    model = _local_model(config.local_model)  # type: ignore[arg-type]
    matrix = model.encode(
        [text or " " for text in texts],
        batch_size=config.batch_size,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    matrix = np.asarray(matrix, dtype=np.float32)
    if config.dimensions is not None:  # as the API's `dimensions`: the first ones
        matrix = matrix[:, : config.dimensions]
    return Embedded(vectors={i: matrix[i] for i in range(len(texts))})


async def _embed(texts: list[str], config: EmbeddingApi, journal_path: Path) -> Embedded:
    from sftforge.tasks.steps.augment.journal import call_key
    from sftforge.tasks.steps.augment.processor import CallFailed, CallSpec
    from sftforge.tasks.steps.augment.tokens import make_counter

    counter = make_counter(config.model, "estimate")
    result = Embedded()
    fitted = [fit_text(counter.count, text, config.max_input_tokens) for text in texts]
    result.truncated = sum(cut for _, cut in fitted)
    async with api_session(config, journal_path, config.prices.get(config.model)) as session:

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
                answer = await session.processor.call(spec)
                vectors = decode_vectors(answer.body, len(chunk))
            except (CallFailed, ValueError, KeyError, TypeError) as exc:
                result.failed += len(chunk)
                kind = str(exc)[:80] if isinstance(exc, CallFailed) else type(exc).__name__
                result.errors[kind] = result.errors.get(kind, 0) + len(chunk)
                return
            for offset, vector in enumerate(vectors):
                result.vectors[start + offset] = vector

        starts = range(0, len(texts), config.batch_size)
        await asyncio.gather(*(one_request(start) for start in starts))
        result.calls_sent = session.processor.stats.sent
        result.calls_cached = session.processor.stats.cached
        result.prompt_tokens = session.ledger.prompt_tokens
        result.cost = session.ledger.run_cost
    return result
