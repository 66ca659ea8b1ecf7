"""Entry point of the augment step: one shard of records in, the same records out, augmented."""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import json
import logging
import signal
import threading
import time
from pathlib import Path

from sftforge.tasks.base import stop
from sftforge.tasks.steps.augment.batch import BatchProcessor
from sftforge.tasks.steps.augment.budget import Ledger
from sftforge.tasks.steps.augment.client import Redactor, credentials, make_client
from sftforge.tasks.steps.augment.journal import Journal
from sftforge.tasks.steps.augment.loop import (
    RESULT_FIELDS,
    LoopSettings,
    augment_record,
    record_key,
)
from sftforge.tasks.steps.augment.options import AugmentOptions, Price
from sftforge.tasks.steps.augment.presets import resolve_preset
from sftforge.tasks.steps.augment.processor import Processor
from sftforge.tasks.steps.augment.progress import ProgressFn, RunProgress, log_summary
from sftforge.tasks.steps.augment.rate_limit import RateLimiter
from sftforge.tasks.steps.augment.tokens import make_counter

log = logging.getLogger("sftforge.augment")

# Finished records are saved in batches (one transaction each).
SAVE_RECORDS_EVERY = 256


class AugmentInterrupted(KeyboardInterrupt):
    """Ctrl-C: calls in flight were finished and journaled; `records` holds this shard's state."""

    def __init__(self, message: str, records: list[dict]) -> None:
        super().__init__(message)
        self.records = records


def augment_records(
    records: list[dict],
    config: AugmentOptions,
    journal_path: Path,
    on_progress: ProgressFn | None = None,
) -> list[dict]:
    """Run the loop for these records (one shard); same order out as in; every record comes back
    (status done or failed); calls whose response is in the journal are never sent again."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _run(records, config, Path(journal_path), on_progress)
    # Called from inside an event loop (an async Prefect task): run ours on a fresh thread.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(_run, records, config, Path(journal_path), on_progress).result()


def _run(
    records: list[dict], config: AugmentOptions, journal_path: Path, on_progress: ProgressFn | None
) -> list[dict]:
    # Resolved outside any event loop: a Prefect Secret block loads synchronously here.
    api_key, base_url = credentials(config)
    return asyncio.run(_augment(records, config, journal_path, on_progress, api_key, base_url))


async def _augment(
    records: list[dict],
    config: AugmentOptions,
    journal_path: Path,
    on_progress: ProgressFn | None,
    api_key: str,
    base_url: str | None,
) -> list[dict]:
    redact = Redactor(api_key)
    settings = LoopSettings(
        resolve_preset(config), config, make_counter(config.model, config.tokenizer)
    )
    started = time.monotonic()
    with Journal(journal_path) as journal:
        client = make_client(config, api_key, base_url)
        limiter = RateLimiter(
            config.rpm,
            config.tpm,
            ramp_seconds=config.ramp_seconds,
            ramp_start=config.ramp_start,
            refund_unused=config.tpm_accounting == "usage",
        )
        price = config.prices.get(config.model)
        if config.mode == "batch" and price is not None:
            factor = config.batch_price_factor
            price = Price(input=price.input * factor, output=price.output * factor)
        ledger = Ledger(price, config.max_cost, journal.spent)
        processor: Processor | BatchProcessor
        if config.mode == "batch":
            processor = BatchProcessor(client, journal, ledger, config, redact)
        else:
            processor = Processor.from_options(client, journal, limiter, ledger, config, redact)
        results: list[dict | None] = [None] * len(records)
        progress = RunProgress(records, results, processor, started, on_progress)
        interrupted = install_interrupt(processor)
        try:
            fingerprint = settings.fingerprint()
            keys = [record_key(record, fingerprint) for record in records]
            todo: list[int] = []
            for index, record in enumerate(records):
                saved = journal.record_result(keys[index])
                if saved is None:
                    todo.append(index)
                else:  # finished earlier: no need to replay its chain
                    processor.stats.records_from_journal += 1
                    results[index] = {**record, **json.loads(saved)}
            finished: list[tuple[str, str]] = []
            queue = collections.deque(todo)
            batch = processor if isinstance(processor, BatchProcessor) else None
            if batch is not None:
                batch.expect(len(todo))

            async def worker() -> None:
                while queue:
                    index = queue.popleft()
                    try:
                        out = await augment_record(records[index], settings, processor.call)
                    finally:
                        if batch is not None:
                            batch.record_finished()
                    if out["error"]:
                        out["error"] = redact(out["error"])
                    elif out["status"] == "done":
                        added = {field: out[field] for field in RESULT_FIELDS}
                        finished.append((keys[index], json.dumps(added, ensure_ascii=False)))
                        if len(finished) >= SAVE_RECORDS_EVERY:
                            journal.save_records(finished)
                            finished.clear()
                    results[index] = out

            if batch is not None:
                # Every record at once: a round is all of them waiting on their next call.
                workers = len(todo)
            else:
                # Each record has one call in flight at a time, so twice the concurrency keeps
                # every slot busy while records wait on the journal or on each other.
                # Concurrency 1 means strictly one record after another (replays against a
                # scripted server).
                workers = 1 if config.concurrency == 1 else 2 * config.concurrency
            background = [asyncio.ensure_future(progress.loop())]
            if batch is not None:
                background.append(asyncio.ensure_future(batch.run()))
            try:
                await asyncio.gather(*(worker() for _ in range(min(workers, len(todo)))))
            finally:
                for task in background:
                    task.cancel()
                if finished:
                    journal.save_records(finished)
                progress.emit()
        finally:
            interrupted.restore()
            await client.close()
        done = [r for r in results if r is not None]
        log_summary(done, processor, ledger, journal_path, time.monotonic() - started)
        if interrupted.fired:
            raise AugmentInterrupted(
                f"augment interrupted: finished calls are saved in {journal_path}; rerun the "
                "same command to resume (no finished call will be sent again)",
                done,
            )
    return done


class _Interrupt:
    def __init__(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self.loop = loop
        self.fired = False
        self.blocks = contextlib.ExitStack()

    def restore(self) -> None:
        self.blocks.close()
        if self.loop is not None:
            self.loop.remove_signal_handler(signal.SIGINT)


def install_interrupt(processor: Processor | BatchProcessor) -> _Interrupt:
    """First Ctrl-C: send nothing new, let calls in flight finish into the journal.
    A second one: stop at once (calls in flight stay "started" and are resent on resume).

    Run by the `sftforge` command, this runs in a task's thread and the command owns the
    signals: its stop request (tasks/base/stop.py) is the first Ctrl-C, and the command waits
    for the calls in flight before it exits. Called directly in a main thread, the loop takes
    SIGINT itself."""
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    in_main_thread = threading.current_thread() is threading.main_thread()
    state = _Interrupt(loop if in_main_thread else None)

    def first_stop() -> None:
        if state.fired:
            return
        state.fired = True
        log.warning("augment: interrupted; finishing calls in flight (Ctrl-C again to abort)")
        processor.stop("interrupted")

    def on_sigint() -> None:
        if state.fired and main is not None:
            main.cancel()
            return
        first_stop()

    state.blocks.enter_context(stop.on_stop(lambda: loop.call_soon_threadsafe(first_stop)))
    if not in_main_thread:
        return state
    try:
        loop.add_signal_handler(signal.SIGINT, on_sigint)
    except (NotImplementedError, RuntimeError):  # Windows, or a loop without signal support
        state.loop = None
    return state
