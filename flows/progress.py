"""Terminal feedback: a live bar per stage on a terminal, plain lines in CI logs, summaries.

Stages that run as one blocking task (reading the sources, a global step) report progress
through a *watch* (watches.py), polled from a background thread, so the engine needs no
callback.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

# backfill_table is imported from here (cli.py): re-exported.
from sftforge.flows.backfill_table import backfill_table as backfill_table
from sftforge.flows.progress_rows import RecentRate, StageState, StageView
from sftforge.flows.watches import Watch
from sftforge.tasks.base.stats import StageStats

POLL_SECONDS = 0.5


class StageProgress:
    """`start(label, total[, watch][, shards=])`, then `advance(n)` per finished shard (or
    `advance_shard(stats)`, which tells a reused shard apart), `records_done(n)` from a step
    that counts its records, or a watch; then `finish()`. `quiet` prints nothing.

    On a terminal: one row per stage, fitted to its width (progress_rows.py); the rate and the
    ETA come from the records this run processed over the last half minute, so reused shards
    neither inflate the rate nor shorten the ETA. Plain lines (no TTY) come at most every
    `plain_every` seconds per stage, plus one line when the stage is done.
    """

    def __init__(
        self,
        quiet: bool = False,
        console: Console | None = None,
        plain_every: float = 5.0,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.console = console or Console(stderr=True)
        self.quiet = quiet
        self.live = not quiet and self.console.is_terminal
        self.plain_every = plain_every
        self.clock = clock
        self._lock = threading.Lock()
        self.view = StageView(clock)
        self._live: Live | None = None
        self._stage: StageState | None = None
        self._last_line = 0.0
        self._stop_watch: threading.Event | None = None
        self._watcher: threading.Thread | None = None

    def __enter__(self) -> StageProgress:
        if self.live:
            self._live = Live(self.view, console=self.console, refresh_per_second=4)
            self._live.start()
        return self

    def stop_live(self) -> None:
        """Take the live display off the terminal now (a stopping command, before it exits)."""
        if self._live is not None:
            self._live.stop()

    def __exit__(self, *exc: Any) -> None:
        self.finish()
        if self._live is not None:
            self._live.stop()

    def start(
        self,
        label: str,
        total: int | None,
        watch: Watch | None = None,
        shards: int | None = None,
    ) -> None:
        """A new stage; a watch made before the stage began also tells what it will reuse."""
        self.finish()
        now = self.clock()
        with self._lock:
            stage = StageState(label, total, now, RecentRate(now), shards=shards)
            if watch is not None:
                stage.reused_records, stage.reused_shards = watch.reused
                stage.done = stage.reused_records
            self._stage, self._last_line = stage, now
            self.view.stages.append(stage)
        if watch is not None and not self.quiet:
            self._stop_watch = threading.Event()
            self._watcher = threading.Thread(
                target=self._poll, args=(watch, self._stop_watch), daemon=True
            )
            self._watcher.start()

    def advance(self, records: int) -> None:
        """`records` more processed by this run."""
        with self._lock:
            if self._stage is not None:
                self._update(self._stage.done + records, None)

    def advance_shard(self, stats: StageStats) -> None:
        """A shard finished, or found finished by an earlier run (reused)."""
        with self._lock:
            stage = self._stage
            if stage is None:
                return
            if stats.reused:
                stage.reused_shards += 1
                stage.reused_records += stats.n_in
            self._update(stage.done + stats.n_in, None)

    def records_done(self, processed: int) -> None:
        """From a step that counts its records (augment): how many of the stage's this run
        has processed so far, reused shards not included."""
        with self._lock:
            if self._stage is not None:
                self._update(self._stage.reused_records + processed, None)

    def detail(self, text: str) -> None:
        """A line of stage-specific figures (the augment step's calls, rates and cost)."""
        with self._lock:
            stage = self._stage
            if stage is None:
                return
            stage.detail = text
            if self._live is not None:
                return
            now = self.clock()
            if not self.quiet and now - self._last_line >= self.plain_every:
                self._last_line = now
                self._line(text)

    def finish(self, records: int | None = None) -> None:
        """End the current stage; `records` is its exact count when a watch only estimated it."""
        if self._stop_watch is not None and self._watcher is not None:
            self._stop_watch.set()
            self._watcher.join()
            self._stop_watch = self._watcher = None
        with self._lock:
            stage = self._stage
            if stage is None:
                return
            if records is not None:
                stage.done = records
            elif stage.total is not None:  # a finished stage has done all its records
                stage.done = max(stage.done, stage.total)
            if stage.total is None or stage.estimated:
                stage.total = stage.done
            stage.ended = self.clock()
            if self._live is None and not self.quiet:
                self._line(self._finished_line(stage))
            self._stage = None

    def finish_shards(self, shards: list[StageStats]) -> None:
        """End the current stage with its shards' stats: exact counts, reused ones named."""
        with self._lock:
            stage = self._stage
            if stage is not None:
                reused = [s for s in shards if s.reused]
                stage.reused_shards, stage.shards = len(reused), len(shards)
                stage.reused_records = sum(s.n_in for s in reused)
        self.finish(sum(s.n_in for s in shards))

    def _finished_line(self, stage: StageState) -> str:
        seconds = (stage.ended or stage.began) - stage.began
        text = f"{stage.done} records in {seconds:.1f} s"
        if stage.all_reused():
            return f"{text}: {stage.reused_note()}"
        rate = stage.rate(self.clock())
        text += f" ({0 if rate is None else rate:,.0f} rec/s)"
        return f"{text}, {stage.reused_note()}" if stage.reused_shards else text

    def _poll(self, watch: Watch, stop: threading.Event) -> None:
        while not stop.wait(POLL_SECONDS):
            try:
                done, estimate = watch()
            except OSError:
                continue  # a file renamed under us: the next poll sees the new state
            with self._lock:
                if self._stage is not None:
                    self._update(done, estimate)

    def _update(self, done: int, estimate: int | None) -> None:
        # Called with the lock held. Two sources may count one stage (a watch, and the step
        # itself): the count only grows.
        stage = self._stage
        assert stage is not None
        stage.done = max(done, stage.done)
        if estimate is not None:
            stage.total, stage.estimated = max(estimate, stage.done), True
        now = self.clock()
        stage.meter.add(now, stage.processed)
        if self._live is not None or self.quiet or now - self._last_line < self.plain_every:
            return
        self._last_line = now
        total = f"/{stage.total}" if stage.total is not None else ""
        rate = stage.rate(now)
        shown = "-" if rate is None else f"{rate:,.0f}"
        eta = ""
        if stage.total is not None:
            seconds = stage.meter.eta(stage.total - stage.done, now)
            eta = f", ETA {'-' if seconds is None else f'{seconds:.0f}'} s"
        reused = f", {stage.reused_note()}" if stage.reused_shards else ""
        self._line(f"{stage.done}{total} records, {shown} rec/s{eta}{reused}")

    def _line(self, text: str) -> None:
        # Not print(): the recipe flow has log_prints=True, which turns print() into Prefect
        # log records (hidden below WARNING); these lines are for the terminal or CI log.
        label = self._stage.label if self._stage is not None else ""
        sys.stderr.write(f"[{label}] {text}\n")
        sys.stderr.flush()


# ---------------------------------------------------------------- summaries


def _failed(stage: dict[str, Any]) -> int | None:
    """Records a stage kept but could not process (augment: API calls that failed), from a
    batch step's summary in its manifest entry; None for a stage that counts none."""
    for key, value in stage.items():
        if key != "rejected" and isinstance(value, dict) and isinstance(value.get("failed"), int):
            return value["failed"]
    return None


def summary_table(body: dict[str, Any]) -> Table:
    limited = f" · limited: first {body['limit']} per source" if body.get("limited") else ""
    table = Table(title=f"sftforge · {body['recipe']} → {body['output_dir']}{limited}")
    failed = [_failed(stage) for stage in body["stages"]]
    # The column only where a stage counts failures, so other recipes' tables stay as they were.
    counts = any(n is not None for n in failed)
    columns = ("stage", "in", "out", "rejected", *(("failed",) if counts else ()), "seconds")
    # A rerun says what it took from the earlier run (a column "reused": "5/5" shards, narrow
    # for 80 columns); seconds and rec/s of a stage stay those of the run that processed them.
    reused = [stage.get("reused_shards", 0) for stage in body["stages"]]
    shards = body.get("shards")
    for column in (*columns, "rec/s", *(("reused",) if any(reused) else ())):
        table.add_column(column, justify="left" if column in ("stage", "rejected") else "right")
    for stage, n_failed, n_reused in zip(body["stages"], failed, reused, strict=True):
        rejected = ", ".join(f"{k}: {v}" for k, v in stage["rejected"].items()) or "-"
        rate = stage["in"] / stage["seconds"] if stage["seconds"] else 0.0
        cells = [stage["name"], str(stage["in"]), str(stage["out"]), rejected]
        if counts:
            cells.append("-" if n_failed is None else f"[red]{n_failed}" if n_failed else "0")
        cells += [f"{stage['seconds']:.2f}", f"{rate:,.0f}"]
        if any(reused):
            cells.append(f"{n_reused}/{shards}" if n_reused else "-")
        table.add_row(*cells)
    first = body["stages"][0]["in"] if body["stages"] else 0
    total_failed = sum(n or 0 for n in failed)
    wall = body["wall_seconds"]
    pace = f"{first / max(wall, 1e-9):,.0f} rec/s"
    if any(reused):  # a rate over a rerun's wall time says nothing: what it reused instead
        pace = f"{sum(reused)}/{(shards or 0) * len(reused)} shards reused"
    table.caption = (
        f"{first} records in, {body['stages'][-1]['out']} out, {wall:.1f} s wall ({pace})"
        + (f"; {total_failed} failed (kept, retried by a rerun)" if total_failed else "")
        + _id_collisions(body["stages"][0] if body["stages"] else {})
        + "".join(_hits(stage) for stage in body["stages"])
    )
    return table


def _hits(stage: dict[str, Any]) -> str:
    """The caption's note on a stage that counts hits per benchmark (decontamination), and
    the benchmarks it could not load (nothing for other stages)."""
    for key, value in stage.items():
        if key != "rejected" and isinstance(value, dict) and isinstance(value.get("hits"), dict):
            hits = ", ".join(f"{name} {n}" for name, n in value["hits"].items()) or "none"
            skipped = ", ".join(value.get("skipped") or {})
            note = f"; {stage['name']} hits: {hits}" + (f" (skipped: {skipped})" if skipped else "")
            semantic = value.get("semantic")
            if semantic:  # reworded items: the judge's work and what the calls cost
                note += f" (semantic: {semantic['pairs']} close pairs, {semantic['yes']} judged "
                note += f"the same question, ${semantic['cost']:.4f})"
            return note
    return ""


def _id_collisions(read: dict[str, Any]) -> str:
    """The caption's note on repeated input ids (none: nothing, so the usual caption stays)."""
    counts = read.get("id_collisions") or {}
    if not counts:
        return ""
    per_source = ", ".join(f"{source}: {n}" for source, n in counts.items())
    total = sum(counts.values())
    return f"; {total} repeated {'id' if total == 1 else 'ids'} made unique (#2, #3…: {per_source})"
