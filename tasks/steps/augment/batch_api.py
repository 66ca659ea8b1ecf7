"""The OpenAI Batch API as `mode: batch` (batch.py) talks to it: the request files, cut to the
API's limits, and the management calls, each retried like a completion -- including finding a
batch by its tag when a crash or a lost answer left its id unknown."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import openai

from sftforge.tasks.steps.augment.options import AugmentOptions
from sftforge.tasks.steps.augment.processor import CallSpec
from sftforge.tasks.steps.augment.retry import backoff_seconds, classify

TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
ENDPOINT = "/v1/chat/completions"
# How far back batches.list is searched for a lost batch id (it lists the newest first).
FIND_SLACK_SECONDS = 3600.0
FIND_MAX_SCANNED = 2000


def request_chunks(
    specs: list[CallSpec], max_requests: int, max_bytes: int
) -> list[list[tuple[CallSpec, bytes]]]:
    """The JSONL request line of each call (`custom_id` = the journal key), in key order, cut
    into files of at most `max_requests` lines and `max_bytes` bytes."""
    chunks: list[list[tuple[CallSpec, bytes]]] = [[]]
    size = 0
    for spec in sorted(specs, key=lambda s: s.key):
        line = (
            json.dumps(
                {
                    "custom_id": spec.key,
                    "method": "POST",
                    "url": ENDPOINT,
                    "body": spec.request,
                },
                ensure_ascii=False,
            ).encode("utf-8")
            + b"\n"
        )
        if chunks[-1] and (len(chunks[-1]) >= max_requests or size + len(line) > max_bytes):
            chunks.append([])
            size = 0
        chunks[-1].append((spec, line))
        size += len(line)
    return [c for c in chunks if c]


class BatchApi:
    """Creating and finding batches, and any other management call (upload, retrieve, list,
    download) through `retrying`."""

    def __init__(self, client: openai.AsyncOpenAI, config: AugmentOptions) -> None:
        self.client = client
        self.config = config

    async def create(self, tag: str, file_id: str) -> str:
        """The id of a new batch of `file_id`'s requests, carrying `tag` in its metadata."""
        for attempt in range(1, self.config.max_attempts + 1):
            try:
                batch = await self.client.batches.create(
                    input_file_id=file_id,
                    endpoint=ENDPOINT,
                    completion_window=self.config.batch_completion_window,
                    metadata={"sftforge": tag},
                )
                return batch.id
            except openai.APIError as exc:
                failure = classify(exc)
                if not failure.retryable or attempt == self.config.max_attempts:
                    raise
                await asyncio.sleep(failure.retry_after or self._backoff(attempt))
                # The lost answer may have been a created batch: look before creating again.
                found = await self.find(tag, time.time())
                if found is not None:
                    return found
        raise AssertionError("unreachable")

    async def find(self, tag: str, since: float) -> str | None:
        """The id of a batch carrying `tag` in its metadata, created after `since` - slack."""
        page = await self.retrying(self.client.batches.list, limit=100)
        seen = 0
        async for batch in page:  # fetches further pages as it goes
            if (batch.metadata or {}).get("sftforge") == tag:
                return batch.id
            seen += 1
            if batch.created_at < since - FIND_SLACK_SECONDS or seen >= FIND_MAX_SCANNED:
                break
        return None

    async def retrying(self, fn: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
        """A batch-management call (upload, retrieve, list), retried like a completion."""
        for attempt in range(1, self.config.max_attempts + 1):
            try:
                return await fn(*args, **kwargs)
            except openai.APIError as exc:
                failure = classify(exc)
                if not failure.retryable or attempt == self.config.max_attempts:
                    raise
                await asyncio.sleep(failure.retry_after or self._backoff(attempt))
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int) -> float:
        return backoff_seconds(
            attempt, self.config.backoff_base_seconds, self.config.backoff_max_seconds
        )
