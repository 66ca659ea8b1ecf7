"""Terminal feedback: a live bar per stage on a terminal, plain lines in CI logs, summaries.

Stages that run as one blocking task (reading the sources, a global step) report progress
through a *watch* (watches.py), polled from a background thread, so the engine needs no
callback.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

from rich.console import Console, Group
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from sftforge.flows.watches import Watch

POLL_SECONDS = 0.5


class StageProgress:
    """`start(label, total[, watch])`, then `advance(n)` per finished shard or a watch, then
    `finish()`; `quiet` prints nothing. Plain lines (no TTY) come at most every
    `plain_every` seconds per stage, plus one line when the stage is done."""

    def __init__(
        self, quiet: bool = False, console: Console | None = None, plain_every: float = 5.0
    ) -> None:
        self.console = console or Console(stderr=True)
        self.quiet = quiet
        self.live = not quiet and self.console.is_terminal
        self.plain_every = plain_every
        self._lock = threading.Lock()
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._label = ""
        self._done = 0
        self._total: int | None = None
        self._began = 0.0
        self._last_line = 0.0
        self._active = False
        self._stop_watch: threading.Event | None = None
        self._watcher: threading.Thread | None = None

    def __enter__(self) -> StageProgress:
        if self.live:
            self._progress = Progress(
                TextColumn("[bold]{task.description:<40}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]:>9} rec/s"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[detail]}"),
                console=self.console,
            )
            self._progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.finish()
        if self._progress is not None:
            self._progress.stop()

    def start(self, label: str, total: int | None, watch: Watch | None = None) -> None:
        self.finish()
        with self._lock:
            self._label, self._total, self._done = label, total, 0
            self._began = self._last_line = time.perf_counter()
            self._active = True
            if self._progress is not None:
                self._task = self._progress.add_task(label, total=total, rate="", detail="")
        if watch is not None and not self.quiet:
            self._stop_watch = threading.Event()
            self._watcher = threading.Thread(
                target=self._poll, args=(watch, self._stop_watch), daemon=True
            )
            self._watcher.start()

    def advance(self, records: int) -> None:
        with self._lock:
            self._update(self._done + records, None)

    def detail(self, text: str) -> None:
        """A line of stage-specific figures (the augment step's calls, rates and cost)."""
        with self._lock:
            if not self._active:
                return
            if self._progress is not None and self._task is not None:
                self._progress.update(self._task, detail=text)
                return
            now = time.perf_counter()
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
            if not self._active:
                return
            if records is not None:
                self._done = records
            self._total = self._done if self._total is None else self._total
            if self._progress is not None and self._task is not None:
                self._progress.update(
                    self._task, completed=self._total, total=self._total, rate=self._rate()
                )
            elif not self.quiet:
                seconds = time.perf_counter() - self._began
                self._line(f"{self._done} records in {seconds:.1f} s ({self._rate()} rec/s)")
            self._task, self._active = None, False

    def _poll(self, watch: Watch, stop: threading.Event) -> None:
        while not stop.wait(POLL_SECONDS):
            try:
                done, estimate = watch()
            except OSError:
                continue  # a file renamed under us: the next poll sees the new state
            with self._lock:
                if self._active:
                    self._update(done, estimate)

    def _rate(self) -> str:
        rate = self._done / max(time.perf_counter() - self._began, 1e-9)
        return f"{rate:,.0f}"

    def _update(self, done: int, estimate: int | None) -> None:
        # Called with the lock held.
        self._done = done
        if estimate is not None:
            self._total = max(estimate, done)
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=done, total=self._total, rate=self._rate())
            return
        now = time.perf_counter()
        if self.quiet or now - self._last_line < self.plain_every:
            return
        self._last_line = now
        total = f"/{self._total}" if self._total is not None else ""
        eta = ""
        elapsed = now - self._began
        if self._total and done:
            eta = f", ETA {max(self._total - done, 0) * elapsed / done:.0f} s"
        self._line(f"{done}{total} records, {self._rate()} rec/s{eta}")

    def _line(self, text: str) -> None:
        # Not print(): the recipe flow has log_prints=True, which turns print() into Prefect
        # log records (hidden below WARNING); these lines are for the terminal or CI log.
        sys.stderr.write(f"[{self._label}] {text}\n")
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
    table = Table(title=f"sftforge · {body['recipe']} → {body['output_dir']}")
    failed = [_failed(stage) for stage in body["stages"]]
    # The column only where a stage counts failures, so other recipes' tables stay as they were.
    counts = any(n is not None for n in failed)
    columns = ("stage", "in", "out", "rejected", *(("failed",) if counts else ()), "seconds")
    for column in (*columns, "rec/s"):
        table.add_column(column, justify="left" if column in ("stage", "rejected") else "right")
    for stage, n_failed in zip(body["stages"], failed, strict=True):
        rejected = ", ".join(f"{k}: {v}" for k, v in stage["rejected"].items()) or "-"
        rate = stage["in"] / stage["seconds"] if stage["seconds"] else 0.0
        cells = [stage["name"], str(stage["in"]), str(stage["out"]), rejected]
        if counts:
            cells.append("-" if n_failed is None else f"[red]{n_failed}" if n_failed else "0")
        table.add_row(*cells, f"{stage['seconds']:.2f}", f"{rate:,.0f}")
    first = body["stages"][0]["in"] if body["stages"] else 0
    total_failed = sum(n or 0 for n in failed)
    table.caption = (
        f"{first} records in, {body['stages'][-1]['out']} out, "
        f"{body['wall_seconds']:.1f} s wall ({first / max(body['wall_seconds'], 1e-9):,.0f} rec/s)"
        + (f"; {total_failed} failed (kept, retried by a rerun)" if total_failed else "")
        + _id_collisions(body["stages"][0] if body["stages"] else {})
    )
    return table


def _id_collisions(read: dict[str, Any]) -> str:
    """The caption's note on repeated input ids (none: nothing, so the usual caption stays)."""
    counts = read.get("id_collisions") or {}
    if not counts:
        return ""
    per_source = ", ".join(f"{source}: {n}" for source, n in counts.items())
    total = sum(counts.values())
    return f"; {total} repeated {'id' if total == 1 else 'ids'} made unique (#2, #3…: {per_source})"


def backfill_table(rows: list[dict[str, Any]], title: str) -> Group:
    """One row per partition (state, attempts, counts, time); the errors of failed ones
    follow the table, one line each, so that the table stays readable in 80 columns."""
    table = Table(title=title)
    for column in ("partition", "state", "attempts", "in", "out", "rejected", "seconds"):
        table.add_column(
            column, justify="left" if column in ("partition", "state") else "right", no_wrap=True
        )
    styles = {"completed": "green", "skipped": "dim", "failed": "red", "no input": "yellow"}
    counts: dict[str, int] = {}
    errors = []
    for row in rows:
        counts[row["state"]] = counts.get(row["state"], 0) + 1

        def num(key: str, row: dict[str, Any] = row) -> str:
            value = row.get(key)
            return "-" if value is None else str(value)

        seconds = row.get("seconds")
        table.add_row(
            row["partition"],
            f"[{styles.get(row['state'], '')}]{row['state']}",
            num("attempts"),
            num("in"),
            num("out"),
            num("rejected"),
            "-" if seconds is None else f"{seconds:.1f}",
        )
        if row.get("error"):
            errors.append(Text(f"{row['partition']}: {row['error']}", style="red"))
    table.caption = ", ".join(f"{n} {state}" for state, n in counts.items())
    return Group(table, *errors)
