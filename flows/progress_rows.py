"""The live display's parts (progress.py): the recent rate an ETA comes from, one stage's
state, and its row laid out to the terminal's width — 80 columns included.

A row is `name bar done/total rate ETA`; the name is cut with an ellipsis before the bar or the
counts give way. Below it, when there is one, a line of what the stage reused and the step's own
figures (augment: calls, rates, cost), cut to the width as well.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from rich.console import Console, ConsoleOptions, RenderResult
from rich.text import Text

WINDOW_SECONDS = 30.0  # the "recent" of the recent rate
MIN_SPAN_SECONDS = 1.0  # no rate (and no ETA) from less than this
NAME_SHARE = 4  # a name takes at most 1/NAME_SHARE of the width (20 of 80 columns)
BAR_MIN, BAR_MAX = 6, 40


class RecentRate:
    """Records per second over about the last `window` seconds, for the live rate and ETA.

    Shards finish in bursts (several workers at once, then nothing for a while): a rate taken
    between the first and the last sample of a burst is huge (rich's own estimate showed
    "0:00:05" with 15,000 records left at 577 rec/s). Here the span runs from an anchor sample
    at or before the window's start up to *now*, so a burst counts over the time it took and a
    stall slows the rate down. Counts are records this run processed (reused ones are not).
    """

    def __init__(
        self, start: float, window: float = WINDOW_SECONDS, min_span: float = MIN_SPAN_SECONDS
    ) -> None:
        self.window, self.min_span = window, min_span
        self._samples: deque[tuple[float, int]] = deque([(start, 0)])

    def add(self, when: float, processed: int) -> None:
        if processed <= self._samples[-1][1]:
            return
        self._samples.append((when, processed))
        # Keep one sample at or before the window's start: the anchor of the span.
        while len(self._samples) > 2 and self._samples[1][0] <= when - self.window:
            self._samples.popleft()

    def rate(self, now: float) -> float | None:
        (began, first), (_, last) = self._samples[0], self._samples[-1]
        span = now - began
        if last <= first or span < self.min_span:
            return None
        return (last - first) / span

    def eta(self, remaining: int, now: float) -> float | None:
        if remaining <= 0:
            return 0.0
        rate = self.rate(now)
        return None if rate is None else remaining / rate


def clock(seconds: float | None) -> str:
    if seconds is None:
        return "-:--:--"
    whole = int(seconds + 0.5)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


@dataclass
class StageState:
    """One stage of the display: what is done, what of it was reused, its rate."""

    label: str
    total: int | None  # None: not known (yet)
    began: float
    meter: RecentRate
    done: int = 0  # records done, reused ones included
    reused_records: int = 0
    reused_shards: int = 0
    shards: int | None = None  # the stage's shards, when known
    detail: str = ""
    ended: float | None = None
    estimated: bool = False  # `total` is a watch's estimate (the read stage's, from bytes read)

    @property
    def processed(self) -> int:
        """Records this run processed itself: the rate counts these only."""
        return max(self.done - self.reused_records, 0)

    def reused_note(self) -> str:
        if not self.reused_shards:
            return ""
        of = f"/{self.shards}" if self.shards is not None else ""
        return f"{self.reused_shards}{of} shards reused"

    def all_reused(self) -> bool:
        return self.reused_shards > 0 and self.processed == 0 and self.ended is not None

    def rate(self, now: float) -> float | None:
        if self.ended is None:
            return self.meter.rate(now)
        seconds = self.ended - self.began
        return self.processed / seconds if self.processed and seconds > 0 else None

    def counts(self) -> str:
        return f"{self.done:,}" if self.total is None else f"{self.done:,}/{self.total:,}"

    def status(self, now: float) -> str:
        """What follows the counts: the rate and ETA; the time taken once done; or, when
        every shard was reused, that."""
        if self.all_reused():
            return self.reused_note()
        rate = self.rate(now)
        shown = "–" if rate is None else f"{rate:,.0f}"
        if self.ended is not None:
            return f"{shown} rec/s in {clock(self.ended - self.began)}"
        remaining = None if self.total is None else self.total - self.done
        eta = None if remaining is None else self.meter.eta(remaining, now)
        return f"{shown} rec/s ETA {clock(eta)}"

    def note(self) -> str:
        """The line under the row: partial reuse, the step's own figures."""
        reused = "" if self.all_reused() else self.reused_note()
        return " · ".join(part for part in (reused, self.detail) if part)


def _bar(width: int, done: int, total: int | None) -> Text:
    if total is None or total <= 0:
        return Text("━" * width, style="bar.back")
    filled = min(width, round(width * done / total))
    style = "bar.finished" if done >= total else "bar.complete"
    return Text("━" * filled, style=style) + Text("━" * (width - filled), style="bar.back")


def stage_lines(stages: list[StageState], width: int, now: float) -> list[Text]:
    """Every stage's row (and note line), none wider than `width`."""
    if not stages:
        return []
    tails = [f"{s.counts()} {s.status(now)}" for s in stages]
    tail_width = max(len(t) for t in tails)
    longest = max(len(s.label) for s in stages)
    # The name gives way first: counts and status are kept whole, the bar keeps BAR_MIN.
    name_width = max(1, min(longest, width // NAME_SHARE, width - tail_width - BAR_MIN - 2))
    bar_width = max(1, min(BAR_MAX, width - name_width - tail_width - 2))
    lines = []
    for state, tail in zip(stages, tails, strict=True):
        name = Text(state.label, style="bold")
        name.truncate(name_width, overflow="ellipsis", pad=True)
        row = Text.assemble(name, " ", _bar(bar_width, state.done, state.total), " ", tail)
        row.truncate(width, overflow="ellipsis")
        lines.append(row)
        note = state.note()
        if note:
            line = Text("  " + note, style="dim")
            line.truncate(width, overflow="ellipsis")
            lines.append(line)
    return lines


class StageView:
    """A rich renderable of the stages, laid out anew at each refresh (so the ETA moves)."""

    def __init__(self, clock_fn: Any) -> None:
        self.stages: list[StageState] = []
        self.clock = clock_fn

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from stage_lines(list(self.stages), options.max_width, self.clock())
