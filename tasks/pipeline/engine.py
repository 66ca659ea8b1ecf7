"""Stage execution over shards, without Prefect: what the Prefect tasks call.

A recipe's steps become a plan of segments. A *map* segment is a run of per-record steps
that every shard goes through independently (in parallel); a *global* segment is one step
that must see all shards in input order in one place (augment); a *filters* segment is a run
of global steps that only keep or reject rows (exact dedup, per-group caps), fused into one
pass (tasks/filter_segment.py). Every stage still
writes its own output and rejects per shard, and a marker when the shard is complete, so
a rerun resumes at the first shard-stage that is not done.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import xxhash
from sftforge.schemas.recipe import Recipe
from sftforge.schemas.steps import FILTER_STEPS, GLOBAL_STEPS, STREAMING_FILTER_STEPS, StepBase
from sftforge.tasks.base.atomic import write_bytes_atomic
from sftforge.tasks.base.memory import release_memory
from sftforge.tasks.base.outcome import Rejected
from sftforge.tasks.base.shards import (
    STATE_DIR,
    WORK_DIR,
    load_marker,
    read_records,
    read_table,
    records_table,
    remove_parts_from,
    remove_stale_temporaries,
    save_marker,
    stage_part,
    table_records,
    write_stage_shard,
)
from sftforge.tasks.pipeline.projection import projected_columns, whole_rejects
from sftforge.tasks.pipeline.read_stage import SourceConverter, reject_row
from sftforge.tasks.readers.sharegpt import dumps
from sftforge.tasks.readers.sources import iter_source
from sftforge.tasks.steps import StepFn, build_step

READ_STAGE = "read"
ENGINE_VERSION = "1"  # bump when a change alters stage outputs for the same recipe


def fingerprint(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return xxhash.xxh3_64_hexdigest(blob)


@dataclass(frozen=True)
class StagePlan:
    stage: str
    step: StepBase
    fingerprint: str
    input_kind: str
    kind: str  # the kind of record the stage puts out


@dataclass(frozen=True)
class Segment:
    kind: str  # "map", "global" or "filters"
    input_stage: str
    stages: tuple[StagePlan, ...]

    @property
    def label(self) -> str:
        return "+".join(s.stage for s in self.stages)


@dataclass(frozen=True)
class Plan:
    read_fingerprint: str
    read_kind: str
    segments: tuple[Segment, ...] = field(default_factory=tuple)

    @property
    def stages(self) -> list[str]:
        return [READ_STAGE] + [s.stage for seg in self.segments for s in seg.stages]

    @property
    def final_stage(self) -> str:
        return self.stages[-1]

    @property
    def final_kind(self) -> str:
        return self.segments[-1].stages[-1].kind if self.segments else self.read_kind

    def kind_of(self, stage: str) -> str:
        for segment in self.segments:
            for plan in segment.stages:
                if plan.stage == stage:
                    return plan.kind
        return self.read_kind


def read_fingerprint(recipe: Recipe, files: dict[str, list[Path]]) -> str:
    listing = {
        name: [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in paths]
        for name, paths in files.items()
    }
    sources = [s.model_dump(mode="json") for s in recipe.sources]
    return fingerprint(ENGINE_VERSION, sources, listing, recipe.runner.shard_size)


def plan_run(recipe: Recipe, files: dict[str, list[Path]]) -> Plan:
    fp = read_fingerprint(recipe, files)
    segments: list[Segment] = []
    current: list[StagePlan] = []
    previous, upstream = READ_STAGE, fp
    segment_input = READ_STAGE
    kind = recipe.source_kind
    for step in recipe.steps:
        upstream = fingerprint(upstream, step.model_dump(mode="json"), recipe.seed)
        out_kind = step.output_kind(kind)
        stage = StagePlan(step.stage, step, upstream, kind, out_kind)
        kind = out_kind
        if step.step in GLOBAL_STEPS:
            if current:
                segments.append(Segment("map", segment_input, tuple(current)))
                current = []
            if step.step in FILTER_STEPS and _fuses(segments, previous):
                last = segments.pop()
                segments.append(Segment("filters", last.input_stage, (*last.stages, stage)))
            else:
                kind_of = "filters" if step.step in FILTER_STEPS else "global"
                segments.append(Segment(kind_of, previous, (stage,)))
            segment_input = stage.stage
        else:
            if not current:
                segment_input = previous
            current.append(stage)
        previous = stage.stage
    if current:
        segments.append(Segment("map", segment_input, tuple(current)))
    return Plan(fp, recipe.source_kind, tuple(segments))


def _fuses(segments: list[Segment], previous: str) -> bool:
    """A filter joins the segment just before it if that is a run of filters that decide
    shard by shard (a sample ends a run: it needs every shard before it can decide)."""
    if not segments or segments[-1].kind != "filters":
        return False
    last = segments[-1].stages[-1]
    return last.stage == previous and last.step.step in STREAMING_FILTER_STEPS


def apply_step(
    fn: StepFn, records: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Run one step over a shard's records. A step that raises rejects that record only."""
    kept, rejects, _ = apply_step_rows(fn, records)
    return kept, rejects


def apply_step_rows(
    fn: StepFn, records: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[int] | None]:
    """`apply_step`, plus the input rows kept when the step changed none of them (a pure
    filter): its output is then those rows of its input table, with no rebuilding."""
    kept: list[dict[str, Any]] = []
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
    stage: StagePlan, table: pa.Table, kept: list[dict[str, Any]], rows: list[int] | None
) -> pa.Table:
    if rows is not None and stage.kind == stage.input_kind:
        return table.take(pa.array(rows, type=pa.int64()))
    return records_table(kept, stage.kind)


def shard_stats(
    fp: str, n_in: int, kept: list[Any], rejects: list[dict[str, Any]], seconds: float
) -> dict[str, Any]:
    reasons = Counter(r["reason"] for r in rejects)
    return {
        "fingerprint": fp,
        "in": n_in,
        "out": len(kept),
        "rejected": dict(sorted(reasons.items())),
        "seconds": round(seconds, 4),
    }


# ---------------------------------------------------------------- read stage


def run_read(
    recipe: Recipe, files: dict[str, list[Path]], out: Path, plan: Plan
) -> list[dict[str, Any]]:
    """Stream every source in recipe order into shards of `shard_size` input records.

    Returns the per-shard stats. Shards already complete for this input are not rewritten,
    and when the whole stage is complete the input is not read again at all.
    """
    remove_stale_temporaries(out)
    fp = plan.read_fingerprint
    summary_path = out / STATE_DIR / READ_STAGE / "_stage.json"
    try:
        summary = json.loads(summary_path.read_text())
        if summary.get("fingerprint") == fp:
            return summary["shards"]
    except (FileNotFoundError, json.JSONDecodeError):
        pass

    size = recipe.runner.shard_size
    stats: list[dict[str, Any]] = []
    kept: list[dict[str, Any]] = []
    rejects: list[dict[str, Any]] = []
    count, started = 0, time.perf_counter()

    def flush() -> None:
        nonlocal kept, rejects, count, started
        shard = len(stats)
        done = load_marker(out, READ_STAGE, shard, fp)
        if done is None:
            write_stage_shard(out, READ_STAGE, shard, plan.read_kind, kept, rejects)
            done = shard_stats(fp, count, kept, rejects, time.perf_counter() - started)
            save_marker(out, READ_STAGE, shard, done)
        stats.append(done)
        kept, rejects, count, started = [], [], 0, time.perf_counter()

    for source in recipe.sources:
        convert = SourceConverter(source)
        for item in iter_source(source, files.get(source.name)):
            # An exploded row is several input records; a shard may then exceed `size`
            # by the elements of its last row.
            for record, reject in convert(item):
                if record is not None:
                    kept.append(record)
                else:
                    rejects.append(reject)  # type: ignore[arg-type]
                count += 1
            if count >= size:
                flush()
    if count or not stats:
        flush()

    # A smaller input than last time: parts past the new last shard are stale everywhere.
    for stage in plan.stages:
        remove_parts_from(out / stage, len(stats))
        remove_parts_from(out / "rejects" / stage, len(stats))
        remove_parts_from(out / STATE_DIR / stage, len(stats))
    write_bytes_atomic(summary_path, dumps({"fingerprint": fp, "shards": stats}).encode())
    release_memory()  # the readers' buffers: the flow's process lives on to the end
    return stats


# ---------------------------------------------------------------- step stages


def run_map_shard(
    out: Path, segment: Segment, shard: int, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """Run a map segment's steps over one shard, resuming after its last completed stage."""
    results: dict[str, dict[str, Any]] = {}
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
    input_kind = segment.stages[start].input_kind
    table = read_table(stage_part(out, source_stage, shard), input_kind)
    stages = segment.stages[start:]
    columns = projected_columns([s.step.step for s in stages], table.schema.names)
    records = table_records(table if columns is None else table.select(columns))
    for stage in stages:
        began = time.perf_counter()
        fn = build_step(stage.step, seed)
        kept, rejects, rows = apply_step_rows(fn, records)
        if columns is not None and rows is None:  # not pure after all: whole records from here
            columns, records = None, table_records(table)
            kept, rejects, rows = apply_step_rows(fn, records)
        if columns is not None:
            rejects = whole_rejects(table, rows, rejects)  # type: ignore[arg-type]
        stats = shard_stats(
            stage.fingerprint, len(records), kept, rejects, time.perf_counter() - began
        )
        table = _output_table(stage, table, kept, rows)
        write_stage_shard(out, stage.stage, shard, stage.kind, table, rejects)
        save_marker(out, stage.stage, shard, stats)
        results[stage.stage] = stats
        records = kept
    return results


def _shard_records(
    out: Path, stage: str, kind: str, shards: int, columns: list[str] | None
) -> Iterator[list[dict[str, Any]]]:
    for shard in range(shards):
        yield read_records(stage_part(out, stage, shard), kind, columns)


def run_global_stage(
    out: Path, segment: Segment, shards: int, seed: int = 0
) -> dict[str, list[dict[str, Any]]]:
    """Run a global step over all shards in input order, in this process.

    Completed shards are not rewritten, but their records still pass through the step so
    that its state (the hashes seen so far) is the same as in an uninterrupted run. A step
    that needs to see everything first (a sample) gets a `prepare` pass over all shards.
    """
    (stage,) = segment.stages
    fn = build_step(stage.step, seed, out / WORK_DIR / "augment" / stage.stage)
    prepare = getattr(fn, "prepare", None)
    if prepare is not None:
        columns = getattr(fn, "prepare_columns", None)
        prepare(_shard_records(out, segment.input_stage, stage.input_kind, shards, columns))
    try:
        return {stage.stage: [_global_shard(out, segment, stage, fn, i) for i in range(shards)]}
    finally:
        close = getattr(fn, "close", None)
        if close is not None:
            close()


def _global_shard(
    out: Path, segment: Segment, stage: StagePlan, fn: Any, shard: int
) -> dict[str, Any]:
    done = load_marker(out, stage.stage, shard, stage.fingerprint)
    batch = getattr(fn, "apply_batch", None)
    if done is not None and batch is not None:
        return done  # a batch step keeps no state between shards: nothing to replay
    table = read_table(stage_part(out, segment.input_stage, shard), stage.input_kind)
    records = table_records(table)
    began = time.perf_counter()
    rows: list[int] | None = None
    if batch is not None:
        kept, rejects = batch(records), []
    else:
        kept, rejects, rows = apply_step_rows(fn, records)
    if done is not None:
        return done
    stats = shard_stats(stage.fingerprint, len(records), kept, rejects, time.perf_counter() - began)
    output = _output_table(stage, table, kept, rows)
    write_stage_shard(out, stage.stage, shard, stage.kind, output, rejects)
    if stage.kind == "augmented":
        stats["augment"] = augment_summary(kept, getattr(stage.step, "datasets", None))
        if stats["augment"]["failed"]:
            # Written (nothing is dropped) but not marked done: the next run retries the failed
            # records, and the journal answers the calls that had already succeeded.
            return stats
    save_marker(out, stage.stage, shard, stats)
    return stats


def augment_summary(records: list[dict[str, Any]], datasets: list[str] | None) -> dict[str, Any]:
    """Per shard, for the manifest: iterations, truncation, failures, tokens and cost."""
    iterations: Counter[str] = Counter()
    summary: dict[str, Any] = {
        "failed": 0,
        "iteration_truncated": 0,
        "context_truncated": 0,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "cost": 0.0,
    }
    for record in records:
        if record.get("status") is None or (datasets and record.get("dataset") not in datasets):
            continue  # not one of this step's datasets
        iterations[str(record.get("iteration") or 0)] += 1
        summary["failed"] += record["status"] == "failed"
        summary["iteration_truncated"] += bool(record.get("iteration_truncated"))
        summary["context_truncated"] += bool(record.get("truncated"))
        usage = record.get("usage") or {}
        summary["prompt_tokens"] += int(usage.get("prompt_tokens") or 0)
        summary["completion_tokens"] += int(usage.get("completion_tokens") or 0)
        summary["cost"] += float(usage.get("cost") or 0.0)
    summary["cost"] = round(summary["cost"], 6)
    summary["iterations"] = dict(sorted(iterations.items(), key=lambda kv: int(kv[0])))
    return summary
