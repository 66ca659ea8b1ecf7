"""A recipe's steps as a plan of segments, each run the way its steps' protocol says.

- `map`: a run of record steps that every shard goes through independently (in parallel);
- `filters`: a run of filter passes fused into one scan → decide → apply pass over all shards
  (pipeline/filter_pass.py). A pass that decides shard by shard (dedup) may be followed by
  others in the same segment; one that needs every shard first (a sample) ends it;
- `batch`: one batch step over all shards in input order, in one place (augment).

Every stage still writes its own output and rejects per shard, and a marker when the shard is
complete, so a rerun resumes at the first shard-stage that is not done.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import xxhash

from sftforge.schemas.recipe import READ_STAGE, Recipe
from sftforge.schemas.steps import StepBase
from sftforge.tasks.base.step_protocol import BatchStep, FilterPassStep, RecordStep

ENGINE_VERSION = "1"  # bump when a change alters stage outputs for the same recipe

SegmentKind = Literal["map", "filters", "batch"]


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
    kind: SegmentKind
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
    limit: int | None = None  # `--limit N`: at most the first N records of each source

    @property
    def stages(self) -> list[str]:
        return [READ_STAGE] + [s.stage for seg in self.segments for s in seg.stages]

    @property
    def final_stage(self) -> str:
        return self.stages[-1]

    @property
    def final_kind(self) -> str:
        return self.segments[-1].stages[-1].kind if self.segments else self.read_kind

    def step_of(self, stage: str) -> StepBase | None:
        """The step of a stage (None for the read stage)."""
        found = [s.step for seg in self.segments for s in seg.stages if s.stage == stage]
        return found[0] if found else None


def segment_kind(step: StepBase) -> SegmentKind:
    if isinstance(step, RecordStep):
        return "map"
    if isinstance(step, FilterPassStep):
        return "filters"
    if isinstance(step, BatchStep):
        return "batch"
    raise TypeError(f"step {step.stage!r}: {type(step).__name__} has no run protocol")


def read_fingerprint(recipe: Recipe, files: dict[str, list[Path]], limit: int | None = None) -> str:
    listing = {
        name: [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in paths]
        for name, paths in files.items()
    }
    sources = [s.model_dump(mode="json") for s in recipe.sources]
    parts: list[Any] = [ENGINE_VERSION, sources, listing, recipe.runner.shard_size]
    if limit is not None:
        # A limited run's shards and markers (and every stage's after them, whose
        # fingerprints chain from this one) are never taken for a full run's, nor another
        # limit's; a full run's fingerprint stays what it was, so its outputs still resume.
        parts.append({"limit": limit})
    return fingerprint(*parts)


def plan_run(recipe: Recipe, files: dict[str, list[Path]], limit: int | None = None) -> Plan:
    fp = read_fingerprint(recipe, files, limit)
    segments: list[Segment] = []
    previous, upstream, kind = READ_STAGE, fp, recipe.source_kind
    for step in recipe.steps:
        upstream = fingerprint(upstream, step.model_dump(mode="json"), recipe.seed)
        stage = StagePlan(step.stage, step, upstream, kind, step.output_kind(kind))
        kind = stage.kind
        joins = segments and _joins(segments[-1], segment_kind(step), previous)
        if joins:
            last = segments.pop()
            segments.append(Segment(last.kind, last.input_stage, (*last.stages, stage)))
        else:
            segments.append(Segment(segment_kind(step), previous, (stage,)))
        previous = stage.stage
    return Plan(fp, recipe.source_kind, tuple(segments), limit)


def _joins(last: Segment, kind: SegmentKind, previous: str) -> bool:
    """Record steps run together shard by shard. A filter pass joins the pass just before it
    if that one decides shard by shard (a sample ends a pass: it needs every shard first).
    A batch step is always alone."""
    if last.kind != kind or last.stages[-1].stage != previous:
        return False
    if kind == "map":
        return True
    step = last.stages[-1].step
    return kind == "filters" and isinstance(step, FilterPassStep) and step.decides_per_shard
