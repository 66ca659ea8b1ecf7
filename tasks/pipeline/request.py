"""A run request: which recipe, with which `--input`, `--out` and `--set` — the one
description of a run that the CLI, the deployment entry point, the backfill and the Python
API all build, and the recipe flow takes.

It is frozen and plain JSON (Prefect keeps a flow's parameters as JSON, and a deployment is
given them as JSON). The recipe file is read once per run: `load()` reads and validates it
and finds the source files, and the flow is handed that result rather than reading again.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, field_validator

from sftforge.schemas.config_errors import blame, config_error, set_keys, shorten
from sftforge.schemas.loading import ConfigError, load_recipe, resolve_source_files
from sftforge.schemas.recipe import READ_STAGE, OutputConfig, Recipe
from sftforge.tasks.base.extras import require_extra
from sftforge.tasks.base.shards import WORK_DIR, reject_part
from sftforge.tasks.outputs.registry import check_outputs, output_files

# How the Python API's arguments are named in a message: as the CLI options they stand for.
_ARGUMENTS = {
    "recipe_path": ("CONFIG", "expected a path"),
    "inputs": ("--input", "expected {NAME: PATH}"),
    "out": ("--out", "expected a directory"),
    "sets": ("--set", "expected a list of 'KEY=VALUE' strings"),
    "limit": ("--limit", "expected a whole number, 1 or more"),
}


def _fspath_pair(pair: Any) -> Any:
    if isinstance(pair, (tuple, list)) and len(pair) == 2 and isinstance(pair[1], os.PathLike):
        return (pair[0], os.fspath(pair[1]))
    return pair


def reserved_stage_names() -> frozenset[str]:
    """Top-level names of OUT that are not stage folders, from the constants of the layout:
    a stage named so would be written over by (or write over) the final dataset, the
    exports, the rejects, sftforge's state or a backfill's partitions."""
    from sftforge.tasks.pipeline.partitions import PARTITIONS_DIR  # it imports this module

    formats = OutputConfig.model_fields["format"].annotation.__args__  # type: ignore[union-attr]
    files = [file for fmt in formats for file in output_files(OutputConfig(format=fmt))]
    taken = {Path(file).parts[0] for file in files}
    taken |= {reject_part(Path(), "stage", 0).parts[0], WORK_DIR, PARTITIONS_DIR, READ_STAGE}
    return frozenset(name.casefold() for name in taken)


def check_output_dir(output_dir: str, who: str) -> None:
    """The output directory is one, or can be made: not a file, nor below one, and
    writable — refused now (naming it as `who`) rather than after the first stage ran."""
    if not output_dir.strip():  # Path("") is the working directory: never meant
        raise ConfigError(f"{who}: expected a directory, got an empty name")
    if "\0" in output_dir:  # pathlib reports "no such folder", then mkdir raises ValueError
        raise ConfigError(f"{who}: contains a NUL character")
    out = Path(output_dir)
    try:
        for folder in (out, *out.parents):
            if folder.is_symlink() and not folder.exists():
                raise ConfigError(f"{who}: {folder} is a broken symbolic link")
            if not folder.exists():
                continue
            if not folder.is_dir():
                where = "is" if folder == out else f"is below {folder}, which is"
                raise ConfigError(f"{who}: {where} a file, not a directory")
            if not os.access(folder, os.W_OK | os.X_OK):
                raise ConfigError(f"{who}: {folder} is not writable")
            return
    except (OSError, ValueError) as exc:  # too long a name, a NUL (from Python), no access
        raise ConfigError(f"{who}: cannot use it ({exc.strerror or exc})") from None


@dataclass(frozen=True)
class LoadedRecipe:
    """A request's recipe, validated with its overrides applied, and its sources' files."""

    recipe: Recipe
    files: dict[str, list[Path]]


class RunRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    recipe_path: str
    # (source name, path) pairs, not a dict: a frozen request whose parts cannot change
    # either. A mapping is accepted (and is what `--input` and a deployment give).
    inputs: tuple[tuple[str, str], ...] = ()
    out: str | None = None
    sets: tuple[str, ...] = ()
    # At most this many records read from each source (`--limit`): a limited run (#14 §4).
    # Strict: `True` or "5" from Python is a mistake, not a limit.
    limit: Annotated[StrictInt, Field(ge=1)] | None = None

    def __init__(self, **data: Any) -> None:
        # `sftforge.run(..., sets="a=b")` and the like: one line naming the argument, as the
        # CLI's own misuse is, rather than pydantic's report.
        try:
            super().__init__(**data)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = str(err["loc"][0]) if err["loc"] else "RunRequest"
            name, expected = _ARGUMENTS.get(field, (field, err["msg"]))
            raise ConfigError(f"{name} {shorten(repr(err['input']))}: {expected}") from None

    @field_validator("inputs", mode="before")
    @classmethod
    def _pairs(cls, value: Any) -> Any:
        if value is None:
            return ()
        pairs = tuple(value.items()) if isinstance(value, Mapping) else value
        if not isinstance(pairs, tuple):
            return pairs  # pydantic says what is wrong with it
        # A pathlib.Path is as good as its text.
        return tuple(_fspath_pair(pair) for pair in pairs)

    @field_validator("sets", mode="before")
    @classmethod
    def _no_sets(cls, value: Any) -> Any:
        return () if value is None else value

    @property
    def input_map(self) -> dict[str, str]:
        return dict(self.inputs)

    def recipe(self) -> Recipe:
        """Read the recipe file and validate it with the overrides, its outputs included
        (ConfigError: one line)."""
        recipe = load_recipe(
            self.recipe_path, sets=list(self.sets), inputs=self.input_map, out=self.out
        )
        try:
            check_outputs(recipe.outputs, recipe.final_kind, split_used=recipe.split is not None)
        except ValueError as exc:
            raise ConfigError(f"{self.recipe_path}: {exc}") from None
        reserved = reserved_stage_names()
        for i, step in enumerate(recipe.steps):
            if step.stage.casefold() in reserved:
                key = f"steps[{i}].{'name' if step.name else 'step'}"
                problem = (
                    f"stage name {step.stage!r} is taken by the output layout (OUT/{step.stage}); "
                    "give the step another `name`"
                )
                raise config_error(self.recipe_path, key, problem, set_keys(self.sets, recipe))
        return recipe

    def load(self, recipe: Recipe | None = None, *, check_inputs: bool = False) -> LoadedRecipe:
        """The recipe (read now unless given) and its sources' files. `check_inputs` also
        opens each input and checks the output directory, so that an unreadable input or an
        unusable OUT is a ConfigError before a run starts."""
        recipe = recipe if recipe is not None else self.recipe()
        files = resolve_source_files(recipe, self.recipe_path, self.input_map)
        if check_inputs:
            # Before a run, not in recipe(): a backfill's partition whose folder is blocked
            # fails as that partition's run (and is retried), not as the whole backfill.
            if self.out is not None:
                check_output_dir(recipe.output_dir, f"--out {shorten(self.out)}")
            else:
                who = blame(self.recipe_path, "output_dir", set_keys(self.sets))
                check_output_dir(recipe.output_dir, who)
            from sftforge.tasks.readers.sources import UnreadableInput, probe

            for step in recipe.steps:
                for module, (extra, what) in step.required_extras().items():
                    require_extra(module, extra, what)
            if recipe.runner.kind == "dask":
                require_extra("prefect_dask", "dask", "runner.kind=dask")

            for source in recipe.sources:
                try:
                    probe(source, files.get(source.name))
                except UnreadableInput as exc:
                    raise ConfigError(str(exc)) from None
        return LoadedRecipe(recipe, files)

    def narrowed(self, inputs: Mapping[str, str], out: str) -> RunRequest:
        """The same recipe and sets with more inputs replaced and another output directory
        (a backfill partition)."""
        return RunRequest(
            recipe_path=self.recipe_path,
            inputs={**self.input_map, **inputs},
            out=out,
            sets=self.sets,
        )

    def parameters(self) -> dict[str, Any]:
        """The deployment entry point's JSON parameters (flows/deployments.py)."""
        return {
            "recipe_path": self.recipe_path,
            "inputs": self.input_map,
            "out": self.out,
            "sets": list(self.sets),
        }


def prefect_defaults(verbose: bool) -> None:
    """How every process that starts runs (the CLI, `sftforge.run`) sets Prefect up; called
    before Prefect is imported, since Prefect reads its settings at import."""
    # No analytics calls (offline machines); Prefect's per-task INFO lines (and Dask's, for
    # a dask runner) would drown the progress display unless asked for.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Prefect's client-side telemetry (on import, in a terminal) too: `DO_NOT_TRACK=0` to allow.
    os.environ.setdefault("DO_NOT_TRACK", "1")
    # A first run creates the temporary server's database; on a busy two-core machine that
    # can take longer than Prefect's 20 s default, and the run would fail before it starts.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    # That database goes in PREFECT_HOME, whose missing parents Prefect does not create: its
    # temporary server then never answered, and the run failed after that timeout.
    home = Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()
    home.mkdir(parents=True, exist_ok=True)
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
        os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
        # A failed task or flow run is logged with its traceback, once per task and again
        # for the flow: a page of tracebacks above the one line that says what failed. Those
        # records go to Prefect's API handler only (the run's logs on the server, with the
        # traceback, where the UI and `prefect flow-run logs` show them), not to the console;
        # --verbose shows them there too. (Prefect's logging config sets no `propagate` on
        # these loggers, so its setup at import leaves this as it is.)
        for name in ("prefect.flow_runs", "prefect.task_runs"):
            logging.getLogger(name).propagate = False
        # Prefect's event and log senders, drained at exit, warn "Still processing items: 3
        # items remaining..." whenever anything is still queued then — a progress note, not
        # a problem, printed under the run's last line. Their errors still show.
        for name in ("EventsWorker", "APILogWorker"):
            logging.getLogger(name).setLevel(logging.ERROR)
