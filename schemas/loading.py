"""Load a recipe file, apply command-line overrides, and explain any problem in one line."""

from __future__ import annotations

import glob
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from sftforge.schemas.recipe import Recipe
from sftforge.schemas.steps import load_step_modules, registered_steps


class ConfigError(Exception):
    """A recipe the pipeline cannot run. `str()` is the one line shown to the user."""


_MESSAGES = {
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "int_type": "expected an integer",
    "int_parsing": "expected an integer",
    "int_from_float": "expected an integer",
    "string_type": "expected a string",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "list_type": "expected a list",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
    "extra_forbidden": "unknown key",
    "missing": "required key is missing",
}


def _discriminator_tags() -> set[str]:
    """Names pydantic puts in error locations for tagged unions (step types, output formats)."""
    from sftforge.schemas.recipe import OutputConfig
    from sftforge.schemas.training import TRAINING_FORMATS

    formats = OutputConfig.model_fields["format"].annotation.__args__  # type: ignore[union-attr]
    return set(registered_steps()) | set(TRAINING_FORMATS) | set(formats) | {"OutputConfig"}


def _key_path(loc: tuple[Any, ...]) -> str:
    tags = _discriminator_tags()
    parts: list[str] = []
    for i, item in enumerate(loc):
        if isinstance(item, int):
            parts[-1] = f"{parts[-1]}[{item}]" if parts else f"[{item}]"
        elif i > 0 and isinstance(loc[i - 1], int) and item in tags:
            continue  # pydantic's discriminator tag, not a key the user wrote
        else:
            parts.append(str(item))
    return ".".join(parts)


def _explain(err: dict[str, Any]) -> str:
    kind = err["type"]
    if kind == "union_tag_invalid":
        ctx = err.get("ctx", {})
        if ctx.get("discriminator") == "'format'":
            return f"unknown format {ctx.get('tag')!r} (known: {ctx.get('expected_tags')})"
        return f"unknown step {ctx.get('tag')!r} (known: {', '.join(sorted(registered_steps()))})"
    if kind == "union_tag_not_found":
        return "each step needs a `step:` key naming it"
    if kind == "literal_error":
        return f"expected one of {err.get('ctx', {}).get('expected')}"
    if kind.startswith(("greater_than", "less_than")):
        return err["msg"].replace("Input should be", "expected")
    if kind == "too_short":
        return "must not be empty"
    if kind == "value_error":
        return str(err.get("ctx", {}).get("error", err["msg"]))
    return _MESSAGES.get(kind, err["msg"])


def _parse_key(key: str) -> list[str | int]:
    """`steps[2].min_score` or `steps.2.min_score` -> ["steps", 2, "min_score"]."""
    parts: list[str | int] = []
    for piece in key.replace("[", ".").replace("]", "").split("."):
        if piece == "":
            raise ValueError(f"bad key {key!r}")
        parts.append(int(piece) if piece.isdigit() else piece)
    return parts


def apply_override(data: dict[str, Any], assignment: str) -> None:
    """Apply one `--set a.b=c` (the value is parsed as YAML: numbers, lists, booleans)."""
    if "=" not in assignment:
        raise ConfigError(f"--set {assignment}: expected KEY=VALUE")
    key, raw = assignment.split("=", 1)
    try:
        path = _parse_key(key.strip())
    except ValueError as exc:
        raise ConfigError(f"--set {assignment}: {exc}") from None
    value = yaml.safe_load(raw) if raw.strip() else ""
    node: Any = data
    for i, part in enumerate(path[:-1]):
        nxt = path[i + 1]
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                raise ConfigError(f"--set {assignment}: no item {part} at {key}")
            node = node[part]
            continue
        if not isinstance(node, dict):
            raise ConfigError(f"--set {assignment}: {part} is not a mapping")
        node = node.setdefault(part, [] if isinstance(nxt, int) else {})
    last = path[-1]
    if isinstance(last, int):
        if not isinstance(node, list) or last >= len(node):
            raise ConfigError(f"--set {assignment}: no item {last} at {key}")
        node[last] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise ConfigError(f"--set {assignment}: cannot set a key inside a {type(node).__name__}")


def read_recipe_data(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}: invalid YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def load_recipe(
    path: str | Path,
    *,
    sets: list[str] | None = None,
    inputs: dict[str, str] | None = None,
    out: str | None = None,
) -> Recipe:
    """Read, override and validate a recipe; raise ConfigError with one line on any problem."""
    data = read_recipe_data(path)
    for assignment in sets or []:
        apply_override(data, assignment)
    if out is not None:
        data["output_dir"] = out
    for name, value in (inputs or {}).items():
        sources = data.get("sources") or []
        match = [s for s in sources if isinstance(s, dict) and s.get("name") == name]
        if not match:
            names = [s.get("name") for s in sources if isinstance(s, dict)]
            raise ConfigError(f"{path}: --input {name}: no source named {name!r} (have {names})")
        match[0]["path"] = value
        match[0].pop("dataset", None)
    _load_plugins(data, path)
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = _key_path(tuple(err["loc"]))
        raise ConfigError(f"{path}: {key + ': ' if key else ''}{_explain(err)}") from None
    check_kinds(recipe, path)
    return recipe


def _load_plugins(data: dict[str, Any], path: str | Path) -> None:
    """Import the modules a recipe names under `plugins:` (their steps register)."""
    plugins = data.get("plugins") or []
    if not isinstance(plugins, list) or not all(isinstance(p, str) for p in plugins):
        raise ConfigError(f"{path}: plugins: expected a list of module names")
    for i, module in enumerate(plugins):
        try:
            load_step_modules([module])
        except Exception as exc:  # an import error of the user's module: name it, one line
            raise ConfigError(
                f"{path}: plugins[{i}]: cannot import {module!r} ({type(exc).__name__}: {exc})"
            ) from None


def resolve_source_files(recipe: Recipe, recipe_path: str | Path) -> dict[str, list[Path]]:
    """Files of every path-based source, sorted so that input order is reproducible.

    Also checks the other files a recipe names (a step's model file), so that a run never
    starts only to fail on its first record.
    """
    resolved: dict[str, list[Path]] = {}
    for i, source in enumerate(recipe.sources):
        if not source.path:
            continue
        p = Path(source.path)
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
        elif any(ch in source.path for ch in "*?["):
            files = sorted(Path(f) for f in glob.glob(source.path, recursive=True))
            files = [f for f in files if f.is_file()]
        elif p.is_file():
            files = [p]
        else:
            raise ConfigError(f"{recipe_path}: sources[{i}].path: no such file {source.path!r}")
        if not files:
            raise ConfigError(f"{recipe_path}: sources[{i}].path: nothing matches {source.path!r}")
        resolved[source.name] = files
    for i, step in enumerate(recipe.steps):
        for option, file in step.required_files().items():
            if not Path(file).is_file():
                raise ConfigError(f"{recipe_path}: steps[{i}].{option}: no such file {file!r}")
    return resolved


def check_kinds(recipe: Recipe, recipe_path: str | Path) -> None:
    """Each step must take the kind of record that reaches it. (The outputs are checked by
    the output registry, a layer up: tasks/pipeline/request.py.)"""
    for i, source in enumerate(recipe.sources):
        for j, step in enumerate(source.preprocess):
            if "conversation" not in step.kinds:
                raise ConfigError(
                    f"{recipe_path}: sources[{i}].preprocess[{j}]: {step.step} does not work "
                    "on conversations"
                )
    kind = recipe.source_kind
    for i, step in enumerate(recipe.steps):
        if kind not in step.kinds:
            raise ConfigError(
                f"{recipe_path}: steps[{i}]: {step.step} works on {' or '.join(step.kinds)} "
                f"records, but the records here are {kind} records"
            )
        kind = step.output_kind(kind)


def recipe_hash(recipe: Recipe) -> str:
    """Stable hash of the effective recipe (after overrides), for the manifest."""
    # Where the output goes and how many processes make it do not change what it is.
    # `plugins` only say where step classes come from; the steps' options are hashed.
    data = recipe.model_dump(
        mode="json",
        exclude={"output_dir": True, "plugins": True, "runner": {"workers", "kind", "address"}},
    )
    blob = json.dumps(data, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
