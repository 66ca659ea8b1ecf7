"""Running a fused segment of filter passes: scan every shard in parallel, decide in order
in this process, apply in parallel (each step's `FilterPass` says what it scans and decides).

Every stage of the segment keeps a subset of its input's rows unchanged, so all their scans
read the segment's input. Resume: a shard whose stages all have their markers is not applied
again; the scan still reads every shard, since the decisions for the others depend on all.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow as pa

from sftforge.tasks.base.canonical import dumps
from sftforge.tasks.base.memory import release_memory
from sftforge.tasks.base.outcome import Rejected, reject_row
from sftforge.tasks.base.pool import map_in_workers
from sftforge.tasks.base.shards import (
    WORK_DIR,
    load_marker,
    read_table,
    save_marker,
    stage_part,
    table_records,
    write_stage_shard,
)
from sftforge.tasks.base.stats import StageStats
from sftforge.tasks.base.step_protocol import FilterPass, FilterPassStep, StepContext
from sftforge.tasks.pipeline.plan import Segment


def run_filter_segment(
    out: Path, segment: Segment, shards: int, context: StepContext
) -> dict[str, list[StageStats]]:
    stored = [_stored(out, segment, shard) for shard in range(shards)]
    if all(s is not None for s in stored):
        return _by_stage(segment, stored)  # type: ignore[arg-type]
    passes = [_pass(out, s.step, context, s.input_kind) for s in segment.stages]
    kind = segment.stages[0].input_kind
    columns = list(dict.fromkeys(c for p in passes for c in p.columns))
    scans = map_in_workers(
        scan_part,
        [(stage_part(out, segment.input_stage, i), kind, columns, passes) for i in range(shards)],
    )
    decided: list[list[Any]] = []
    seconds: list[list[float]] = []
    for shard, (rows, scan, scan_seconds) in enumerate(scans):  # in order: "first" is input order
        verdicts, decide_seconds = _decide(passes, shard, scan, rows)
        decided.append(verdicts)
        seconds.append([a + b for a, b in zip(scan_seconds, decide_seconds, strict=True)])
    per_pass = [
        p.finish([v[i] for v in decided], lambda shard: _ids(out, segment, shard))
        for i, p in enumerate(passes)
    ]
    del decided  # `finish` let go of what the passes had seen: the largest thing held here
    release_memory()
    results = map_in_workers(
        apply_shard,
        [(out, segment, i, passes, [v[i] for v in per_pass], seconds[i]) for i in range(shards)],
    )
    return _by_stage(segment, list(results))


def _pass(out: Path, step: Any, context: StepContext, kind: str) -> FilterPass:
    assert isinstance(step, FilterPassStep)
    # The step's own folder, as a batch step has: for what a pass makes once per run and its
    # workers read (an index), instead of pickling it into every shard's call.
    folder = out / WORK_DIR / step.step / step.stage
    return step.make_pass(replace(context, work_dir=folder), kind)


def _stored(out: Path, segment: Segment, shard: int) -> dict[str, StageStats] | None:
    found = {s.stage: load_marker(out, s.stage, shard, s.fingerprint) for s in segment.stages}
    return found if all(v is not None for v in found.values()) else None  # type: ignore[return-value]


def _by_stage(
    segment: Segment, results: list[dict[str, StageStats]]
) -> dict[str, list[StageStats]]:
    return {s.stage: [r[s.stage] for r in results] for s in segment.stages}


def scan_part(
    path: Path, kind: str, columns: list[str], passes: list[FilterPass]
) -> tuple[int, list[Any], list[float]]:
    """A worker's job: the row count, and each pass's scan of one shard, with timings."""
    table = read_table(path, kind, columns)
    began = time.perf_counter()
    scans = [p.scan(table) for p in passes]
    share = (time.perf_counter() - began) / max(len(passes), 1)
    return table.num_rows, scans, [share] * len(passes)


def _ids(out: Path, segment: Segment, shard: int) -> list[str]:
    path = stage_part(out, segment.input_stage, shard)
    return read_table(path, segment.stages[0].input_kind, ["id"]).column("id").to_pylist()


def _decide(
    passes: list[FilterPass], shard: int, scans: list[Any], rows: int
) -> tuple[list[Any], list[float]]:
    """One shard, in order: each pass decides among the rows the passes before it kept."""
    alive = list(range(rows))
    verdicts: list[Any] = []
    seconds: list[float] = []
    for p, scan in zip(passes, scans, strict=True):
        began = time.perf_counter()
        rejected = p.decide(shard, scan, alive)
        if rejected:
            alive = [row for position, row in enumerate(alive) if position not in rejected]
        verdicts.append(rejected)
        seconds.append(time.perf_counter() - began)
    return verdicts, seconds


def apply_shard(
    out: Path,
    segment: Segment,
    shard: int,
    passes: list[FilterPass],
    verdicts: list[Any],
    seconds: list[float],
) -> dict[str, StageStats]:
    """A worker's job: each stage's output is the rows of its input it keeps, unchanged."""
    stored = _stored(out, segment, shard)
    if stored is not None:
        return stored
    table = read_table(stage_part(out, segment.input_stage, shard), segment.stages[0].input_kind)
    results = {}
    for stage, p, verdict, spent in zip(segment.stages, passes, verdicts, seconds, strict=True):
        began = time.perf_counter()
        rejected = p.judge(table, verdict)
        kept = [row for row in range(table.num_rows) if row not in rejected]
        rejects = _reject_rows(table, rejected)
        output = table.take(pa.array(kept, type=pa.int64()))
        stats = StageStats.of_shard(
            stage.fingerprint,
            table.num_rows,
            len(kept),
            (r["reason"] for r in rejects),
            spent + time.perf_counter() - began,
            p.summarize(verdict),
        )
        done = load_marker(out, stage.stage, shard, stage.fingerprint)
        if done is None:  # else: written by an earlier run, to the same bytes
            write_stage_shard(out, stage.stage, shard, stage.kind, output, rejects)
            save_marker(out, stage.stage, shard, stats)
        results[stage.stage] = done or stats
        table = output
    return results


def _reject_rows(table: pa.Table, rejected: dict[int, Rejected]) -> list[dict[str, Any]]:
    """Reject rows as a record step makes them: the whole record as JSON text."""
    rows = sorted(rejected)
    records = table_records(table.take(pa.array(rows, type=pa.int64()))) if rows else []
    return [
        reject_row(record, rejected[row], dumps(record))
        for row, record in zip(rows, records, strict=True)
    ]
