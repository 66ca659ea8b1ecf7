"""The table `sftforge backfill` prints: one row per partition."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text


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
