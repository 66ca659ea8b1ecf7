"""Load a recipe file, apply command-line overrides, and explain any problem in one line."""

from __future__ import annotations

import glob
import hashlib
import json
from collections.abc import Collection
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sftforge.schemas.config_errors import (
    MAX_RECIPE_BYTES,
    ConfigError,
    config_error,
    explain,
    key_path,
    key_text,
    parse_key,
    parse_yaml,
    shorten,
)
from sftforge.schemas.overrides import resolve_key, unknown_key_hint
from sftforge.schemas.recipe import Recipe
from sftforge.schemas.steps import load_step_modules


def apply_override(data: dict[str, Any], assignment: str) -> str:
    """Apply one `--set a.b=c` (the value is parsed as YAML: numbers, lists, booleans).

    `steps.filter_language.x` is the step of that stage name, `outputs.alpaca.x` the output
    of that name (schemas/overrides.py). Returns the key set (or the first one created), with
    list items by index (`steps[2].x`), as error messages name keys."""
    where = f"--set {shorten(assignment)}"
    if "=" not in assignment:
        raise ConfigError(f"{where}: expected KEY=VALUE")
    key, raw = assignment.split("=", 1)
    try:
        path = parse_key(key.strip())
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if path[:2] == ["outputs", "parquet"] and data.get("outputs") is None:
        data["outputs"] = [{"format": "parquet"}]  # the default outputs, written out
    try:
        path = resolve_key(data, path)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    value = parse_yaml(raw, where, list(path)) if raw.strip() else ""
    node: Any = data
    made: str | None = None  # the first key this --set created: all below it is its doing
    for i, part in enumerate(path[:-1]):
        nxt = path[i + 1]
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                raise ConfigError(f"{where}: no item {part} at {key}")
            node = node[part]
            continue
        if not isinstance(node, dict):
            raise ConfigError(f"{where}: {_not_a_mapping(path[:i], node)}")
        if node.get(part) is None:  # absent, or written as an empty `key:`
            node[part] = [] if isinstance(nxt, int) else {}
            made = made or key_text(path[: i + 1])
        node = node[part]
    last = path[-1]
    if isinstance(last, int):
        if not isinstance(node, list) or last >= len(node):
            raise ConfigError(f"{where}: no item {last} at {key}")
        node[last] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise ConfigError(f"{where}: {_not_a_mapping(path[:-1], node)}")
    return made or key_text(path)


def _not_a_mapping(at: list[str | int], node: Any) -> str:
    if isinstance(node, list):  # `sources.0.mapping.x.y` where x is a list: say how to index
        return f"{key_text(at)} is a list: give an item's index ({key_text(at)}[0]…)"
    return f"cannot set a key inside a {_kind(node)} ({key_text(at)})"


def read_recipe_data(path: str | Path) -> dict[str, Any]:
    if not str(path).strip():
        raise ConfigError("CONFIG '': expected a recipe file")
    path = Path(path)
    try:
        # Bounded: a data file or a device (/dev/zero) given as CONFIG is refused, not read.
        with path.open("rb") as file:
            raw = file.read(MAX_RECIPE_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if len(raw) > MAX_RECIPE_BYTES:
        raise ConfigError(
            f"{path}: over {MAX_RECIPE_BYTES:,} bytes, too large for a recipe "
            "(a data file? give data as a source's path or with --input)"
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not a text file (byte {raw[exc.start]:#04x} at offset {exc.start} "
            "is not UTF-8)"
        ) from None
    data = parse_yaml(text, str(path))
    if data is None:
        raise ConfigError(f"{path}: the recipe is empty (expected name, output_dir, sources …)")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, not a {_kind(data)}")
    return data


def _kind(value: Any) -> str:
    names = {list: "list", dict: "mapping", str: "string", int: "number", type(None): "null"}
    return names.get(type(value), "boolean" if isinstance(value, bool) else type(value).__name__)


def load_recipe(
    path: str | Path,
    *,
    sets: list[str] | None = None,
    inputs: dict[str, str] | None = None,
    out: str | None = None,
) -> Recipe:
    """Read, override and validate a recipe; raise ConfigError with one line on any problem."""
    data = read_recipe_data(path)
    # Which key each --set wrote (a later one on the same key wins): a problem there is
    # blamed on that --set, not on the file.
    sets_at = {apply_override(data, assignment): assignment for assignment in sets or []}
    if out is not None:
        if not str(out).strip():
            # Path("") is the working directory: a run would spill its folders there
            raise ConfigError(f"--out {out!r}: expected a directory")
        data["output_dir"] = out
    for name, value in (inputs or {}).items():
        sources = data.get("sources") or []
        if not isinstance(sources, list):
            raise config_error(path, "sources", "expected a list", sets_at)
        match = [s for s in sources if isinstance(s, dict) and s.get("name") == name]
        if not match:
            names = [s.get("name") for s in sources if isinstance(s, dict)]
            raise ConfigError(f"{path}: --input {name}: no source named {name!r} (have {names})")
        match[0]["path"] = value
        match[0].pop("dataset", None)
    _load_plugins(data, path, sets_at)
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        error = err.get("ctx", {}).get("error")
        key = getattr(error, "key", None) or key_path(tuple(err["loc"]))
        problem = explain(err)
        if err["type"] == "extra_forbidden":
            problem += unknown_key_hint(Recipe, tuple(err["loc"]))
        if key == "output_dir" and out is not None:
            raise ConfigError(f"--out {shorten(out)}: {problem}") from None
        raise config_error(path, key, problem, sets_at) from None
    check_kinds(recipe, path, sets_at)
    return recipe


def _load_plugins(data: dict[str, Any], path: str | Path, sets_at: dict[str, str]) -> None:
    """Import the modules a recipe names under `plugins:` (their steps register)."""
    plugins = data.get("plugins") or []
    if not isinstance(plugins, list) or not all(isinstance(p, str) for p in plugins):
        raise config_error(path, "plugins", "expected a list of module names", sets_at)
    for i, module in enumerate(plugins):
        try:
            load_step_modules([module])
        except Exception as exc:  # an import error of the user's module: name it, one line
            problem = f"cannot import {module!r} ({type(exc).__name__}: {shorten(str(exc))})"
            raise config_error(path, f"plugins[{i}]", problem, sets_at) from None


def resolve_source_files(
    recipe: Recipe, recipe_path: str | Path, inputs: Collection[str] = ()
) -> dict[str, list[Path]]:
    """Files of every path-based source, sorted so that input order is reproducible; a
    source named in `inputs` got its path from `--input`, and a problem with it says so.

    Also checks the other files a recipe names (a step's model file), so that a run never
    starts only to fail on its first record.
    """
    resolved: dict[str, list[Path]] = {}
    for i, source in enumerate(recipe.sources):
        if not source.path:
            continue
        where = f"--input {source.name}" if source.name in inputs else f"sources[{i}].path"
        try:
            files = _files(source.path)
            # /dev/null, a socket: there, but nothing to read records from
            missing = "not a regular file" if Path(source.path).exists() else "no such file"
        except (OSError, ValueError) as exc:  # too long a name, a NUL, a folder it may not list
            raise ConfigError(
                f"{recipe_path}: {where}: cannot read {shorten(source.path)!r} "
                f"({exc.strerror or exc})"
            ) from None
        if files is None:
            raise ConfigError(f"{recipe_path}: {where}: {missing} {source.path!r}")
        if not files:
            raise ConfigError(f"{recipe_path}: {where}: nothing matches {source.path!r}")
        resolved[source.name] = files
    for i, step in enumerate(recipe.steps):
        for option, file in step.required_files().items():
            if not Path(file).is_file():
                raise ConfigError(f"{recipe_path}: steps[{i}].{option}: no such file {file!r}")
    return resolved


def _files(path: str) -> list[Path] | None:
    """The files a source's path names (a file, a directory, a glob); None: nothing there."""
    p = Path(path)
    if p.is_dir():
        return sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
    if any(ch in path for ch in "*?["):
        return [f for f in sorted(Path(f) for f in glob.glob(path, recursive=True)) if f.is_file()]
    return [p] if p.is_file() else None


def check_kinds(
    recipe: Recipe, recipe_path: str | Path, sets_at: dict[str, str] | None = None
) -> None:
    """Each step must take the kind of record that reaches it. (The outputs are checked by
    the output registry, a layer up: tasks/pipeline/request.py.) `sets_at`: see set_keys."""
    for i, source in enumerate(recipe.sources):
        for j, step in enumerate(source.preprocess):
            if "conversation" not in step.kinds:
                problem = f"{step.step} does not work on conversations"
                raise config_error(recipe_path, f"sources[{i}].preprocess[{j}]", problem, sets_at)
    kind = recipe.source_kind
    for i, step in enumerate(recipe.steps):
        if kind not in step.kinds:
            problem = (
                f"{step.step} works on {' or '.join(step.kinds)} records, "
                f"but the records here are {kind} records"
            )
            raise config_error(recipe_path, f"steps[{i}]", problem, sets_at)
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
