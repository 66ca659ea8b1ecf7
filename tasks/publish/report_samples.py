"""Sample records for OUT/report.html (report.py): per stage, the first records it kept, and
per reject reason the first records it rejected with that reason — as escaped text in
collapsible `<details>`, closed until a reader opens them.

"First" is input order (shard 0 first), so a report of the same run shows the same samples.
Only what is shown is read: a stage's first row group for the records it kept, the `reason`
column of its reject parts until every reason has its samples.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

SAMPLES = 3  # per stage, and per reject reason of a stage
TEXT_LIMIT = 1_500  # characters of one record shown; the rest is counted

STYLE = """
#samples details { margin: .3rem 0; } #samples summary { cursor: pointer; }
#samples details details { margin-left: 1.2rem; }
.sample { margin: .4rem 0 .8rem; } .sample .meta { color: #555; font-size: 13px; }
.sample pre { white-space: pre-wrap; overflow-wrap: anywhere; background: #f6f6f6;
  padding: .5rem; margin: .2rem 0; max-height: 22rem; overflow: auto; font-size: 13px; }
"""


def _parts(folder: Path) -> list[Path]:
    return sorted(folder.glob("part-*.parquet"))


def first_rows(folder: Path, n: int = SAMPLES) -> list[dict[str, Any]]:
    """The first `n` rows of a stage's parts, in shard order."""
    rows: list[dict[str, Any]] = []
    for path in _parts(folder):
        for batch in pq.ParquetFile(path).iter_batches(batch_size=n - len(rows)):
            rows += batch.to_pylist()
            break
        if len(rows) >= n:
            break
    return rows[:n]


def reject_rows(folder: Path, reasons: list[str], n: int = SAMPLES) -> dict[str, list[dict]]:
    """Per reason, its first `n` rejects (`id, source, reason, detail, record`)."""
    found: dict[str, list[dict[str, Any]]] = {reason: [] for reason in reasons}
    for path in _parts(folder):
        wanted = {r for r, rows in found.items() if len(rows) < n}
        if not wanted:
            break
        column = pq.read_table(path, columns=["reason"]).column("reason").to_pylist()
        picks, counts = [], {r: len(found[r]) for r in wanted}
        for row, reason in enumerate(column):
            if reason in counts and counts[reason] < n:
                picks.append(row)
                counts[reason] += 1
        if picks:
            table = pq.read_table(path).take(pa.array(picks, pa.int64()))
            for row in table.to_pylist():
                found[row["reason"]].append(row)
    return found


def _cut(text: str) -> str:
    if len(text) <= TEXT_LIMIT:
        return text
    return f"{text[:TEXT_LIMIT]}\n… ({len(text) - TEXT_LIMIT:,} more characters)"


def readable(record: dict[str, Any]) -> str:
    """A record as a person reads it: turns with their roles, or instruction/input/output."""
    messages = record.get("messages")
    if isinstance(messages, list):
        return "\n\n".join(f"[{m.get('role')}]\n{m.get('content') or ''}" for m in messages)
    if "instruction" in record:
        parts = [("instruction", record.get("instruction")), ("input", record.get("input"))]
        parts.append(("output", record.get("output")))
        for i, pair in enumerate(record.get("outputs") or [], 1):  # an augmented chain
            parts += [(f"answer {i}", pair.get("output")), (f"feedback {i}", pair.get("feedback"))]
        return "\n\n".join(f"### {name}\n{text}" for name, text in parts if text)
    return json.dumps(record, ensure_ascii=False, indent=1, default=str)


def _original(text: str | None) -> str:
    """A reject's `record` column: the input as JSON text (pretty when it parses)."""
    if text is None:
        return ""
    try:
        return json.dumps(json.loads(text), ensure_ascii=False, indent=1)
    except (ValueError, TypeError):
        return text


def _sample(meta: list[str], text: str) -> str:
    line = " · ".join(html.escape(part) for part in meta if part)
    return (
        f'<div class="sample"><div class="meta">{line}</div>'
        f"<pre>{html.escape(_cut(text))}</pre></div>"
    )


def _stage_samples(out: Path, stage: dict[str, Any]) -> str:
    name = stage["name"]
    data = f'data-stage="{html.escape(name)}"'
    kept = first_rows(out / name)
    body = [
        f'<details class="kept" {data}><summary>kept: the first {len(kept)} of '
        f"{stage['out']}</summary>"
        + "".join(_sample([str(r.get("id")), r.get("source") or ""], readable(r)) for r in kept)
        + "</details>"
    ]
    reasons = list(stage["rejected"])
    for reason, rows in reject_rows(out / "rejects" / name, reasons).items():
        body.append(
            f'<details class="rejects" {data} data-reason="{html.escape(reason)}">'
            f"<summary>rejected as <b>{html.escape(reason)}</b>: {stage['rejected'][reason]} "
            f"({len(rows)} shown)</summary>"
            + "".join(
                _sample(
                    [str(r.get("id")), r.get("source") or "", r.get("detail") or ""],
                    _original(r.get("record")),
                )
                for r in rows
            )
            + "</details>"
        )
    rejected = sum(stage["rejected"].values())
    return (
        f'<details class="stage-samples" {data}><summary><b>{html.escape(name)}</b>: '
        f"{stage['out']} kept, {rejected} rejected</summary>" + "".join(body) + "</details>"
    )


def samples_section(out: Path, stages: list[dict[str, Any]]) -> str:
    """The report's "Sample records" section: every stage, its kept and rejected samples."""
    return (
        '<section id="samples"><h2>Sample records</h2><p class="note">Per stage, the first '
        f"{SAMPLES} records it kept and, per reason, the first {SAMPLES} it rejected (the "
        "input as it was read), in input order.</p>"
        + "".join(_stage_samples(out, stage) for stage in stages)
        + "</section>"
    )
