"""Thin Prefect tasks around the engine: they add names, retries and logging, nothing else.

Tasks take and return paths, shard numbers and counts, never the records themselves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NONE

from sftforge.schemas.recipe import Recipe
from sftforge.tasks.base.pool import run_in_own_process, run_in_worker
from sftforge.tasks.base.stats import StageStats
from sftforge.tasks.base.step_protocol import StepContext
from sftforge.tasks.outputs.registry import write_outputs
from sftforge.tasks.pipeline.manifest import write_manifest
from sftforge.tasks.pipeline.plan import Plan, Segment
from sftforge.tasks.pipeline.read_stage import run_read
from sftforge.tasks.pipeline.stages import RUNNERS, run_map_shard

_COMMON: dict[str, Any] = {"persist_result": False, "cache_policy": NONE}


@task(name="read-sources", **_COMMON)
def read_sources(
    recipe: Recipe, files: dict[str, list[Path]], out: Path, plan: Plan
) -> list[StageStats]:
    return run_in_own_process(run_read, recipe, files, out, plan)


@task(name="map-shard", task_run_name="{segment.label}[{shard}]", retries=1, **_COMMON)
def map_shard(out: Path, segment: Segment, shard: int, seed: int) -> dict[str, StageStats]:
    return run_in_worker(run_map_shard, out, segment, shard, seed)


@task(name="segment", task_run_name="{segment.label}", **_COMMON)
def whole_segment(
    out: Path, segment: Segment, shards: int, context: StepContext
) -> dict[str, list[StageStats]]:
    """A segment that runs over all shards at once (filter passes, a batch step): per stage,
    its shards' stats."""
    return RUNNERS[segment.kind].run(out, segment, shards, context)


@task(name="write-outputs", **_COMMON)
def outputs(out: Path, plan: Plan, shards: int, recipe: Recipe) -> dict[str, Any]:
    return write_outputs(out, plan.final_stage, plan.final_kind, shards, recipe)


@task(name="write-manifest", **_COMMON)
def manifest(out: Path, body: dict[str, Any]) -> str:
    return str(write_manifest(out, body))
