"""sftforge from Python: `run` a recipe as the CLI does, `load` what a run made.

`run` builds the same RunRequest as `sftforge run`, loads the recipe once (a bad recipe or
input is a ConfigError before Prefect starts), starts Prefect as the CLI does, and runs the
same flow. A `Recipe` object is written to OUT/.sftforge/recipe.yaml and run from there, so
that a run is always described by a recipe file (and the flow run's parameters name it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sftforge.schemas.loading import ConfigError
from sftforge.schemas.recipe import Recipe
from sftforge.tasks.pipeline.request import RunRequest, prefect_defaults

if TYPE_CHECKING:
    from datasets import DatasetDict

__all__ = ["ConfigError", "Recipe", "RunResult", "load", "run"]


@dataclass(frozen=True)
class RunResult:
    manifest: dict[str, Any]  # OUT/manifest.json
    output_dir: Path
    # Output name -> where it is: OUT/dataset for parquet; for a JSON format, its stem under
    # OUT/export (the files add `-<split>` and the suffix); a training format's own path.
    outputs: dict[str, Path]

    @property
    def stages(self) -> dict[str, dict[str, Any]]:
        """Stage name -> {name, in, out, rejected: {reason: count}, seconds}, in run order."""
        return {stage["name"]: stage for stage in self.manifest["stages"]}


def _recipe_path(recipe: str | Path | Recipe, out: str | None) -> str:
    if not isinstance(recipe, Recipe):
        return str(recipe)
    from sftforge.tasks.base.shards import WORK_DIR
    from sftforge.tasks.pipeline.request import check_output_dir
    from sftforge.tasks.pipeline.snapshot import write_recipe_snapshot

    # The YAML of OUT/recipe.yaml (it loads back to an equal Recipe); sources' relative
    # paths are relative to the working directory, not the file, so its place is free.
    # OUT is checked first: the snapshot is the first thing written there.
    target = str(out if out is not None else recipe.output_dir)
    check_output_dir(target, "out" if out is not None else "output_dir")
    folder = Path(target) / WORK_DIR
    return str(write_recipe_snapshot(folder, recipe))


def _manifest(out: Path) -> dict[str, Any]:
    try:
        return json.loads((out / "manifest.json").read_text())
    except (OSError, json.JSONDecodeError):
        raise ConfigError(
            f"{out}: no manifest.json (is this a finished run's output directory?)"
        ) from None


def run(
    recipe: str | Path | Recipe,
    inputs: dict[str, str] | None = None,
    out: str | Path | None = None,
    sets: list[str] | None = None,
    quiet: bool = True,
    limit: int | None = None,
) -> RunResult:
    """Run a recipe (a path or a `Recipe`) as `sftforge run` does: `inputs` are its
    `--input NAME=PATH`, `out` its `--out`, `sets` its `--set KEY=VALUE`, `limit` its
    `--limit N` (a limited run: the manifest's `limited`); `quiet=False` shows the progress
    display. A bad recipe or input raises ConfigError; a failed run RunFailed (its `stage`
    says where). A rerun resumes, as from the command line."""
    out = str(out) if out is not None else None
    request = RunRequest(
        recipe_path=_recipe_path(recipe, out), inputs=inputs, out=out, sets=sets, limit=limit
    )
    loaded = request.load(check_inputs=True)
    prefect_defaults(verbose=False)

    from sftforge.flows.recipe_flow import RunFailed, run_checked

    try:
        body = run_checked(request, loaded=loaded, quiet=quiet)
    except RunFailed as exc:  # the message names the recipe, as a ConfigError's does
        raise RunFailed(exc.stage, f"{request.recipe_path}: {exc}") from exc.__cause__
    out_dir = Path(body["output_dir"])
    outputs = {
        name: Path(entry["path"] if isinstance(entry, dict) else entry)
        for name, entry in body["outputs"].items()
    }
    return RunResult(_manifest(out_dir), out_dir, outputs)


def load(out: str | Path, stage: str | None = None, rejects: bool = False) -> DatasetDict:
    """What a run wrote to `out`, as a `datasets.DatasetDict`:

    - `load(out)`: the final records — `train`, and `eval` when the recipe splits;
    - `load(out, stage=S)`: stage S's records (split `train`);
    - `load(out, stage=S, rejects=True)`: what S rejected (split `train`; empty if nothing);
    - `load(out, rejects=True)`: every stage's rejects, one split per stage that rejected
      anything — the same as `datasets.load_dataset(out, "rejects")`.
    """
    from sftforge.tasks.publish.dataset_readme import final_splits, rejects_splits

    out = Path(out)
    stages = [s["name"] for s in _manifest(out)["stages"]]
    if stage is not None and stage not in stages:
        raise ConfigError(f"{out}: no stage {stage!r} (stages: {', '.join(stages)})")
    if stage is None and not rejects:
        files = final_splits(out, stages[-1])
        if not files:
            raise ConfigError(f"{out}: no parquet records")
    elif stage is None:
        files = rejects_splits(out, stages)
    else:
        folder = out / "rejects" / stage if rejects else out / stage
        files = {"train": sorted(folder.glob("part-*.parquet"))}
    return _dataset_dict(files)


def _dataset_dict(files: dict[str, list[Path]]) -> DatasetDict:
    """`datasets`' parquet loader for the splits with rows; an empty split (it cannot make
    one) built from the files' schema — or the rejects schema: a stage that rejected
    nothing writes no rejects file."""
    import pyarrow.parquet as pq
    from datasets import Dataset, DatasetDict, Features, load_dataset

    from sftforge.schemas.records import REJECT_SCHEMA
    from sftforge.tasks.publish.dataset_readme import PARQUET_OPTIONS, has_rows

    full = {split: [str(p) for p in parts] for split, parts in files.items() if has_rows(parts)}
    loaded = load_dataset("parquet", data_files=full, **PARQUET_OPTIONS) if full else {}
    result = DatasetDict()
    for split, parts in files.items():
        if split in full:
            result[split] = loaded[split]
            continue
        schema = pq.read_schema(parts[0]).remove_metadata() if parts else REJECT_SCHEMA
        empty = {name: [] for name in schema.names}
        result[split] = Dataset.from_dict(empty, features=Features.from_arrow_schema(schema))
    return result
