"""The plots of OUT/report.html (report.py): matplotlib figures, each rendered to an SVG
string to inline in the page, with the before/after-filtering colours they share."""

from __future__ import annotations

import io
import re
from collections import Counter
from typing import Any

from sftforge.tasks.base.extras import require_extra

# Plotting is an extra (sftforge[report]): without it, one line names it.
matplotlib = require_extra("matplotlib", "report", "sftforge report")
Figure = require_extra("matplotlib.figure", "report", "sftforge report").Figure
MaxNLocator = require_extra("matplotlib.ticker", "report", "sftforge report").MaxNLocator

_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.S)
BEFORE, AFTER = "#8c8c8c", "#1f77b4"
_TOP = 10


def _svg(fig: Figure, plot_id: str) -> str:
    buffer = io.StringIO()
    # A salt per plot keeps SVG element ids unique within the page; no date keeps the
    # file the same for the same run; text stays text (smaller, selectable).
    with matplotlib.rc_context({"svg.hashsalt": plot_id, "svg.fonttype": "none"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    return _METADATA.sub("", text, count=1)  # matplotlib's RDF block: nothing a reader needs


def _figure(width: float = 7.5, height: float = 3.4) -> tuple[Figure, Any]:
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.add_subplot()


def _empty(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#666")
    ax.set_xticks([])
    ax.set_yticks([])


def _bins(values: list[int], count: int = 30) -> Any:
    import numpy as np

    low, high = min(values), max(values)
    if high <= low:
        return [low - 0.5, high + 0.5]
    if low >= 1 and high / low > 50:  # long tails (token counts): even steps on a log axis
        return np.geomspace(low, high + 1, count)
    if high - low < count and all(float(v).is_integer() for v in values):
        return np.arange(low - 0.5, high + 1.5)
    return np.linspace(low, high, count)


def histogram(plot_id: str, before: list[int], after: list[int], xlabel: str) -> str:
    fig, ax = _figure()
    values = before + after
    if not values:
        _empty(ax, "no records")
        return _svg(fig, plot_id)
    bins = _bins(values)
    ax.hist(
        before, bins=bins, color=BEFORE, alpha=0.55, label=f"before filtering (n={len(before)})"
    )
    ax.hist(after, bins=bins, color=AFTER, alpha=0.75, label=f"after (n={len(after)})")
    if len(bins) > 3 and bins[-1] / max(bins[0], 1e-9) > 50 and bins[0] >= 1:
        ax.set_xscale("log")
    else:  # counts: whole-number ticks (two messages each is "2", not 1.6 … 2.4)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    ax.set_xlabel(xlabel)
    ax.set_ylabel("records")
    ax.legend(frameon=False)
    return _svg(fig, plot_id)


def rejects_by_stage(plot_id: str, stages: list[dict[str, Any]]) -> str:
    names = [s["name"] for s in stages]
    reasons = sorted({r for s in stages for r in s["rejected"]})
    fig, ax = _figure(height=max(2.4, 0.42 * len(names) + 1.2))
    if not reasons:
        _empty(ax, "no records were rejected")
        return _svg(fig, plot_id)
    colors = matplotlib.colormaps["tab20"].colors
    left = [0] * len(names)
    for i, reason in enumerate(reasons):
        counts = [s["rejected"].get(reason, 0) for s in stages]
        ax.barh(names, counts, left=left, color=colors[i % len(colors)], label=reason)
        left = [a + b for a, b in zip(left, counts, strict=True)]
    for y, total in enumerate(left):
        if total:
            ax.text(total, y, f" {total}", va="center", fontsize=8)
    ax.invert_yaxis()  # stages top to bottom in run order
    ax.set_xlabel("records rejected")
    ax.legend(frameon=False, fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return _svg(fig, plot_id)


def stage_funnel(plot_id: str, stages: list[dict[str, Any]]) -> str:
    fig, ax = _figure(height=max(2.4, 0.42 * len(stages) + 1.0))
    names = [s["name"] for s in stages]
    ax.barh(names, [s["in"] for s in stages], color=BEFORE, alpha=0.5, label="in")
    ax.barh(names, [s["out"] for s in stages], color=AFTER, label="out")
    for y, s in enumerate(stages):
        ax.text(s["out"], y, f" {s['out']}", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("records")
    ax.legend(frameon=False)
    return _svg(fig, plot_id)


def _top(counter: Counter[str], n: int = _TOP) -> list[str]:
    return [key for key, _ in counter.most_common(n)]


def mix(plot_id: str, before: Counter[str], after: Counter[str], label: str) -> str:
    """Shares of each value before and after filtering, the most common first."""
    keys = _top(before + after)
    fig, ax = _figure(height=max(2.4, 0.36 * len(keys) + 1.2))
    if not keys:
        _empty(ax, f"no {label} recorded")
        return _svg(fig, plot_id)

    def shares(counter: Counter[str]) -> list[float]:
        total = sum(counter.values()) or 1
        return [100.0 * counter.get(k, 0) / total for k in keys]

    ys = range(len(keys))
    ax.barh([y - 0.2 for y in ys], shares(before), height=0.4, color=BEFORE, label="before")
    ax.barh([y + 0.2 for y in ys], shares(after), height=0.4, color=AFTER, label="after")
    ax.set_yticks(list(ys), [k if len(k) <= 30 else k[:29] + "…" for k in keys])
    ax.invert_yaxis()
    ax.set_xlabel(f"% of records ({label})")
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _svg(fig, plot_id)


def counts_bar(plot_id: str, counter: Counter[Any], xlabel: str, ylabel: str) -> str:
    fig, ax = _figure()
    if not counter:
        _empty(ax, "no records")
        return _svg(fig, plot_id)
    keys = sorted(counter) if all(isinstance(k, int) for k in counter) else _top(counter, 20)
    ax.bar([str(k) for k in keys], [counter[k] for k in keys], color=AFTER, width=0.6)
    ax.set_xlim(-0.5 - max(0, 3 - len(keys)) / 2, len(keys) - 0.5 + max(0, 3 - len(keys)) / 2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return _svg(fig, plot_id)


def cost_curve(plot_id: str, timeline: list[tuple[float, float]], unit: str) -> str:
    fig, ax = _figure()
    if not timeline:
        _empty(ax, "no calls recorded")
        return _svg(fig, plot_id)
    xs = [x / 60.0 if unit == "seconds" else x for x, _ in timeline]
    ax.plot(xs, [y for _, y in timeline], color=AFTER)
    ax.set_xlabel("minutes since the first call" if unit == "seconds" else "records augmented")
    ax.set_ylabel("cumulative cost (USD)")
    return _svg(fig, plot_id)
