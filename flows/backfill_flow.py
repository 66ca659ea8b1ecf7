"""The backfill flow: run a recipe once per partition of its input (e.g. one per day).

Each partition is its own flow run — a child run of the recipe flow here, or a run of a
deployment (through a work pool and its workers). Partitions already completed with the
same recipe hash are skipped; a failed one is retried; up to `parallel` run at a time.
Interrupted and started again, it skips what finished and resumes the rest shard by shard.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NONE
from prefect.futures import as_completed
from prefect.task_runners import ThreadPoolTaskRunner

from sftforge.flows.recipe_flow import run_request
from sftforge.tasks.pipeline.partitions import (
    PartitionPlan,
    PartitionRun,
    completed_manifest,
    counts,
    forget,
    plan_partitions,
)
from sftforge.tasks.pipeline.request import RunRequest
from sftforge.tasks.pipeline.runners import worker_count, worker_pool


class PartitionFailed(RuntimeError):
    def __init__(self, key: str, detail: str, attempts: int) -> None:
        super().__init__(f"partition {key}: {detail}")
        self.detail, self.attempts = detail, attempts


def _attempt() -> int:
    from prefect.runtime import task_run

    return int(task_run.run_count or 1)


def _run_here(run: PartitionRun) -> dict[str, Any]:
    # The partition's recipe as planned (its hash was taken from it): not read again.
    return run_request(run.request, loaded=run.request.load(run.recipe))


def _run_deployment(run: PartitionRun, deployment: str) -> dict[str, Any]:
    from prefect.deployments import run_deployment

    flow_run = run_deployment(
        deployment,
        parameters=run.request.parameters(),
        timeout=None,  # wait for the run, however long the work pool takes to start it
    )
    state = flow_run.state
    if state is None or not state.is_completed():
        name = state.name if state else "unknown"
        raise RuntimeError(f"flow run {flow_run.name}: {name}: {state.message if state else ''}")
    try:  # shared storage: the worker wrote the partition where this process can read it
        return json.loads((Path(run.out) / "manifest.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


@task(
    name="partition", task_run_name="partition[{run.key}]", persist_result=False, cache_policy=NONE
)
def run_partition(run: PartitionRun, deployment: str | None) -> dict[str, Any]:
    began = time.perf_counter()
    try:
        manifest = _run_deployment(run, deployment) if deployment else _run_here(run)
    except Exception as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise PartitionFailed(run.key, detail, _attempt()) from exc
    return {
        **counts(manifest),
        "attempts": _attempt(),
        "seconds": round(time.perf_counter() - began, 2),
    }


def _say(quiet: bool, text: str) -> None:
    if not quiet:
        sys.stderr.write(f"[backfill] {text}\n")
        sys.stderr.flush()


@flow(name="sftforge-backfill", log_prints=False)
def backfill(
    request: RunRequest,
    spec: str,
    force: bool = False,
    retries: int = 1,
    deployment: str | None = None,
    quiet: bool = False,
    plan: PartitionPlan | None = None,
) -> list[dict[str, Any]]:
    """One row per selected partition: partition, state, attempts, in, out, rejected,
    seconds, error. States: completed, skipped (already done), failed, no input.
    `plan`: the partitions as the caller already planned them (the CLI does, to fail on
    misuse before Prefect starts), so that no recipe file is read twice."""
    recipe, runs = plan if plan is not None else plan_partitions(request, spec)
    rows: dict[str, dict[str, Any]] = {}
    todo: list[PartitionRun] = []
    for run in runs:
        row: dict[str, Any] = {"partition": run.key}
        if not run.has_input:
            rows[run.key] = {**row, "state": "no input"}
            continue
        done = None if force else completed_manifest(run)
        if done is not None:
            rows[run.key] = {**row, "state": "skipped", **counts(done)}
            continue
        if force:
            forget(run)
        todo.append(run)
    skipped = sum(r["state"] == "skipped" for r in rows.values())
    _say(quiet, f"{len(todo)} partitions to run, {skipped} already done")

    runner = recipe.runner
    workers = worker_count(runner.workers)
    attempt = run_partition.with_options(retries=retries, retry_delay_seconds=0)
    # Partitions run here share one process pool instead of each starting its own.
    with worker_pool(1 if deployment else workers, runner.kind):
        submitted = [(run, attempt.submit(run, deployment)) for run in todo]
        keys = {id(future): run.key for run, future in submitted}
        finished = as_completed([future for _, future in submitted])
        for n, future in enumerate(finished, start=1):
            key = keys[id(future)]
            # The result, not `future.state`: that is read back from the API and may lag.
            value = future.result(raise_on_failure=False)
            if isinstance(value, BaseException):
                attempts = getattr(value, "attempts", None)
                detail = getattr(value, "detail", None) or str(value)
                rows[key] = {
                    "partition": key,
                    "state": "failed",
                    "attempts": attempts,
                    "error": detail,
                }
                _say(quiet, f"{key} failed ({n}/{len(todo)}) after {attempts} attempts: {detail}")
                continue
            rows[key] = {"partition": key, "state": "completed", **value}
            _say(
                quiet,
                f"{key} completed ({n}/{len(todo)}): {value.get('in', '-')} in, "
                f"{value.get('out', '-')} out, {value['seconds']:.1f} s",
            )
    return [rows[run.key] for run in runs]


def backfill_flow_for(parallel: int) -> Any:
    """The backfill flow with `parallel` threads: at most that many partitions at a time."""
    return backfill.with_options(task_runner=ThreadPoolTaskRunner(max_workers=max(parallel, 1)))
