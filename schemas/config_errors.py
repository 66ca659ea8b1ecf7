"""The one-line messages of a bad recipe: ConfigError, YAML read safely, pydantic's errors
explained with the key they are about, and which `--set` a problem came from.

Kept apart from loading.py (which reads, overrides and validates) so that both stay short.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml

from sftforge.schemas.steps import registered_steps


class ConfigError(Exception):
    """A recipe the pipeline cannot run. `str()` is the one line shown to the user."""

    def __init__(self, message: str) -> None:
        # A path, a `--set` value or a YAML problem may hold line breaks or other control
        # characters; the CLI promises one line, so they are shown escaped (as repr does).
        text = str(message)
        if not text.isprintable():
            text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
        super().__init__(text)


# A recipe is a page of YAML; a bigger file is almost surely a data file given as CONFIG
# (which would be read whole and parsed for minutes).
MAX_RECIPE_BYTES = 4_000_000
# What YAML aliases may expand a recipe to ("billion laughs"): far above any real recipe.
MAX_VALUES = 100_000
_INT64 = 2**63 - 1  # every number ends in parquet, numpy or a file offset


class KeyedError(ValueError):
    """A recipe validator's problem with the key it is about (pydantic gives a model-level
    validator's error no location)."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(problem)
        self.key = key


def shorten(text: str, limit: int = 80) -> str:
    """A user's value echoed in a message, cut so that the message stays readable."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
    "invalid_key": "keys must be strings",
    "finite_number": "expected a finite number",
}


def _discriminator_tags() -> set[str]:
    """Names pydantic puts in error locations for tagged unions (step types, output formats)."""
    from sftforge.schemas.recipe import OutputConfig
    from sftforge.schemas.training import TRAINING_FORMATS

    formats = OutputConfig.model_fields["format"].annotation.__args__  # type: ignore[union-attr]
    return set(registered_steps()) | set(TRAINING_FORMATS) | set(formats) | {"OutputConfig"}


def key_path(loc: tuple[Any, ...]) -> str:
    tags = _discriminator_tags()
    parts: list[str] = []
    for i, item in enumerate(loc):
        if isinstance(item, int) and parts:
            parts[-1] = f"{parts[-1]}[{item}]"
        elif i > 0 and isinstance(loc[i - 1], int) and item in tags:
            continue  # pydantic's discriminator tag, not a key the user wrote
        else:
            parts.append(str(item))
    return ".".join(parts)


def _tags(ctx: dict[str, Any]) -> list[str]:
    """pydantic's `expected_tags` ("'a', 'b'") as names."""
    return [t.strip().strip("'") for t in str(ctx.get("expected_tags", "")).split(",") if t.strip()]


def explain(err: dict[str, Any]) -> str:
    kind, ctx = err["type"], err.get("ctx", {})
    by_format = ctx.get("discriminator") == "'format'"
    if kind == "union_tag_invalid":
        tag = shorten(str(ctx.get("tag")))
        known = _tags(ctx) if by_format else sorted(registered_steps())
        close = difflib.get_close_matches(tag, known, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}?" if close else f"known: {', '.join(known)}"
        return f"unknown {'format' if by_format else 'step'} {tag!r} ({hint})"
    if kind == "union_tag_not_found":
        return "each output needs a `format:` key" if by_format else "each step needs a `step:` key"
    if kind == "string_type" and isinstance(err.get("input"), (bool, int, float)):
        # YAML reads yes/no/on/off as booleans, 2023 and 1.10 as numbers
        return f"expected a string, got {err['input']!r} (quote it)"
    if kind == "string_pattern_mismatch":
        return f"{shorten(str(err.get('input')))!r} does not match {ctx.get('pattern')}"
    if kind == "literal_error":
        return f"expected one of {err.get('ctx', {}).get('expected')}"
    if kind.startswith(("greater_than", "less_than")):
        return err["msg"].replace("Input should be", "expected")
    if kind == "too_short":
        return "must not be empty"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    return _MESSAGES.get(kind, err["msg"])


def parse_key(key: str) -> list[str | int]:
    """`steps[2].min_score` or `steps.2.min_score` -> ["steps", 2, "min_score"]."""
    parts: list[str | int] = []
    for piece in key.replace("[", ".").replace("]", "").split("."):
        if piece == "":
            raise ValueError(f"bad key {key!r}")
        parts.append(int(piece) if piece.isdigit() else piece)
    return parts


def key_text(parts: list[Any]) -> str:
    """["steps", 2, "min_score"] -> "steps[2].min_score", as messages name keys."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".")


class _RecipeLoader(yaml.SafeLoader):
    """PyYAML's safe loader (plain data only: `!!python/...` tags are refused), except that
    a key given twice is an error: YAML's last-one-wins would silently drop, say, a first
    `steps:` list."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *defaults`: keys written beside it override the merged ones
            key = self.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
            try:
                twice = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: the base class says so, with its line
                break
            if twice:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice", key_node.start_mark
                )
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str, where: str, key: list[Any] | None = None) -> Any:
    """Plain YAML data, never objects: a safe loader (`!!python/...` tags are refused), and
    any problem a ConfigError naming `where` (a file, or `--set KEY=VALUE` for the value
    at `key`) and the line."""
    try:
        data = yaml.load(text, Loader=_RecipeLoader)  # noqa: S506 (a SafeLoader)
    except yaml.MarkedYAMLError as exc:
        line = f" at line {exc.problem_mark.line + 1}" if exc.problem_mark else ""
        raise ConfigError(f"{where}: invalid YAML{line}: {_yaml_problem(exc)}") from None
    except yaml.reader.ReaderError as exc:  # a control character, or bytes that are not text
        line = text.count("\n", 0, exc.position) + 1
        raise ConfigError(f"{where}: invalid YAML at line {line}: {exc.reason}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: invalid YAML: {str(exc).splitlines()[0]}") from None
    except RecursionError:
        raise ConfigError(f"{where}: invalid YAML: nested too deeply") from None
    except ValueError as exc:  # Python's own limit, e.g. an integer of over 4300 digits
        raise ConfigError(f"{where}: invalid YAML: {str(exc).split(';')[0]}") from None
    check_values(data, where, key)
    return data


def _yaml_problem(exc: yaml.MarkedYAMLError) -> str:
    problem = exc.problem or exc.context or "invalid"
    if problem.startswith("could not determine a constructor for the tag"):
        # `!!python/object/apply:os.system`: PyYAML's full-loader tags, never run here
        tag = problem.split("'")[1].replace("tag:yaml.org,2002:", "!!")
        return f"tag {tag} is not allowed (a recipe is plain YAML data)"
    if problem.startswith("but ") and exc.context:  # "expected a single document … but …"
        return f"{exc.context} {problem}"
    return problem


def check_values(data: Any, where: str, prefix: list[Any] | None = None) -> None:
    """Refuse what a safe loader still lets through: aliases that expand to more than
    MAX_VALUES values (a "billion laughs" would hang validation or the config hash), an alias
    inside itself, integers no int64 holds, NaN and NUL characters. Shared values are visited
    once, so this is linear in the size of the text."""
    sizes: dict[int, tuple[int, bool]] = {}  # id -> (values once expanded, holds an alias)
    inside: set[int] = set()

    def size(value: Any, key: list[Any]) -> tuple[int, bool]:
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > _INT64:
            raise ConfigError(f"{where}: {key_text(key)}: number too large (over 2**63-1)")
        if isinstance(value, float) and value != value:
            raise ConfigError(f"{where}: {key_text(key)}: expected a number, got .nan")
        if isinstance(value, str) and "\0" in value:
            raise ConfigError(f"{where}: {key_text(key)}: contains a NUL character")
        if not isinstance(value, (dict, list)):
            return 1, False
        if id(value) in inside:
            raise ConfigError(f"{where}: {key_text(key)}: a YAML alias refers to itself")
        if id(value) in sizes:  # a second reference: an alias
            return sizes[id(value)][0], True
        inside.add(id(value))
        items = value.items() if isinstance(value, dict) else enumerate(value)
        parts = [size(v, [*key, k]) for k, v in items]
        inside.discard(id(value))
        total, aliased = 1 + sum(n for n, _ in parts), any(a for _, a in parts)
        # Only expansion is refused: a long list written out (blocked words) is fine.
        if aliased and total > MAX_VALUES:
            raise ConfigError(
                f"{where}: {key_text(key) or 'the recipe'}: YAML aliases expand to over "
                f"{MAX_VALUES:,} values"
            )
        sizes[id(value)] = (total, aliased)
        return total, aliased

    size(data, prefix or [])


def blame(path: str | Path, key: str, sets: dict[str, str] | None = None) -> str:
    """Who a problem at KEY is about: `--set A: KEY` when the value at KEY (or above it) came
    from that `--set` (`sets`: key path -> assignment, from set_keys), else `FILE: KEY`."""
    for set_key, assignment in reversed(list((sets or {}).items())):
        if key == set_key or key.startswith((set_key + ".", set_key + "[")):
            return f"--set {shorten(assignment)}: {key}"
    return f"{path}: {key}" if key else str(path)


def config_error(
    path: str | Path, key: str, problem: str, sets: dict[str, str] | None = None
) -> ConfigError:
    """`FILE: KEY: problem`, or as `blame` says; a `--set` that went inside KEY's value is
    named beside KEY (the problem may be its doing, or the file's)."""
    who = blame(path, key, sets)
    if not who.startswith("--set "):
        for set_key, assignment in reversed(list((sets or {}).items())):
            if key and set_key.startswith((key + ".", key + "[")):
                return ConfigError(f"{who} (after --set {shorten(assignment)}): {problem}")
    return ConfigError(f"{who}: {problem}")


def set_keys(sets: list[str] | tuple[str, ...] | None, recipe: Any = None) -> dict[str, str]:
    """Key path -> assignment of each `--set` (the later of two on one key), with the names
    of list items (`steps.dedup_exact.x`) resolved to indices in `recipe` (a Recipe or its
    YAML data) where given, since a problem names the item by index."""
    from sftforge.schemas.overrides import resolved_set_keys  # it imports this module

    return resolved_set_keys(sets, recipe)
