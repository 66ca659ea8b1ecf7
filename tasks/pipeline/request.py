"""A run request: which recipe, with which `--input`, `--out` and `--set` — the one
description of a run that the CLI, the deployment entry point, the backfill and the Python
API all build, and the recipe flow takes.

It is frozen and plain JSON (Prefect keeps a flow's parameters as JSON, and a deployment is
given them as JSON). The recipe file is read once per run: `load()` reads and validates it
and finds the source files, and the flow is handed that result rather than reading again.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from sftforge.schemas.loading import ConfigError, load_recipe, resolve_source_files
from sftforge.schemas.recipe import Recipe
from sftforge.tasks.base.extras import require_extra
from sftforge.tasks.outputs.registry import check_outputs


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

    @field_validator("inputs", mode="before")
    @classmethod
    def _pairs(cls, value: Any) -> Any:
        if value is None:
            return ()
        return tuple(value.items()) if isinstance(value, Mapping) else value

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
        return recipe

    def load(self, recipe: Recipe | None = None, *, check_inputs: bool = False) -> LoadedRecipe:
        """The recipe (read now unless given) and its sources' files. `check_inputs` also
        opens each input, so that an unreadable one is a ConfigError before a run starts."""
        recipe = recipe if recipe is not None else self.recipe()
        files = resolve_source_files(recipe, self.recipe_path)
        if check_inputs:
            from sftforge.tasks.readers.sources import UnreadableInput, probe

            for step in recipe.steps:
                for module, (extra, what) in step.required_extras().items():
                    require_extra(module, extra, what)

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
    # A first run creates the temporary server's database; on a busy two-core machine that
    # can take longer than Prefect's 20 s default, and the run would fail before it starts.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
        os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
