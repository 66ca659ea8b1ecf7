"""The recipe flow: read sources into shards, run the steps' stages, write outputs and manifest.

It composes tasks and holds no record logic; it returns the manifest body (counts, paths).
"""

from __future__ import annotations

import errno
import io
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.futures import as_completed

from sftforge.flows.ad_hoc_settings import ad_hoc_run_settings
from sftforge.flows.interruptible import remember_flow_run
from sftforge.flows.progress import StageProgress
from sftforge.flows.recipe_handover import handed_over, loaded_for
from sftforge.flows.watches import marker_watch, read_watch
from sftforge.schemas.recipe import RunnerConfig
from sftforge.tasks.base import stop
from sftforge.tasks.base.shards import STATE_DIR
from sftforge.tasks.base.stats import StageStats
from sftforge.tasks.base.step_protocol import StepContext, TooManyFailures
from sftforge.tasks.pipeline import prefect_tasks as t
from sftforge.tasks.pipeline.manifest import manifest_body
from sftforge.tasks.pipeline.out_lock import out_lock
from sftforge.tasks.pipeline.plan import READ_STAGE, Segment, plan_run
from sftforge.tasks.pipeline.read_check import read_failure
from sftforge.tasks.pipeline.request import LoadedRecipe, RunRequest
from sftforge.tasks.pipeline.runners import (
    api_for_remote_workers,
    task_runner_for,
    worker_count,
    worker_pool,
)
from sftforge.tasks.pipeline.snapshot import write_recipe_snapshot
from sftforge.tasks.pipeline.stages import RUNNERS
from sftforge.tasks.publish.artifacts import publish_artifacts
from sftforge.tasks.publish.dataset_readme import write_dataset_readme


class StageFailed(RuntimeError):
    def __init__(self, stage: str, detail: str) -> None:
        super().__init__(f"stage {stage}: {detail}")
        self.stage = stage


# What a write runs out of (space, quota, a read-only disk): "<reason> writing <path>".
_WRITE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}
_FILE_ERRORS = (
    FileExistsError,
    FileNotFoundError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
)
_TEMP_NAME = re.compile(r"^\.(.+)\.\d+\.tmp$")  # tasks/base/atomic.py temp_path


def _path_in_traceback(exc: BaseException, out: Path) -> Path | None:
    """The file under OUT that the innermost frame was working on. An OSError from writing an
    open file (Python's or pyarrow's) carries no filename, but the writer's frame holds it:
    a path among its locals, or its object's (`self.path`, `self.fh`)."""
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    root = out.resolve()
    for frame in reversed(frames):
        values = list(frame.f_locals.values())
        owner = frame.f_locals.get("self")
        values += list(getattr(owner, "__dict__", {}).values())
        for value in values:
            if isinstance(value, io.IOBase):  # an open file: its path
                value = getattr(value, "name", None)
                value = Path(value) if isinstance(value, str) else None
            if isinstance(value, Path) and value.resolve().is_relative_to(root):
                return _final_name(value)
    return None


def _final_name(path: Path) -> Path:
    """A temporary file's final name (the file it was about to become), else the path."""
    temp = _TEMP_NAME.match(path.name)
    return path.with_name(temp.group(1)) if temp else path


def _about_a_file(exc: BaseException) -> bool:
    """An OSError about a file, not the network's (ConnectionError and kin are OSErrors too)."""
    if not isinstance(exc, OSError) or exc.errno is None:
        return False
    return bool(exc.filename) or exc.errno in _WRITE_ERRORS or isinstance(exc, _FILE_ERRORS)


def describe_error(exc: BaseException, out: Path) -> str:
    """One line for a stage's error: an OSError as its reason and the path (the file when it
    can be told, else OUT: a worker process's error comes without its frames), anything
    else as its type and message."""
    if isinstance(exc, TooManyFailures):  # its message is the whole story (counts, hints)
        return str(exc)
    if not _about_a_file(exc):
        return f"{type(exc).__name__}: {exc}"
    assert isinstance(exc, OSError) and exc.errno is not None
    # A rename's or link's second path is the one being written.
    named = exc.filename2 or exc.filename
    path = _final_name(Path(named)) if named else _path_in_traceback(exc, out) or out
    reason = os.strerror(exc.errno).lower()
    return f"{reason} writing {path}" if exc.errno in _WRITE_ERRORS else f"{reason}: {path}"


@contextmanager
def _stage(label: str, out: Path) -> Iterator[None]:
    """A step of the run outside the segments (reading, writing outputs): its failure is
    StageFailed naming it. A bad input or a missing extra stays what it is (exit 2)."""
    from sftforge.schemas.loading import ConfigError
    from sftforge.tasks.readers.sources import UnreadableInput

    try:
        yield
    except (StageFailed, UnreadableInput, ConfigError):
        raise
    except Exception as exc:
        raise StageFailed(label, describe_error(exc, out)) from exc


class RunFailed(RuntimeError):
    """A run that started and failed; `stage` names the stage when one failed."""

    def __init__(self, stage: str | None, detail: str) -> None:
        super().__init__(detail)
        self.stage = stage


@flow(name="sftforge-recipe", log_prints=True)
def run_recipe(request: RunRequest, quiet: bool = True) -> dict[str, Any]:
    """Run `request`, with the recipe its caller loaded (`run_request`) or loaded here."""
    began = time.perf_counter()
    loaded = loaded_for(request)
    recipe, files = loaded.recipe, loaded.files
    out_dir = Path(recipe.output_dir)
    plan = plan_run(recipe, files, request.limit)
    workers = worker_count(recipe.runner.workers)
    per_stage: dict[str, list[StageStats]] = {}
    kind = recipe.runner.kind
    state = out_dir / STATE_DIR

    remember_flow_run()  # a stopped command marks it cancelled
    with (
        worker_pool(workers, kind),
        api_for_remote_workers(kind),
        StageProgress(quiet=quiet) as progress,
        stop.at_exit(progress.stop_live),
    ):
        all_files = [p for source in recipe.sources for p in files.get(source.name, [])]
        progress.start(
            READ_STAGE, None, read_watch(state / READ_STAGE, plan.read_fingerprint, all_files)
        )
        with _stage(READ_STAGE, out_dir):
            per_stage[READ_STAGE] = t.read_sources(recipe, files, out_dir, plan)
        progress.finish_shards(per_stage[READ_STAGE])
        shards = len(per_stage[READ_STAGE])
        # Wrong input fails loudly (#14 §3), after its rejects are written: a source with
        # every record (or more than `read_check` allows) rejected at read.
        with _stage(READ_STAGE, out_dir):
            too_many = read_failure(recipe, out_dir, shards)
        if too_many:
            raise StageFailed(READ_STAGE, too_many)
        context = StepContext(
            seed=recipe.seed, report=progress.detail, records_done=progress.records_done
        )

        for segment in plan.segments:
            total = sum(s.n_out for s in per_stage[segment.input_stage])
            if RUNNERS[segment.kind].per_shard:
                progress.start(segment.label, total, shards=shards)
                per_stage.update(_shard_by_shard(out_dir, segment, shards, recipe.seed, progress))
                continue
            first = segment.stages[0]
            watch = marker_watch(state / first.stage, first.fingerprint)
            progress.start(segment.label, total, watch, shards=shards)
            try:
                stats = t.whole_segment(out_dir, segment, shards, context)
            except Exception as exc:
                raise StageFailed(segment.label, describe_error(exc, out_dir)) from exc
            per_stage.update(stats)
            progress.finish_shards(stats[first.stage])

        final = sum(s.n_out for s in per_stage[plan.final_stage])
        progress.start("write outputs", final)
        with _stage("write outputs", out_dir):
            written = t.outputs(out_dir, plan, shards, recipe)
        progress.finish(final)
    # Out of the block: the worker processes' exit is the run's work too, and its wall.
    body = manifest_body(recipe, plan, per_stage, written, workers)
    with _stage("write manifest", out_dir):
        write_recipe_snapshot(out_dir, recipe)
        # Before the manifest, which marks the run complete: a run with one has its README.
        write_dataset_readme(out_dir, body, recipe.description)
        body["wall_seconds"] = round(time.perf_counter() - began, 3)  # all but this write
        t.manifest(out_dir, body)
    publish_artifacts(body)
    return body


def _shard_by_shard(
    out: Path, segment: Segment, shards: int, seed: int, progress: StageProgress
) -> dict[str, list[StageStats]]:
    """A map segment: one task per shard, in parallel; stats back in shard order."""
    futures = {}
    for shard in range(shards):
        future = t.map_shard.submit(out, segment, shard, seed)
        futures[id(future)] = (shard, future)
    results: list[dict[str, StageStats]] = [{}] * shards
    for future in as_completed([f for _, f in futures.values()]):
        shard, _ = futures[id(future)]
        try:
            results[shard] = future.result()
        except Exception as exc:
            raise StageFailed(segment.label, f"shard {shard}: {describe_error(exc, out)}") from exc
        progress.advance_shard(results[shard][segment.stages[0].stage])
    return {stage.stage: [r[stage.stage] for r in results] for stage in segment.stages}


def flow_for(workers: int, runner: RunnerConfig | None = None) -> Any:
    """The flow with the task runner of the recipe's `runner:` section: by default a thread
    pool sized to the workers (tasks wait on processes); for `kind: dask`, prefect-dask's
    DaskTaskRunner on the cluster at `runner.address` (or a temporary local one)."""
    runner = runner or RunnerConfig()
    return run_recipe.with_options(
        task_runner=task_runner_for(runner.kind, runner.address, workers)
    )


def run_request(
    request: RunRequest,
    *,
    loaded: LoadedRecipe | None = None,
    quiet: bool = True,
    return_state: bool = False,
) -> Any:
    """Run a request with the task runner its recipe chooses — the one way the CLI, the
    deployment entry point, the backfill and `sftforge.run` start a run. The recipe is
    loaded here unless given, and handed to the flow, which does not read it again. The run
    holds its output directory's lock throughout (ConfigError if another run holds it)."""
    loaded = loaded or request.load()
    runner = loaded.recipe.runner
    flow = flow_for(worker_count(runner.workers), runner)
    out = Path(loaded.recipe.output_dir)
    # One run per OUT: a second one refuses here (ConfigError), before Prefect starts a flow.
    with out_lock(out):
        # From here OUT is no longer the finished run its manifest describes: if this run
        # fails, no manifest (nor the dataset card `datasets.load_dataset(OUT)` follows) is
        # left beside parts of another input or recipe. A finished run writes both again.
        for finished_mark in ("manifest.json", "README.md"):
            (out / finished_mark).unlink(missing_ok=True)
        with handed_over(loaded):
            return flow(request=request, quiet=quiet, return_state=return_state)


def run_checked(
    request: RunRequest, *, loaded: LoadedRecipe | None = None, quiet: bool = True
) -> dict[str, Any]:
    """`run_request`, and what its end means — for the CLI and `sftforge.run` alike: the
    manifest body; ConfigError for an input that broke after the check or a missing extra
    (exit 2); RunFailed for anything else (exit 1)."""
    from sftforge.schemas.loading import ConfigError
    from sftforge.tasks.readers.sources import UnreadableInput

    with ad_hoc_run_settings():
        state = run_request(request, loaded=loaded, quiet=quiet, return_state=True)
    if state.is_completed():
        return state.result()
    error = state.result(raise_on_failure=False)
    if isinstance(getattr(error, "__cause__", None), ConfigError):
        error = error.__cause__  # an extra a step needs, found missing inside its stage
    if isinstance(error, UnreadableInput | ConfigError):
        raise ConfigError(str(error)) from error
    stage = error.stage if isinstance(error, StageFailed) else None
    cause = error if isinstance(error, BaseException) else None
    raise RunFailed(stage, f"run failed: {error}") from cause
