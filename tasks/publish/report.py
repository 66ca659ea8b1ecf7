"""OUT/report.html: one self-contained page of plots of what a run did.

Plots are matplotlib figures rendered to SVG and inlined (no script, no external file, no
network: the page's Content-Security-Policy forbids loading anything). Each plot is a
`<figure class="plot" id="plot-…">`, so a browser test can check that all of them are there.
"""

from __future__ import annotations

import html
import io
import re
from collections import Counter
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.figure import Figure

from sftforge.tasks.base.atomic import write_bytes_atomic
from sftforge.tasks.pipeline.snapshot import read_recipe_snapshot
from sftforge.tasks.publish.run_stats import RunStats, collect, summary

REPORT = "report.html"
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


# ---------------------------------------------------------------- page

_STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 64rem; color: #222;
       padding: 0 1rem; }
h1 { margin-bottom: .2rem; } .sub { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 14px; }
th, td { border-bottom: 1px solid #ddd; padding: .25rem .6rem; text-align: right; }
th:first-child, td:first-child, .text { text-align: left; }
figure.plot { margin: 2rem 0; } figure.plot svg { max-width: 100%; height: auto; }
figcaption { font-weight: 600; margin-bottom: .4rem; } .note { color: #666; font-size: 13px; }
"""


def _figure_html(plot_id: str, title: str, svg: str, note: str = "") -> str:
    note_html = f'<div class="note">{html.escape(note)}</div>' if note else ""
    return (
        f'<figure class="plot" id="{plot_id}" data-title="{html.escape(title)}">'
        f"<figcaption>{html.escape(title)}</figcaption>{svg}{note_html}</figure>"
    )


def _stage_table(stages: list[dict[str, Any]]) -> str:
    rows = []
    for s in stages:
        rejected = ", ".join(f"{k}: {v}" for k, v in s["rejected"].items()) or "-"
        rate = f"{s['in'] / s['seconds']:,.0f}" if s["seconds"] else "-"
        rows.append(
            f"<tr><td>{html.escape(s['name'])}</td><td>{s['in']}</td><td>{s['out']}</td>"
            f'<td class="text">{html.escape(rejected)}</td><td>{s["seconds"]:.2f}</td>'
            f"<td>{rate}</td></tr>"
        )
    return (
        '<table><thead><tr><th>stage</th><th>in</th><th>out</th><th class="text">rejected</th>'
        "<th>seconds</th><th>records/s</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


def plots(stats: RunStats) -> list[str]:
    """Every plot of the report as a <figure>, in page order."""
    b, a = stats.before, stats.after
    stages = stats.manifest["stages"]
    sample = ""
    if b.sampled < b.total or a.sampled < a.total:
        sample = f"Measured on a seeded sample: {b.sampled} of {b.total} before, "
        sample += f"{a.sampled} of {a.total} after."
    before_note = f"Before = the output of {stats.before_stage}. {sample}".strip()
    figures = [
        _figure_html(
            "plot-turns",
            "Conversation length: messages per record, before and after filtering",
            histogram("plot-turns", b.turns, a.turns, "messages per record"),
            before_note,
        ),
        _figure_html(
            "plot-tokens",
            "Token length per record, before and after filtering",
            histogram("plot-tokens", b.tokens, a.tokens, f"tokens ({stats.token_counter})"),
            before_note,
        ),
        _figure_html(
            "plot-stages", "Records into and out of each stage", stage_funnel("plot-stages", stages)
        ),
        _figure_html(
            "plot-rejects", "Rejects by reason, per stage", rejects_by_stage("plot-rejects", stages)
        ),
        _figure_html(
            "plot-languages",
            "Language mix (fastText lid.176), before and after",
            mix("plot-languages", b.languages, a.languages, "language"),
            sample,
        ),
    ]
    if stats.kind == "conversation":
        figures.append(
            _figure_html(
                "plot-models",
                "Model mix, before and after",
                mix("plot-models", b.models, a.models, "model"),
                sample,
            )
        )
    else:
        model = stats.augmentation.model if stats.augmentation else None
        note = "Instruction records have no model field; their datasets are shown."
        if model:
            note = f"Every record's chain was generated by {model}. " + note
        figures.append(
            _figure_html(
                "plot-models",
                "Model mix: instruction records by dataset, before and after",
                mix("plot-models", b.datasets, a.datasets, "dataset"),
                note,
            )
        )
    aug = stats.augmentation
    if aug is not None:
        figures += [
            _figure_html(
                "plot-revisions",
                "Revisions per record (answer/feedback pairs)",
                counts_bar("plot-revisions", aug.iterations, "iterations", "records"),
            ),
            _figure_html(
                "plot-stop-reasons",
                "Why each chain stopped",
                counts_bar("plot-stop-reasons", aug.stop_reasons, "stop reason", "records"),
                f"{aug.context_cut} records had a prompt cut to fit the context.",
            ),
            _figure_html(
                "plot-cost",
                "Cost over time",
                cost_curve("plot-cost", aug.cost_timeline, aug.timeline_unit),
                f"Total {aug.cost:.4f} USD for {aug.prompt_tokens} prompt and "
                f"{aug.completion_tokens} completion tokens ({aug.model or 'model not recorded'}).",
            ),
        ]
    return figures


def render(stats: RunStats) -> str:
    m = stats.manifest
    stages = m["stages"]
    first, last = stages[0], stages[-1]
    tokens = summary(stats.after.tokens)
    head = (
        f"{first['in']} records in, {last['out']} out "
        f"({first['in'] - last['out']} rejected) · {m.get('shards', '?')} shards · "
        f"{m.get('wall_seconds', 0):.1f} s · config hash {m['config_hash']} · "
        f"median {tokens['median']:.0f} tokens per final record"
    )
    title = f"sftforge report · {m['recipe']}"
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        # Self-contained by construction: the page may not load anything from anywhere.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f'<h1>{html.escape(title)}</h1><p class="sub">{html.escape(head)}</p>'
        f'<p class="sub">{html.escape(str(m.get("output_dir", "")))}</p>'
        + _stage_table(stages)
        + "".join(plots(stats))
        + "</body></html>\n"
    )


def write_report(out: Path) -> Path:
    snapshot = read_recipe_snapshot(out)
    stats = collect(out, snapshot[1] if snapshot else None)
    path = out / REPORT
    write_bytes_atomic(path, render(stats).encode("utf-8"))
    return path
