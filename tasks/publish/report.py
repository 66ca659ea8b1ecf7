"""OUT/report.html: one self-contained page of plots of what a run did.

Plots are matplotlib figures rendered to SVG (report_plots.py) and inlined (no script, no
external file, no network: the page's Content-Security-Policy forbids loading anything). Each
plot is a `<figure class="plot" id="plot-…">`, so a browser test can check that all of them
are there.
"""

from __future__ import annotations

import html
from collections import Counter
from pathlib import Path
from typing import Any

from sftforge.tasks.base.atomic import write_bytes_atomic
from sftforge.tasks.pipeline.snapshot import read_recipe_snapshot
from sftforge.tasks.publish.report_plots import (
    cost_curve,
    counts_bar,
    histogram,
    mix,
    rejects_by_stage,
    stage_funnel,
)
from sftforge.tasks.publish.report_samples import STYLE as SAMPLES_STYLE
from sftforge.tasks.publish.report_samples import samples_section
from sftforge.tasks.publish.run_stats import RunStats, collect, summary

REPORT = "report.html"

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


def _hits_table(stages: list[dict[str, Any]]) -> str:
    """Records rejected per benchmark by a stage that counts hits (decontaminate), with the
    benchmarks it could not load; nothing when no stage does."""
    rows = []
    for s in stages:
        summary = next((v for v in s.values() if isinstance(v, dict) and "hits" in v), None)
        if summary is None:
            continue
        for name, info in (summary.get("benchmarks") or {}).items():
            cells = [
                s["name"],
                name,
                info.get("source", ""),
                info.get("items", ""),
                info.get("hits", 0),
            ]
            rows.append(
                "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>"
            )
        for name, why in (summary.get("skipped") or {}).items():
            cells = [s["name"], name, f"skipped: {why}", "-", "-"]
            rows.append(
                "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>"
            )
    if not rows:
        return ""
    head = "".join(f"<th>{h}</th>" for h in ("stage", "benchmark", "source", "items", "hits"))
    return (
        '<table id="benchmark-hits"><caption>Benchmark contamination: records rejected per '
        f"benchmark</caption><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
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
    conversations = stats.kind == "conversation"
    # What fits the records: turns per conversation; for instruction records (one prompt,
    # one answer each) the lengths of the two instead.
    figures = (
        [
            _figure_html(
                "plot-turns",
                "Conversation length: messages per record, before and after filtering",
                histogram("plot-turns", b.turns, a.turns, "messages per record"),
                before_note,
            )
        ]
        if conversations
        else [
            _figure_html(
                "plot-instruction-length",
                "Instruction length (instruction and input), before and after filtering",
                histogram(
                    "plot-instruction-length",
                    b.instruction_tokens,
                    a.instruction_tokens,
                    f"instruction + input tokens ({stats.token_counter})",
                ),
                before_note,
            ),
            _figure_html(
                "plot-output-length",
                "Output length, before and after filtering",
                histogram(
                    "plot-output-length",
                    b.output_tokens,
                    a.output_tokens,
                    f"output tokens ({stats.token_counter})",
                ),
                before_note,
            ),
        ]
    )
    figures += [
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
    if conversations:
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
        note = f"Every record's chain was generated by {model}. {sample}" if model else sample
        figures.append(
            _figure_html(
                "plot-datasets",
                "Dataset mix, before and after",
                mix("plot-datasets", b.datasets, a.datasets, "dataset"),
                note.strip(),
            )
        )
    for s in stages:  # near-duplicate clusters (dedup_near): how large they are
        near = s.get("near_duplicates")
        if near:
            sizes = Counter({int(k): v for k, v in near.get("cluster_sizes", {}).items()})
            figures.append(
                _figure_html(
                    f"plot-clusters-{s['name']}",
                    f"Near-duplicate clusters by size ({s['name']})",
                    counts_bar(
                        f"plot-clusters-{s['name']}", sizes, "records per cluster", "clusters"
                    ),
                    f"{near.get('clusters', 0)} clusters; {near.get('rejected', 0)} records "
                    "rejected, the first of each cluster kept.",
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


def _map_link(out: Path | None) -> str:
    """A link to `sftforge map`'s page when the run has one (a file beside this one)."""
    if out is None or not (out / "map.html").is_file():
        return ""
    return '<p class="sub" id="map-link"><a href="map.html">Dataset map</a> (sftforge map)</p>'


def render(stats: RunStats, out: Path | None = None) -> str:
    """The page; with `out` (the run's folder), sample records of every stage too."""
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
        f"<title>{html.escape(title)}</title><style>{_STYLE}{SAMPLES_STYLE}</style></head><body>"
        f'<h1>{html.escape(title)}</h1><p class="sub">{html.escape(head)}</p>'
        f'<p class="sub">{html.escape(str(m.get("output_dir", "")))}</p>'
        + _map_link(out)
        + _stage_table(stages)
        + _hits_table(stages)
        + "".join(plots(stats))
        + (samples_section(out, stages) if out is not None else "")
        + "</body></html>\n"
    )


def write_report(out: Path) -> Path:
    snapshot = read_recipe_snapshot(out)
    stats = collect(out, snapshot[1] if snapshot else None)
    path = out / REPORT
    write_bytes_atomic(path, render(stats, out).encode("utf-8"))
    return path
