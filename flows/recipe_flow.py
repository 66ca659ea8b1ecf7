"""The recipe flow: read sources into shards, run the steps' stages, write outputs and manifest.

It composes tasks and holds no record logic; it returns the manifest body (counts, paths).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.futures import as_completed
from sftforge.flows.progress import StageProgress, marker_watch, read_watch
from sftforge.schemas.loading import load_recipe, recipe_hash, resolve_source_files
from sftforge.schemas.recipe import RunnerConfig
from sftforge.tasks.base.shards import STATE_DIR
from sftforge.tasks.base.workers import (
    api_for_remote_workers,
    task_runner_for,
    worker_count,
    worker_pool,
)
from sftforge.tasks.pipeline import prefect_tasks as t
from sftforge.tasks.pipeline.engine import READ_STAGE, plan_run
from sftforge.tasks.pipeline.manifest import stage_totals
from sftforge.tasks.pipeline.snapshot import write_recipe_snapshot


@contextmanager
def augment_progress_to(progress: StageProgress) -> Iterator[None]:
    """Show the augment step's calls, rates and cost beside its stage's bar."""
    from sftforge.tasks.steps.augment import step as augment_step
    from sftforge.tasks.steps.augment.display import status_line

    augment_step.progress_sink = lambda snapshot: progress.detail(status_line(snapshot))
    try:
        yield
    finally:
        augment_step.progress_sink = None


class StageFailed(RuntimeError):
    def __init__(self, stage: str, detail: str) -> None:
        super().__init__(f"stage {stage} failed: {detail}")
        self.stage = stage


def artifact_key(recipe: str, what: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes; one key per recipe
    so that the UI's artifact history of a key is the history of that recipe."""
    name = "".join(c if c.isalnum() else "-" for c in recipe.lower()).strip("-")
    return f"sftforge-{name}-{what}"


def _link(label: str, path: str) -> str:
    return f"[{label}]({Path(path).resolve().as_uri()})"


def _artifacts(body: dict[str, Any]) -> None:
    rows = [
        {
            "stage": s["name"],
            "in": s["in"],
            "out": s["out"],
            "rejected": sum(s["rejected"].values()),
            "rejected_by_reason": ", ".join(f"{k}: {v}" for k, v in s["rejected"].items()) or "-",
            "seconds": s["seconds"],
            "records_per_s": round(s["in"] / s["seconds"], 1) if s["seconds"] else None,
        }
        for s in body["stages"]
    ]
    create_table_artifact(
        rows,
        key=artifact_key(body["recipe"], "stages"),
        description=f"sftforge · {body['recipe']}: records per stage",
    )
    out = body["output_dir"]
    paths = {k: v["path"] if isinstance(v, dict) else v for k, v in body["outputs"].items()}
    links = [f"- {_link(kind, path)} `{path}`" for kind, path in paths.items()]
    links.append(f"- {_link('manifest', f'{out}/manifest.json')} `{out}/manifest.json`")
    links.append(f"- {_link('rejects', f'{out}/rejects')} `{out}/rejects/<stage>/`")
    first, last = body["stages"][0], body["stages"][-1]
    create_markdown_artifact(
        f"# {body['recipe']}\n\n"
        f"**{first['in']}** records in, **{last['out']}** out "
        f"({first['in'] - last['out']} rejected), {body['shards']} shards, "
        f"{body['wall_seconds']:.1f} s wall, config hash `{body['config_hash']}`.\n\n"
        "## Outputs\n\n" + "\n".join(links) + "\n\n"
        f"Plots: `sftforge report {out}` writes `{out}/report.html`.\n",
        key=artifact_key(body["recipe"], "summary"),
        description=f"sftforge · {body['recipe']}: summary and outputs",
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
    workers = worker_count(recipe.runner.workers)
    per_stage: dict[str, list[dict[str, Any]]] = {}
    kind = recipe.runner.kind
    state = out_dir / STATE_DIR

    with (
        worker_pool(workers, kind),
        api_for_remote_workers(kind),
        StageProgress(quiet=quiet) as progress,
        augment_progress_to(progress),
    ):
        all_files = [p for source in recipe.sources for p in files.get(source.name, [])]
        progress.start(
            READ_STAGE, None, read_watch(state / READ_STAGE, plan.read_fingerprint, all_files)
        )
        per_stage[READ_STAGE] = t.read_sources(recipe, files, out_dir, plan)
        progress.finish(sum(s["in"] for s in per_stage[READ_STAGE]))
        shards = len(per_stage[READ_STAGE])

        for segment in plan.segments:
            total = sum(s["out"] for s in per_stage[segment.input_stage])
            if segment.kind != "map":
                first = segment.stages[0]
                progress.start(
                    segment.label, total, marker_watch(state / first.stage, first.fingerprint)
                )
                try:
                    stats = t.global_stage(out_dir, segment, shards, recipe.seed)
                except Exception as exc:
                    raise StageFailed(segment.label, f"{type(exc).__name__}: {exc}") from exc
                per_stage.update(stats)
                progress.finish(sum(s["in"] for s in stats[first.stage]))
                continue
            progress.start(segment.label, total)
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

        final = sum(s["out"] for s in per_stage[plan.final_stage])
        progress.start("write outputs", final)
        written = t.outputs(out_dir, plan, shards, recipe)
        progress.finish(final)
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
        write_recipe_snapshot(out_dir, recipe)
        t.manifest(out_dir, body)
    _artifacts(body)
    return body


def flow_for(workers: int, runner: RunnerConfig | None = None) -> Any:
    """The flow with the task runner of the recipe's `runner:` section: by default a thread
    pool sized to the workers (tasks wait on processes); for `kind: dask`, prefect-dask's
    DaskTaskRunner on the cluster at `runner.address` (or a temporary local one)."""
    runner = runner or RunnerConfig()
    return run_recipe.with_options(
        task_runner=task_runner_for(runner.kind, runner.address, workers)
    )
