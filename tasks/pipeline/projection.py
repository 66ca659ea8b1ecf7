"""Column projection for map stages made only of pure filters.

A pure filter keeps a record unchanged or rejects it, so its output is rows of its input
table; when it also reads only a few fields, the shard's other columns need never become
Python objects (`filter_question` reads `output`; turning whole records into dicts cost five
times the filter itself). Rejects still carry the whole record: only those rows are converted.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from sftforge.schemas.steps import StepBase
from sftforge.tasks.base.canonical import dumps
from sftforge.tasks.base.outcome import Rejected, reject_row
from sftforge.tasks.base.shards import table_records


def projected_columns(steps: list[StepBase], names: list[str]) -> list[str] | None:
    """The columns a run of steps reads (each step's `reads`: the fields of a step that
    returns its input record or a Rejected), or None when one of them needs whole records."""
    wanted: list[str] = []
    for step in steps:
        if step.reads is None:
            return None
        wanted.extend(step.reads)
    columns = list(dict.fromkeys(wanted))
    return columns if all(c in names for c in columns) else None


def whole_rejects(
    table: pa.Table, kept_rows: list[int], rejects: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Reject rows of projected records, remade from the whole rows they came from."""
    kept = set(kept_rows)
    rows = [row for row in range(table.num_rows) if row not in kept]
    records = table_records(table.take(pa.array(rows, type=pa.int64()))) if rows else []
    return [
        reject_row(record, Rejected(r["reason"], r["detail"]), dumps(record))
        for record, r in zip(records, rejects, strict=True)
    ]
