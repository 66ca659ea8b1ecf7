"""Terminal feedback: a live bar per stage on a terminal, plain lines in CI logs, a summary."""

from __future__ import annotations

import sys
import time
from typing import Any

from rich.console import Console
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


class StageProgress:
    """`start(label, total)` then `advance(n)` per finished shard; `quiet` prints nothing."""

    def __init__(self, quiet: bool = False, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.quiet = quiet
        self.live = not quiet and self.console.is_terminal
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._label = ""
        self._done = 0
        self._total: int | None = None
        self._began = 0.0

    def __enter__(self) -> StageProgress:
        if self.live:
            self._progress = Progress(
                TextColumn("[bold]{task.description:<40}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]:>9} rec/s"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=self.console,
            )
            self._progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._finish_plain()
        if self._progress is not None:
            self._progress.stop()

    def start(self, label: str, total: int | None) -> None:
        self._finish_plain()
        self._label, self._total, self._done, self._began = label, total, 0, time.perf_counter()
        if self._progress is not None:
            self._task = self._progress.add_task(label, total=total, rate="")

    def advance(self, records: int) -> None:
        self._done += records
        rate = self._done / max(time.perf_counter() - self._began, 1e-9)
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, advance=records, rate=f"{rate:,.0f}")
        elif not self.quiet and not self.live:
            total = f"/{self._total}" if self._total is not None else ""
            print(
                f"[{self._label}] {self._done}{total} records, {rate:,.0f} rec/s",
                file=sys.stderr,
                flush=True,
            )

    def _finish_plain(self) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=self._total or self._done)
        self._task = None


def summary_table(body: dict[str, Any]) -> Table:
    table = Table(title=f"sftforge · {body['recipe']} → {body['output_dir']}")
    for column in ("stage", "in", "out", "rejected", "seconds", "rec/s"):
        table.add_column(column, justify="left" if column in ("stage", "rejected") else "right")
    for stage in body["stages"]:
        rejected = ", ".join(f"{k}: {v}" for k, v in stage["rejected"].items()) or "-"
        rate = stage["in"] / stage["seconds"] if stage["seconds"] else 0.0
        table.add_row(
            stage["name"],
            str(stage["in"]),
            str(stage["out"]),
            rejected,
            f"{stage['seconds']:.2f}",
            f"{rate:,.0f}",
        )
    first = body["stages"][0]["in"] if body["stages"] else 0
    table.caption = (
        f"{first} records in, {body['stages'][-1]['out']} out, "
        f"{body['wall_seconds']:.1f} s wall ({first / max(body['wall_seconds'], 1e-9):,.0f} rec/s)"
    )
    return table
