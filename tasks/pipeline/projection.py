"""Column projection for map stages made only of pure filters.

A pure filter keeps a record unchanged or rejects it, so its output is rows of its input
table; when it also reads only a few fields, the shard's other columns need never become
Python objects (`filter_question` reads `output`; turning whole records into dicts cost five
times the filter itself). Rejects still carry the whole record: only those rows are converted.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from sftforge.tasks.base.outcome import Rejected
from sftforge.tasks.base.shards import table_records
from sftforge.tasks.pipeline.read_stage import reject_row
from sftforge.tasks.readers.sharegpt import dumps

# Step -> the fields it reads, for steps that return their input record or a Rejected.
FILTER_READS: dict[str, tuple[str, ...]] = {
    "filter_question": ("output",),
    "filter_model": ("model",),
}


def projected_columns(steps: list[str], names: list[str]) -> list[str] | None:
    """The columns a run of steps reads, or None when one of them needs whole records."""
    wanted: list[str] = []
    for step in steps:
        if step not in FILTER_READS:
            return None
        wanted.extend(FILTER_READS[step])
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
