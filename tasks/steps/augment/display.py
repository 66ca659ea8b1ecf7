"""A live view of an augment run, fed by the runner's progress snapshots (rich)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table


def render(snapshot: dict[str, Any]) -> Table:
    s = snapshot
    table = Table(title="augment", show_header=False, box=None, padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_row(
        "records",
        f"{s['records_done']} done, {s['records_failed']} failed of {s['records_total']}"
        f" ({s['records_from_journal']} from the journal)",
    )
    table.add_row(
        "calls",
        f"{s['calls_sent']} sent, {s['calls_cached']} cached, {s['calls_in_flight']} in flight,"
        f" {s['calls_failed']} failed, {s['retries']} retries ({s['rate_limited']} x 429)",
    )
    table.add_row(
        "rate (last minute)",
        f"{s['requests_per_min']:.0f} / {s['rpm_limit']:.0f} req/min, "
        f"{s['tokens_per_min']:.0f} / {s['tpm_limit']:.0f} tok/min",
    )
    projected = s["cost_projected"]
    table.add_row(
        "tokens, cost",
        f"{s['prompt_tokens']} + {s['completion_tokens']}, ${s['cost']:.4f}"
        + (f" (projected ${projected:.4f})" if projected is not None else ""),
    )
    iterations = ", ".join(f"{k}: {v}" for k, v in s["iterations"].items()) or "-"
    table.add_row("pairs per record", iterations)
    if s.get("stopped"):
        table.add_row("stopped", str(s["stopped"]))
    return table


def status_line(snapshot: dict[str, Any]) -> str:
    """The same figures on one line, for a progress bar's detail or a CI log."""
    s = snapshot
    projected = s["cost_projected"]
    iterations = ",".join(f"{k}:{v}" for k, v in s["iterations"].items()) or "-"
    return (
        f"{s['records_done']} done · {s['records_failed']} failed · {s['calls_cached']} cached · "
        f"{s['calls_in_flight']} in flight · {s['requests_per_min']:.0f}/{s['rpm_limit']:.0f} "
        f"req/min · {s['tokens_per_min']:.0f}/{s['tpm_limit']:.0f} tok/min · ${s['cost']:.4f}"
        + (f" (proj ${projected:.4f})" if projected is not None else "")
        + f" · pairs {iterations}"
    )


class LiveProgress:
    """Use as `on_progress`: a live table on a terminal, nothing elsewhere (CI logs get the
    runner's summary line instead)."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self._live: Live | None = None

    def __enter__(self) -> LiveProgress:
        if self.console.is_terminal:
            self._live = Live(console=self.console, refresh_per_second=4)
            self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()

    def __call__(self, snapshot: dict[str, Any]) -> None:
        if self._live is not None:
            self._live.update(render(snapshot))
