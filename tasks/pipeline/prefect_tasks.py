"""Thin Prefect tasks around the engine: they add names, retries and logging, nothing else.

Tasks take and return paths, shard numbers and counts, never the records themselves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NONE
from sftforge.schemas.recipe import Recipe
from sftforge.tasks.base.workers import run_in_own_process, run_in_worker
from sftforge.tasks.outputs.formats import write_outputs
from sftforge.tasks.pipeline.engine import Plan, Segment, run_global_stage, run_map_shard, run_read
from sftforge.tasks.pipeline.filter_segment import run_filter_segment
from sftforge.tasks.pipeline.manifest import write_manifest

_COMMON: dict[str, Any] = {"persist_result": False, "cache_policy": NONE}


@task(name="read-sources", **_COMMON)
def read_sources(recipe: Recipe, files: dict[str, list[Path]], out: Path, plan: Plan) -> list[dict]:
    return run_in_own_process(run_read, recipe, files, out, plan)


@task(name="map-shard", task_run_name="{segment.label}[{shard}]", retries=1, **_COMMON)
def map_shard(out: Path, segment: Segment, shard: int, seed: int) -> dict[str, dict[str, Any]]:
    return run_in_worker(run_map_shard, out, segment, shard, seed)


@task(name="global-stage", task_run_name="{segment.label}", **_COMMON)
def global_stage(
    out: Path, segment: Segment, shards: int, seed: int
) -> dict[str, list[dict[str, Any]]]:
    """Per stage of the segment, its shards' stats."""
    if segment.kind == "filters":
        return run_filter_segment(out, segment, shards, seed)
    return run_global_stage(out, segment, shards, seed)


@task(name="write-outputs", **_COMMON)
def outputs(out: Path, plan: Plan, shards: int, recipe: Recipe) -> dict[str, Any]:
    return write_outputs(out, plan.final_stage, plan.final_kind, shards, recipe)


@task(name="write-manifest", **_COMMON)
def manifest(out: Path, body: dict[str, Any]) -> str:
    return str(write_manifest(out, body))
