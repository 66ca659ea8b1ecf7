"""Sends API calls (chat completions, embeddings): journal first, then rate limit, bounded
concurrency, retries.

For one call (a CallSpec, keyed by its record and content):
1. a "done" row in the journal answers it without sending anything;
2. the same key already in flight in this run is awaited, not sent twice;
3. otherwise, per attempt: reserve the worst-case cost, wait for the rate limiter and a
   concurrency slot, write "started", send, and write "done" with the raw body.
Failures worth retrying (429, 5xx, timeouts, dropped connections) are retried after the
server's Retry-After or an exponential backoff with jitter; others fail the call at once.
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai

from sftforge.tasks.steps.augment.budget import BudgetExhausted, Ledger
from sftforge.tasks.steps.augment.client import Redactor
from sftforge.tasks.steps.augment.journal import Journal
from sftforge.tasks.steps.augment.rate_limit import RateLimiter
from sftforge.tasks.steps.augment.retry import Failure, InvalidResponse, backoff_seconds, classify


@dataclass(frozen=True)
class CallSpec:
    key: str
    # Exactly the keyword arguments of chat.completions.create (no credentials).
    request: dict[str, Any]
    prompt_tokens: int
    max_tokens: int
    # Extra HTTP headers (`record_id_header`); not part of the request or its key.
    headers: dict[str, str] = field(default_factory=dict)
    # The endpoint, under the base URL: one of PARSERS.
    path: str = "/chat/completions"


@dataclass(frozen=True)
class CallResult:
    text: str
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    cost: float
    cached: bool
    # The raw response body (the embed step decodes its vectors from it).
    body: str = ""


class CallFailed(Exception):
    def __init__(self, message: str, failure: Failure | None = None) -> None:
        super().__init__(message)
        self.failure = failure


@dataclass
class Stats:
    sent: int = 0
    cached: int = 0
    in_flight: int = 0
    failed: int = 0
    retries: int = 0
    rate_limited: int = 0
    records_from_journal: int = 0
    statuses: dict[str, int] = field(default_factory=dict)


def parse_completion(body: str) -> tuple[str, str | None, int, int]:
    """(text, finish_reason, prompt_tokens, completion_tokens) from a raw response body."""
    try:
        data = json.loads(body)
        choice = data["choices"][0]
        text = choice["message"].get("content") or ""
        usage = data.get("usage") or {}
        return (
            text,
            choice.get("finish_reason"),
            int(usage.get("prompt_tokens") or 0),
            int(usage.get("completion_tokens") or 0),
        )
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise InvalidResponse(f"not a chat completion: {body[:200]!r}") from exc


def parse_embeddings_usage(body: str) -> tuple[str, str | None, int, int]:
    """("", None, prompt_tokens, 0) from an embeddings response, once it has its `data`; the
    vectors themselves are decoded by their user (tasks/steps/embed_calls.py)."""
    try:
        data = json.loads(body)
        if not isinstance(data["data"], list):
            raise TypeError("data is not a list")
        usage = data.get("usage") or {}
        return "", None, int(usage.get("prompt_tokens") or 0), 0
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidResponse(f"not an embeddings response: {body[:200]!r}") from exc


# How each endpoint's body is read: (text, finish_reason, prompt_tokens, completion_tokens).
PARSERS = {"/chat/completions": parse_completion, "/embeddings": parse_embeddings_usage}


class Processor:
    def __init__(
        self,
        client: openai.AsyncOpenAI,
        journal: Journal,
        limiter: RateLimiter,
        ledger: Ledger,
        *,
        concurrency: int,
        max_attempts: int,
        backoff_base: float,
        backoff_max: float,
        redact: Redactor,
        rng: random.Random | None = None,
    ) -> None:
        self.client = client
        self.journal = journal
        self.limiter = limiter
        self.ledger = ledger
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.redact = redact
        self.rng = rng or random.Random()
        self.stats = Stats()
        self.stop_reason: str | None = None
        self._slots = asyncio.Semaphore(concurrency)
        self._in_flight: dict[str, asyncio.Future[CallResult]] = {}

    @classmethod
    def from_options(
        cls,
        client: openai.AsyncOpenAI,
        journal: Journal,
        limiter: RateLimiter,
        ledger: Ledger,
        options: Any,  # a step's options: concurrency, max_attempts, backoff_*_seconds
        redact: Redactor,
    ) -> Processor:
        return cls(
            client,
            journal,
            limiter,
            ledger,
            concurrency=options.concurrency,
            max_attempts=options.max_attempts,
            backoff_base=options.backoff_base_seconds,
            backoff_max=options.backoff_max_seconds,
            redact=redact,
        )

    def stop(self, reason: str) -> None:
        """Send nothing new; calls already sent finish and are journaled."""
        if self.stop_reason is None:
            self.stop_reason = reason

    async def call(self, spec: CallSpec) -> CallResult:
        stored = self.journal.done(spec.key)
        if stored is not None:
            self.stats.cached += 1
            text, finish, _, _ = PARSERS[spec.path](stored.response)
            return CallResult(
                text,
                finish,
                stored.prompt_tokens,
                stored.completion_tokens,
                stored.cost,
                True,
                stored.response,
            )
        pending = self._in_flight.get(spec.key)
        if pending is not None:
            # The same key twice at once (`share_calls`: two records asking the same thing)
            # shares one paid call.
            self.stats.cached += 1
            result = await asyncio.shield(pending)
            return CallResult(
                result.text,
                result.finish_reason,
                result.prompt_tokens,
                result.completion_tokens,
                result.cost,
                True,
                result.body,
            )
        task = asyncio.ensure_future(self._send(spec))
        self._in_flight[spec.key] = task
        try:
            return await asyncio.shield(task)
        finally:
            if task.done():
                self._in_flight.pop(spec.key, None)
            else:
                task.add_done_callback(lambda _: self._in_flight.pop(spec.key, None))

    async def _send(self, spec: CallSpec) -> CallResult:
        for attempt in range(1, self.max_attempts + 1):
            try:
                return await self._attempt(spec)
            except (openai.APIError, InvalidResponse) as exc:
                failure = classify(exc)
                failure = Failure(
                    failure.retryable,
                    failure.status,
                    self.redact(failure.message),
                    failure.retry_after,
                    failure.context_overflow,
                )
                key = str(failure.status or "connection")
                self.stats.statuses[key] = self.stats.statuses.get(key, 0) + 1
                if not failure.retryable or attempt == self.max_attempts:
                    self.journal.fail(spec.key, failure.message)
                    self.stats.failed += 1
                    tries = f" after {attempt} attempts" if attempt > 1 else ""
                    raise CallFailed(failure.message + tries, failure) from None
                wait = failure.retry_after
                if wait is None:
                    wait = backoff_seconds(attempt, self.backoff_base, self.backoff_max, self.rng)
                if failure.status == 429:
                    self.stats.rate_limited += 1
                    self.limiter.pause(wait)
                self.stats.retries += 1
                # Wait without holding a slot: other calls may proceed (unless paused).
                await asyncio.sleep(wait)
        raise AssertionError("unreachable")

    async def _attempt(self, spec: CallSpec) -> CallResult:
        estimate = spec.prompt_tokens + spec.max_tokens
        async with self._slots:
            self._check_stop()
            try:
                # Held only while the call is really about to go, so that calls queued for a
                # slot do not keep the budget from being used.
                reserved = self.ledger.reserve(spec.prompt_tokens, spec.max_tokens)
            except BudgetExhausted as exc:
                self.stop(str(exc))
                raise CallFailed(f"not sent: {exc}") from None
            settled = False
            try:
                await self.limiter.acquire(estimate)
                self._check_stop()  # the wait may have been long: Ctrl-C may have come
                self.journal.started(spec.key, spec.request)
                self.stats.in_flight += 1
                self.stats.sent += 1
                try:
                    # Posted as it is: the request is plain JSON already, and the SDK's
                    # typed-params pass over it costs milliseconds of CPU per long chat.
                    raw = await self.client.post(
                        spec.path,
                        cast_to=httpx.Response,
                        body=spec.request,
                        options={"headers": spec.headers} if spec.headers else {},
                    )
                except openai.APIStatusError as exc:
                    self.limiter.observe_headers(exc.response.headers)
                    raise
                finally:
                    self.stats.in_flight -= 1
                body = raw.text
                self.limiter.observe_headers(raw.headers)
                text, finish, prompt_tokens, completion_tokens = PARSERS[spec.path](body)
                cost = self.ledger.settle(reserved, prompt_tokens, completion_tokens)
                settled = True
                self.journal.finish(spec.key, body, prompt_tokens, completion_tokens, cost)
            finally:
                if not settled:
                    self.ledger.release(reserved)
            self.limiter.reconcile(estimate, prompt_tokens + completion_tokens)
        return CallResult(text, finish, prompt_tokens, completion_tokens, cost, False, body)

    def _check_stop(self) -> None:
        if self.stop_reason is not None:
            raise CallFailed(f"not sent: {self.stop_reason}")
