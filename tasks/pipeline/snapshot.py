"""OUT/recipe.yaml: the effective recipe of a run (after --set/--input/--out), kept beside the
manifest so that later commands (`push`, `report`) can say how the data was made from OUT
alone. A recipe holds names of environment variables and secret blocks, never their values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from sftforge.schemas.recipe import Recipe
from sftforge.tasks.base.atomic import write_bytes_atomic

SNAPSHOT = "recipe.yaml"


def write_recipe_snapshot(out: Path, recipe: Recipe) -> Path:
    data = recipe.model_dump(mode="json", exclude_defaults=True)
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    path = out / SNAPSHOT
    write_bytes_atomic(path, text.encode("utf-8"))
    return path


def read_recipe_snapshot(out: Path) -> tuple[str, dict[str, Any]] | None:
    """(YAML text, parsed) of the run's recipe, or None for a run that predates snapshots."""
    path = out / SNAPSHOT
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    return text, yaml.safe_load(text) or {}
