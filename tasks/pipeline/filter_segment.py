"""Running a fused segment of global filters: scan every shard in parallel, decide in order
in this process, apply in parallel (see tasks/global_filters.py for the split).

Resume: a shard whose stages all have their markers is not applied again; the scan still
reads every shard, since the decisions for the others depend on all of them.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pyarrow as pa
from sftforge.tasks.base.memory import release_memory
from sftforge.tasks.base.outcome import Rejected
from sftforge.tasks.base.shards import (
    load_marker,
    read_table,
    save_marker,
    stage_part,
    table_records,
    write_stage_shard,
)
from sftforge.tasks.base.workers import map_in_workers
from sftforge.tasks.pipeline.engine import Segment, shard_stats
from sftforge.tasks.pipeline.global_filters import (
    DedupDecider,
    SampleDecider,
    decider,
    judge,
    name_survivors,
    scan_columns,
    scan_records,
)
from sftforge.tasks.pipeline.read_stage import reject_row
from sftforge.tasks.readers.sharegpt import dumps

Verdict = dict[int, Rejected] | Any  # rows decided here, or the sampler that judges them


def run_filter_segment(
    out: Path, segment: Segment, shards: int, seed: int = 0
) -> dict[str, list[dict[str, Any]]]:
    stored = [_stored(out, segment, shard) for shard in range(shards)]
    if all(s is not None for s in stored):
        return _by_stage(segment, stored)  # type: ignore[arg-type]
    deciders = [decider(s.step, seed, s.input_kind) for s in segment.stages]
    kind, columns = segment.stages[0].input_kind, scan_columns(deciders)
    scans = map_in_workers(
        scan_part,
        [(stage_part(out, segment.input_stage, i), kind, columns, deciders) for i in range(shards)],
    )
    verdicts, seconds = [], []
    for shard, (rows, scan, scan_seconds) in enumerate(scans):  # in order: "first" is input order
        shard_verdicts, decide_seconds = _decide(deciders, shard, scan, rows)
        verdicts.append(shard_verdicts)
        seconds.append([a + b for a, b in zip(scan_seconds, decide_seconds, strict=True)])
    for position, d in enumerate(deciders):
        if isinstance(d, SampleDecider):
            sampler = d.finish()
            for shard_verdicts in verdicts:
                shard_verdicts[position] = sampler
        else:
            name_survivors([v[position] for v in verdicts], lambda i: _ids(out, segment, i))
    del deciders  # the keys seen: the largest thing this process holds
    release_memory()
    results = map_in_workers(
        apply_shard,
        [(out, segment, i, verdicts[i], seconds[i]) for i in range(shards)],
    )
    return _by_stage(segment, list(results))


def _stored(out: Path, segment: Segment, shard: int) -> dict[str, dict[str, Any]] | None:
    found = {s.stage: load_marker(out, s.stage, shard, s.fingerprint) for s in segment.stages}
    return found if all(v is not None for v in found.values()) else None  # type: ignore[misc]


def _by_stage(
    segment: Segment, results: list[dict[str, dict[str, Any]]]
) -> dict[str, list[dict[str, Any]]]:
    return {s.stage: [r[s.stage] for r in results] for s in segment.stages}


def scan_part(
    path: Path, kind: str, columns: list[str], deciders: list[Any]
) -> tuple[int, list[Any], list[float]]:
    """A worker's job: the row count, and each decider's scan of one shard, with timings."""
    table = read_table(path, kind, columns)
    began = time.perf_counter()
    scans = scan_records(table, deciders)
    share = (time.perf_counter() - began) / max(len(deciders), 1)
    return table.num_rows, scans, [share] * len(deciders)


def _ids(out: Path, segment: Segment, shard: int) -> list[str]:
    path = stage_part(out, segment.input_stage, shard)
    return read_table(path, segment.stages[0].input_kind, ["id"]).column("id").to_pylist()


def _decide(
    deciders: list[Any], shard: int, scans: list[Any], rows: int
) -> tuple[list[Verdict], list[float]]:
    """One shard, in order: the dedups' rejections; the samples only gather their heaps."""
    alive = list(range(rows))
    verdicts: list[Verdict] = []
    seconds: list[float] = []
    for d, scan in zip(deciders, scans, strict=True):
        began = time.perf_counter()
        if isinstance(d, DedupDecider):
            rejected = d.absorb(shard, scan, alive)
            alive = [row for position, row in enumerate(alive) if position not in rejected]
            verdicts.append(rejected)
        else:
            d.absorb(shard, scan, alive)
            verdicts.append(None)  # the sampler, once every shard is in
        seconds.append(time.perf_counter() - began)
    return verdicts, seconds


def apply_shard(
    out: Path, segment: Segment, shard: int, verdicts: list[Verdict], seconds: list[float]
) -> dict[str, dict[str, Any]]:
    """A worker's job: each stage's output is the rows of its input it keeps, unchanged."""
    stored = _stored(out, segment, shard)
    if stored is not None:
        return stored
    table = read_table(stage_part(out, segment.input_stage, shard), segment.stages[0].input_kind)
    results = {}
    for stage, verdict, spent in zip(segment.stages, verdicts, seconds, strict=True):
        began = time.perf_counter()
        rejected = judge(table, verdict)
        kept = [row for row in range(table.num_rows) if row not in rejected]
        rejects = _reject_rows(table, rejected)
        output = table.take(pa.array(kept, type=pa.int64()))
        stats = shard_stats(
            stage.fingerprint, table.num_rows, kept, rejects, spent + time.perf_counter() - began
        )
        done = load_marker(out, stage.stage, shard, stage.fingerprint)
        if done is None:  # else: written by an earlier run, to the same bytes
            write_stage_shard(out, stage.stage, shard, stage.kind, output, rejects)
            save_marker(out, stage.stage, shard, stats)
        results[stage.stage] = done or stats
        table = output
    return results


def _reject_rows(table: pa.Table, rejected: dict[int, Rejected]) -> list[dict[str, Any]]:
    """Reject rows as a record-by-record step makes them: the whole record as JSON text."""
    rows = sorted(rejected)
    records = table_records(table.take(pa.array(rows, type=pa.int64()))) if rows else []
    return [
        reject_row(record, rejected[row], dumps(record))
        for row, record in zip(rows, records, strict=True)
    ]
