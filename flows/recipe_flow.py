"""The recipe flow: read sources into shards, run the steps' stages, write outputs and manifest.

It composes tasks and holds no record logic; it returns the manifest body (counts, paths).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.futures import as_completed
from prefect.task_runners import ThreadPoolTaskRunner

from flows.progress import StageProgress
from schemas.loading import load_recipe, recipe_hash, resolve_source_files
from tasks import prefect_tasks as t
from tasks.engine import READ_STAGE, plan_run
from tasks.manifest import stage_totals
from tasks.workers import worker_pool


class StageFailed(RuntimeError):
    def __init__(self, stage: str, detail: str) -> None:
        super().__init__(f"stage {stage} failed: {detail}")
        self.stage = stage


def _artifacts(body: dict[str, Any]) -> None:
    rows = [
        {
            "stage": s["name"],
            "in": s["in"],
            "out": s["out"],
            "rejected": ", ".join(f"{k}: {v}" for k, v in s["rejected"].items()) or "-",
            "seconds": s["seconds"],
            "records_per_s": round(s["in"] / s["seconds"], 1) if s["seconds"] else None,
        }
        for s in body["stages"]
    ]
    create_table_artifact(rows, key="stages", description=f"sftforge · {body['recipe']}")
    links = "\n".join(f"- {kind}: `{path}`" for kind, path in body["outputs"].items())
    create_markdown_artifact(
        f"# {body['recipe']}\n\n{body['stages'][0]['in']} records in, "
        f"{body['stages'][-1]['out']} out.\n\nOutputs:\n{links}\n\n"
        f"Manifest: `{body['output_dir']}/manifest.json`\n",
        key="summary",
    )


@flow(name="sftforge-recipe", log_prints=True)
def run_recipe(
    recipe_path: str,
    inputs: dict[str, str] | None = None,
    out: str | None = None,
    sets: list[str] | None = None,
    quiet: bool = True,
) -> dict[str, Any]:
    began = time.perf_counter()
    recipe = load_recipe(recipe_path, sets=sets, inputs=inputs, out=out)
    files = resolve_source_files(recipe, recipe_path)
    out_dir = Path(recipe.output_dir)
    plan = plan_run(recipe, files)
    workers = recipe.runner.workers or os.cpu_count() or 1
    per_stage: dict[str, list[dict[str, Any]]] = {}

    with worker_pool(workers), StageProgress(quiet=quiet) as progress:
        progress.start(READ_STAGE, None)
        per_stage[READ_STAGE] = t.read_sources(recipe, files, out_dir, plan)
        progress.advance(sum(s["in"] for s in per_stage[READ_STAGE]))
        shards = len(per_stage[READ_STAGE])

        for segment in plan.segments:
            progress.start(segment.label, sum(s["out"] for s in per_stage[segment.input_stage]))
            if segment.kind == "global":
                try:
                    stats = t.global_stage(out_dir, segment, shards, recipe.seed)
                except Exception as exc:
                    raise StageFailed(segment.label, f"{type(exc).__name__}: {exc}") from exc
                per_stage[segment.stages[0].stage] = stats
                progress.advance(sum(s["in"] for s in stats))
                continue
            futures = {}
            for shard in range(shards):
                future = t.map_shard.submit(out_dir, segment, shard, recipe.seed)
                futures[id(future)] = (shard, future)
            results: list[dict[str, dict[str, Any]]] = [{}] * shards
            for future in as_completed([f for _, f in futures.values()]):
                shard, _ = futures[id(future)]
                try:
                    results[shard] = future.result()
                except Exception as exc:
                    raise StageFailed(
                        segment.label, f"shard {shard}: {type(exc).__name__}: {exc}"
                    ) from exc
                progress.advance(results[shard][segment.stages[0].stage]["in"])
            for stage in segment.stages:
                per_stage[stage.stage] = [r[stage.stage] for r in results]

        written = t.outputs(out_dir, plan, shards, recipe)
        body = {
            "recipe": recipe.name,
            "kind": plan.final_kind,
            "config_hash": recipe_hash(recipe),
            "seed": recipe.seed,
            "output_dir": str(out_dir),
            "shards": shards,
            "workers": workers,
            "stages": [stage_totals(name, per_stage[name]) for name in plan.stages],
            "outputs": written,
            "wall_seconds": round(time.perf_counter() - began, 3),
        }
        t.manifest(out_dir, body)
    _artifacts(body)
    return body


def flow_for(workers: int) -> Any:
    """The flow with a thread pool sized to the recipe's workers (tasks wait on processes)."""
    return run_recipe.with_options(task_runner=ThreadPoolTaskRunner(max_workers=max(workers, 1)))
