"""Running a plan's segments over shards, without Prefect: what the Prefect tasks call.

One table (`RUNNERS`) says how each kind of segment runs: a map segment is one task per shard
(in parallel, each resuming after its last completed stage); a filter pass and a batch step
run over all shards at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pyarrow as pa

from sftforge.tasks.base.canonical import dumps
from sftforge.tasks.base.outcome import Rejected, reject_row
from sftforge.tasks.base.shards import (
    WORK_DIR,
    load_marker,
    read_table,
    records_table,
    save_marker,
    stage_part,
    table_records,
    write_stage_shard,
)
from sftforge.tasks.base.stats import StageStats
from sftforge.tasks.base.step_protocol import (
    BatchStep,
    Record,
    RecordFn,
    RecordStep,
    StepContext,
    TooManyFailures,
)
from sftforge.tasks.pipeline.filter_pass import run_filter_segment
from sftforge.tasks.pipeline.plan import Segment, SegmentKind, StagePlan
from sftforge.tasks.pipeline.projection import projected_columns, whole_rejects

StageResults = dict[str, list[StageStats]]  # per stage of a segment, its shards' stats


def apply_step_rows(
    fn: RecordFn, records: list[Record]
) -> tuple[list[Record], list[dict[str, Any]], list[int] | None]:
    """Run one record step over a shard's records. A step that raises rejects that record
    only. Also returns the input rows kept when the step changed none of them (a pure
    filter): its output is then those rows of its input table, with no rebuilding."""
    kept: list[Record] = []
    rejects: list[dict[str, Any]] = []
    rows: list[int] | None = []
    for i, record in enumerate(records):
        try:
            result = fn(record)
        except Exception as exc:
            result = Rejected("step_error", f"{type(exc).__name__}: {exc}")
        if isinstance(result, Rejected):
            rejects.append(reject_row(record, result, dumps(record)))
            continue
        kept.append(result)
        if rows is not None:
            if result is record:
                rows.append(i)
            else:
                rows = None
    return kept, rejects, rows


def _output_table(
    stage: StagePlan, table: pa.Table, kept: list[Record], rows: list[int] | None
) -> pa.Table:
    if rows is not None and stage.kind == stage.input_kind:
        return table.take(pa.array(rows, type=pa.int64()))
    return records_table(kept, stage.kind)


def _stats(
    stage: StagePlan, n_in: int, n_out: int, rejects: list[dict], began: float
) -> StageStats:
    reasons = (r["reason"] for r in rejects)
    return StageStats.of_shard(stage.fingerprint, n_in, n_out, reasons, time.perf_counter() - began)


def run_map_shard(out: Path, segment: Segment, shard: int, seed: int = 0) -> dict[str, StageStats]:
    """Run a map segment's record steps over one shard, resuming after its last completed
    stage."""
    results: dict[str, StageStats] = {}
    start = 0
    for stage in segment.stages:
        done = load_marker(out, stage.stage, shard, stage.fingerprint)
        if done is None:
            break
        results[stage.stage] = done
        start += 1
    if start == len(segment.stages):
        return results
    source_stage = segment.input_stage if start == 0 else segment.stages[start - 1].stage
    table = read_table(stage_part(out, source_stage, shard), segment.stages[start].input_kind)
    stages = segment.stages[start:]
    columns = projected_columns([s.step for s in stages], table.schema.names)
    records = table_records(table if columns is None else table.select(columns))
    context = StepContext(seed=seed)
    for stage in stages:
        began = time.perf_counter()
        assert isinstance(stage.step, RecordStep)
        fn = stage.step.make(context)
        kept, rejects, rows = apply_step_rows(fn, records)
        if columns is not None and rows is None:  # not pure after all: whole records from here
            columns, records = None, table_records(table)
            kept, rejects, rows = apply_step_rows(fn, records)
        if columns is not None:
            rejects = whole_rejects(table, rows, rejects)  # type: ignore[arg-type]
        stats = _stats(stage, len(records), len(kept), rejects, began)
        if stage.step.summary_key is not None:
            stats = replace(stats, summary=stage.step.summarize(kept))
        table = _output_table(stage, table, kept, rows)
        write_stage_shard(out, stage.stage, shard, stage.kind, table, rejects)
        save_marker(out, stage.stage, shard, stats)
        results[stage.stage] = stats
        records = kept
    return results


def run_batch_stage(out: Path, segment: Segment, shards: int, context: StepContext) -> StageResults:
    """Run a batch step over all shards in input order, in this process. Complete shards are
    not run again; a shard the step calls incomplete is written but not marked done. Once all
    are written, the step's verdict on the whole stage may fail it (TooManyFailures)."""
    (stage,) = segment.stages
    step = stage.step
    assert isinstance(step, BatchStep)
    folder = out / WORK_DIR / step.step / stage.stage  # type: ignore[attr-defined]
    progress = _Processed(context.records_done)
    counted = progress.in_shard if context.records_done is not None else None
    runner = step.make_batch(replace(context, work_dir=folder, out_dir=out, records_done=counted))
    results: list[StageStats] = []
    try:
        for shard in range(shards):
            done = load_marker(out, stage.stage, shard, stage.fingerprint)
            if done is not None:  # reused: the display counts it apart, from the markers
                results.append(done)
                continue
            table = read_table(stage_part(out, segment.input_stage, shard), stage.input_kind)
            records = table_records(table)
            began = time.perf_counter()
            runner.start_shard(shard)
            kept, complete = runner.apply_batch(records)
            progress.shard_done(len(records))
            stats = _stats(stage, len(records), len(kept), [], began)
            stats = replace(stats, summary=runner.summarize(kept))
            write_stage_shard(
                out, stage.stage, shard, stage.kind, records_table(kept, stage.kind), []
            )
            if complete:
                save_marker(out, stage.stage, shard, stats)
            results.append(stats)
        # After the writes: what the stage made is kept (and resumable) whatever the verdict.
        parts = [s.summary for s in results if s.summary is not None]
        problem = runner.verdict(step.combine_summaries(parts)) if parts else None
        if problem is not None:
            raise TooManyFailures(problem)
    finally:
        runner.close()
    return {stage.stage: results}


class _Processed:
    """The records a batch stage has processed in this run (reused shards not counted), for
    `StepContext.records_done`: the shards finished before, plus the step's count within the
    current one."""

    def __init__(self, report: Callable[[int], None] | None) -> None:
        self.report, self.before = report, 0

    def in_shard(self, n: int) -> None:
        if self.report is not None:
            self.report(self.before + n)

    def shard_done(self, n: int) -> None:
        self.before += n
        self.in_shard(0)


@dataclass(frozen=True)
class SegmentRunner:
    # True: one task per shard (`run(out, segment, shard, seed)`); False: one task for the
    # whole segment (`run(out, segment, shards, context)`).
    per_shard: bool
    run: Callable[..., Any]


RUNNERS: dict[SegmentKind, SegmentRunner] = {
    "map": SegmentRunner(per_shard=True, run=run_map_shard),
    "filters": SegmentRunner(per_shard=False, run=run_filter_segment),
    "batch": SegmentRunner(per_shard=False, run=run_batch_stage),
}
