"""Shard storage: parquet parts written atomically, and the per-shard completion markers.

Layout under the run's output directory OUT:

    OUT/<stage>/part-NNNNN.parquet           records kept by the stage
    OUT/rejects/<stage>/part-NNNNN.parquet   records it rejected (only when there are any)
    OUT/.sftforge/state/<stage>/part-NNNNN.json   written last: the shard is complete

A shard counts as done only when its marker exists and carries the fingerprint of the
current recipe and input; a crash at any point leaves at worst a finished part file
without a marker, which the rerun simply writes again (to the same bytes).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from sftforge.schemas.records import JSON_FIELDS, REJECT_SCHEMA, SCHEMAS
from sftforge.tasks.base.atomic import naming, temp_path, write_bytes_atomic
from sftforge.tasks.base.canonical import dumps
from sftforge.tasks.base.stats import StageStats

WORK_DIR = ".sftforge"  # sftforge's own bookkeeping inside OUT
STATE_DIR = f"{WORK_DIR}/state"
_PART = re.compile(r"^part-(\d{5})\.(parquet|json)$")


def part_name(shard: int) -> str:
    return f"part-{shard:05d}.parquet"


def stage_part(out: Path, stage: str, shard: int) -> Path:
    return out / stage / part_name(shard)


def reject_part(out: Path, stage: str, shard: int) -> Path:
    return out / "rejects" / stage / part_name(shard)


def write_table_atomic(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    # Fixed writer settings: the same rows always give the same bytes.
    with naming(path):
        pq.write_table(
            table,
            tmp,
            compression="zstd",
            row_group_size=10_000,
            write_statistics=True,
            store_schema=True,
        )
        os.replace(tmp, path)


def _json_text(value: Any) -> str:
    return dumps(value) if value else "{}"


def _json_value(text: str | None) -> Any:
    return json.loads(text) if text and text != "{}" else {}


def records_table(records: list[dict[str, Any]], kind: str) -> pa.Table:
    schema = SCHEMAS[kind]
    columns = {}
    for name in schema.names:
        if name in JSON_FIELDS:
            columns[name] = [_json_text(r.get(name)) for r in records]
        else:
            columns[name] = [r.get(name) for r in records]
    return pa.Table.from_pydict(columns, schema=schema)


def read_table(path: Path, kind: str, columns: list[str] | None = None) -> pa.Table:
    schema = SCHEMAS[kind]
    if columns is not None:
        schema = pa.schema([schema.field(name) for name in columns])
    return pq.read_table(path, columns=columns, schema=schema)


def table_records(table: pa.Table) -> list[dict[str, Any]]:
    records = table.to_pylist()
    for name in JSON_FIELDS.intersection(table.schema.names):
        for record in records:
            record[name] = _json_value(record[name])
    return records


def read_records(path: Path, kind: str, columns: list[str] | None = None) -> list[dict[str, Any]]:
    """A shard's records; `columns` reads only those (a first pass that needs few fields)."""
    return table_records(read_table(path, kind, columns))


def rejects_table(rejects: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rejects, schema=REJECT_SCHEMA)


def write_stage_shard(
    out: Path,
    stage: str,
    shard: int,
    kind: str,
    kept: list[dict[str, Any]] | pa.Table,
    rejects: list[dict[str, Any]],
) -> None:
    """`kept` as records, or as a table already (a filter's rows taken from its input)."""
    table = kept if isinstance(kept, pa.Table) else records_table(kept, kind)
    write_table_atomic(table, stage_part(out, stage, shard))
    rejected = reject_part(out, stage, shard)
    if rejects:
        write_table_atomic(rejects_table(rejects), rejected)
    elif rejected.exists():  # left by an earlier run of a different recipe
        rejected.unlink()


def marker(out: Path, stage: str, shard: int) -> Path:
    return out / STATE_DIR / stage / f"part-{shard:05d}.json"


def load_marker(out: Path, stage: str, shard: int, fingerprint: str) -> StageStats | None:
    path = marker(out, stage, shard)
    try:
        stats = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if stats.get("fingerprint") != fingerprint:
        return None
    return StageStats.from_json(stats, reused=True)  # an earlier run's: the shard is skipped


def save_marker(out: Path, stage: str, shard: int, stats: StageStats) -> None:
    write_bytes_atomic(marker(out, stage, shard), dumps(stats.to_json()).encode())


def remove_stale_temporaries(out: Path) -> None:
    """Temporary files of a killed run (they carry its pid, so nothing else removes them)."""
    if out.is_dir():
        for path in out.rglob(".*.tmp"):
            path.unlink(missing_ok=True)


def remove_parts_from(folder: Path, first_stale: int) -> None:
    """Delete part files numbered >= first_stale (left by an earlier, larger run)."""
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        match = _PART.match(path.name)
        if match and int(match.group(1)) >= first_stale:
            path.unlink()
