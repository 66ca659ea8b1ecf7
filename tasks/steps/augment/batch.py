"""`mode: batch`: every round of the loop goes to the OpenAI Batch API.

The records run exactly as online; only `call` differs. A call waits in a pool, and when every
unfinished record is waiting -- all answers, then all feedbacks, then the revisions of those
that need one -- the pool is submitted as JSONL batch files (`custom_id` = the journal key).
The files and the Batch API's calls themselves are in batch_api.py.

Never paying twice:
- the intent (tag, keys) is journaled before `files.create`; the tag, derived from the keys,
  goes into the batch's metadata;
- a run first collects every batch still open in the journal, finding it by id or, if the
  crash came before the id was saved, by its tag in `batches.list`;
- results are journaled per call as they arrive; an expired, cancelled or partly failed batch
  keeps what finished, and only the rest is submitted again.
"""

from __future__ import annotations

import asyncio
import collections
import json

import openai
import xxhash

from sftforge.tasks.steps.augment.batch_api import TERMINAL, BatchApi, request_chunks
from sftforge.tasks.steps.augment.budget import BudgetExhausted, Ledger
from sftforge.tasks.steps.augment.client import Redactor
from sftforge.tasks.steps.augment.journal import Journal
from sftforge.tasks.steps.augment.options import AugmentOptions
from sftforge.tasks.steps.augment.processor import (
    CallFailed,
    CallResult,
    CallSpec,
    Stats,
    parse_completion,
)
from sftforge.tasks.steps.augment.rate_limit import RateLimiter
from sftforge.tasks.steps.augment.retry import RETRYABLE_STATUS, Failure


class BatchProcessor:
    def __init__(
        self,
        client: openai.AsyncOpenAI,
        journal: Journal,
        ledger: Ledger,
        config: AugmentOptions,
        redact: Redactor,
    ) -> None:
        self.client = client
        self.api = BatchApi(client, config)
        self.journal = journal
        self.ledger = ledger
        self.config = config
        self.redact = redact
        self.stats = Stats()
        self.limiter = RateLimiter(None, None)  # no online quota; kept for progress reports
        self.stop_reason: str | None = None
        self.batches_submitted = 0
        self._pending: dict[str, tuple[CallSpec, asyncio.Future[CallResult]]] = {}
        self._waiting = 0  # calls awaited, duplicates of a pending key included
        self._active = 0  # records started and not finished
        self._submissions: collections.Counter[str] = collections.Counter()
        self._changed = asyncio.Event()
        self._fatal: str | None = None

    # -- what the runner and the loop use ---------------------------------------------------

    def stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
        self._changed.set()

    def expect(self, records: int) -> None:
        """How many records will run: a round starts once all unfinished ones wait."""
        self._active = records

    def record_finished(self) -> None:
        self._active -= 1
        self._changed.set()

    async def call(self, spec: CallSpec) -> CallResult:
        stored = self.journal.done(spec.key)
        if stored is not None:
            self.stats.cached += 1
            return _result(
                stored.response,
                stored.prompt_tokens,
                stored.completion_tokens,
                stored.cost,
                cached=True,
            )
        if self._fatal or self.stop_reason:
            raise CallFailed(f"not sent: {self._fatal or self.stop_reason}")
        pending = self._pending.get(spec.key)
        if pending is None:
            future: asyncio.Future[CallResult] = asyncio.get_running_loop().create_future()
            self._pending[spec.key] = (spec, future)
        else:
            future = pending[1]
        self._waiting += 1
        self._changed.set()
        try:
            return await asyncio.shield(future)
        finally:
            self._waiting -= 1

    async def run(self) -> None:
        """Background task: collect open batches, then submit a round whenever every
        unfinished record waits on a call."""
        try:
            await self._reconcile()
            while True:
                await self._changed.wait()
                self._changed.clear()
                if self.stop_reason:
                    self._fail_pending(f"not sent: {self.stop_reason}")
                elif self._pending and self._waiting >= self._active:
                    await self._round()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the records must not wait forever on a dead round
            self._fatal = self.redact(f"batch mode failed: {type(exc).__name__}: {exc}")
            self._fail_pending(self._fatal)

    # -- rounds ----------------------------------------------------------------------------

    async def _round(self) -> None:
        specs = [spec for spec, _ in self._pending.values()]
        # Another run, or the reconciliation, may have finished some of them meanwhile.
        self._resolve_done()
        specs = [s for s in specs if s.key in self._pending]
        held: dict[str, float] = {}
        for spec in specs:
            try:
                held[spec.key] = self.ledger.reserve(spec.prompt_tokens, spec.max_tokens)
            except BudgetExhausted as exc:
                self.stop(str(exc))
                self._fail(spec.key, CallFailed(f"not sent: {exc}"))
        specs = [s for s in specs if s.key in held]
        try:
            chunks = request_chunks(
                specs, self.config.batch_max_requests, self.config.batch_max_bytes
            )
            await asyncio.gather(*(self._submit(chunk) for chunk in chunks))
        finally:
            for amount in held.values():
                self.ledger.release(amount)
        self._resolve_done()
        for spec in specs:
            if spec.key not in self._pending:
                continue
            self._submissions[spec.key] += 1
            if self.stop_reason == "interrupted":
                self._fail(
                    spec.key,
                    CallFailed(
                        "interrupted; the batch runs on and the next run collects its results"
                    ),
                )
            elif self._submissions[spec.key] >= self.config.batch_max_submissions:
                self._fail(
                    spec.key,
                    CallFailed(f"no result after {self._submissions[spec.key]} batch submissions"),
                )
        # Whatever is left goes out again in the next round, right away.
        self._changed.set()

    async def _submit(self, chunk: list[tuple[CallSpec, bytes]]) -> None:
        keys = [spec.key for spec, _ in chunk]
        base = xxhash.xxh3_64_hexdigest(json.dumps(keys).encode())
        # Deterministic, so a rerun after a crash asks for the same tag; numbered, so the
        # same calls submitted again after an expired batch get a new one.
        tag = f"sftforge-{base}-{self.journal.closed_batches(f'sftforge-{base}-')}"
        # The intent, before anything is uploaded. (Intents left open by a crash were all
        # collected by _reconcile before the first round, so this tag is new.)
        self.journal.open_batch(tag, keys)
        for spec, _ in chunk:
            self.journal.started(spec.key, spec.request)
        upload = await self.api.retrying(
            self.client.files.create,
            file=("augment.jsonl", b"".join(line for _, line in chunk)),
            purpose="batch",
        )
        self.journal.update_batch(tag, file_id=upload.id)
        batch_id = await self.api.create(tag, upload.id)
        self.journal.update_batch(tag, batch_id=batch_id)
        self.batches_submitted += 1
        self.stats.sent += len(chunk)
        self.stats.in_flight += len(chunk)
        try:
            await self._collect(tag, batch_id)
        finally:
            self.stats.in_flight -= len(chunk)

    async def _collect(self, tag: str, batch_id: str) -> None:
        while True:
            batch = await self.api.retrying(self.client.batches.retrieve, batch_id)
            if batch.status in TERMINAL:
                break
            if self.stop_reason == "interrupted":
                return  # left open in the journal: the next run collects it
            await asyncio.sleep(self.config.batch_poll_seconds)
        for file_id in (batch.output_file_id, batch.error_file_id):
            if file_id:
                content = await self.api.retrying(self.client.files.content, file_id)
                self._store_lines(content.text)
        self.journal.close_batch(tag)

    def _store_lines(self, text: str) -> None:
        for line in text.splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key = item.get("custom_id")
            response = item.get("response") or {}
            body = response.get("body")
            if key and self.journal.done(key) is not None:
                continue  # collected before a crash that came ahead of close_batch
            if key and response.get("status_code") == 200 and isinstance(body, dict):
                raw = json.dumps(body, ensure_ascii=False)
                _, _, prompt_tokens, completion_tokens = parse_completion(raw)
                cost = self.ledger.settle(0.0, prompt_tokens, completion_tokens)
                self.journal.finish(key, raw, prompt_tokens, completion_tokens, cost)
            elif key:
                self._line_failed(key, response, item.get("error") or {})

    def _line_failed(self, key: str, response: dict, error: dict) -> None:
        status = response.get("status_code")
        body = response.get("body") if isinstance(response.get("body"), dict) else {}
        detail = (body or {}).get("error") or error or {}
        message = self.redact(f"batch line {status or ''}: {detail.get('message', detail)}")
        self.journal.fail(key, message)
        retryable = status is None or status in RETRYABLE_STATUS or status >= 500
        overflow = detail.get("code") == "context_length_exceeded"
        if key in self._pending and (overflow or not retryable):
            failure = Failure(False, status, message, context_overflow=overflow)
            self._fail(key, CallFailed(message, failure))

    # -- crash recovery ------------------------------------------------------------------------

    async def _reconcile(self) -> None:
        """Collect every batch the journal says was meant, before submitting anything."""
        for intent in self.journal.open_batches():
            batch_id = intent.batch_id or await self.api.find(intent.tag, intent.created)
            if batch_id is None:
                # Never created (the crash came before batches.create): nothing to collect.
                self.journal.close_batch(intent.tag)
                continue
            self.journal.update_batch(intent.tag, batch_id=batch_id)
            await self._collect(intent.tag, batch_id)

    # -- helpers -------------------------------------------------------------------------------

    def _resolve_done(self) -> None:
        for key in list(self._pending):
            stored = self.journal.done(key)
            if stored is not None:
                _, future = self._pending.pop(key)
                if not future.done():
                    future.set_result(
                        _result(
                            stored.response,
                            stored.prompt_tokens,
                            stored.completion_tokens,
                            stored.cost,
                            cached=False,
                        )
                    )

    def _fail(self, key: str, error: CallFailed) -> None:
        entry = self._pending.pop(key, None)
        if entry is not None and not entry[1].done():
            self.stats.failed += 1
            entry[1].set_exception(error)

    def _fail_pending(self, message: str) -> None:
        for key in list(self._pending):
            self._fail(key, CallFailed(message))


def _result(
    body: str, prompt_tokens: int, completion_tokens: int, cost: float, *, cached: bool
) -> CallResult:
    text, finish, _, _ = parse_completion(body)
    return CallResult(text, finish, prompt_tokens, completion_tokens, cost, cached)
