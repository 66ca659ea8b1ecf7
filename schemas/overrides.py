"""`--set KEY=VALUE`: keys that name list items (`steps.filter_language.min_score`,
`outputs.alpaca.shards.count`, `sources.sharegpt.path`) as well as index them, and the
"did you mean …" of an unknown name or key.

A list item is addressed by the name a user sees elsewhere: a step by its stage name (its
`name`, else its step type — the folder OUT/<stage> and the manifest entry), an output by
its `name`, else its format (the manifest's key), a source by its name. A name that is no
stage but the type of exactly one step (or the format of exactly one output) reaches that
item too, so `steps.filter_language` works when that step was given another `name`.
"""

from __future__ import annotations

import contextlib
import difflib
import types
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

from sftforge.schemas.config_errors import key_text, parse_key
from sftforge.schemas.steps import StepBase, registered_steps

# What the items of each named list are called in messages, and the key holding their type.
_NOUNS = {"steps": "step", "preprocess": "step", "outputs": "output", "sources": "source"}
_TYPE_KEY = {"steps": "step", "preprocess": "step", "outputs": "format"}


def named_list(prefix: list[str | int]) -> str | None:
    """`steps`, `outputs`, `sources` or `preprocess` when the key path `prefix` leads to one
    of those lists (only where the recipe has them), else None."""
    if len(prefix) == 1 and prefix[0] in ("steps", "outputs", "sources"):
        return str(prefix[0])
    if len(prefix) == 3 and prefix[0] == "sources" and isinstance(prefix[1], int):
        return "preprocess" if prefix[2] == "preprocess" else None
    return None


def item_name(items: str, item: Any) -> str | None:
    """The name an item of list `items` is addressed by (None: it has none yet)."""
    if not isinstance(item, dict):
        return None
    name = item.get("name")
    if items in _TYPE_KEY and name is None:
        name = item.get(_TYPE_KEY[items])
    return name if isinstance(name, str) else None


def did_you_mean(word: str, choices: list[str]) -> str:
    """` (did you mean X?)`, or "" when nothing is close to `word`."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if not close:  # a difference of case only: difflib compares case-sensitively
        close = [c for c in choices if c.casefold() == word.casefold()][:1]
    return f" (did you mean {close[0]}?)" if close else ""


def find_item(items: str, node: list[Any], name: str) -> int:
    """The index of the item of list `items` (see named_list) that `name` addresses; a
    ValueError saying what there is (and what `name` may have meant) when none does."""
    names = [item_name(items, item) for item in node]
    exact = [i for i, n in enumerate(names) if n == name]
    if not exact:  # stage names are unique as a case-insensitive file system sees them
        exact = [
            i for i, n in enumerate(names) if n is not None and n.casefold() == name.casefold()
        ]
    if len(exact) == 1:
        return exact[0]
    noun = _NOUNS[items]
    if len(exact) > 1:  # outputs may repeat a name; a valid recipe's stages cannot
        raise ValueError(f"{len(exact)} {items} are named {name!r}; give an index instead")
    type_key = _TYPE_KEY.get(items)
    if type_key is not None:
        typed = [
            i
            for i, item in enumerate(node)
            if isinstance(item, dict) and item.get(type_key) == name
        ]
        if len(typed) == 1:
            return typed[0]
        if typed:
            named = ", ".join(str(names[i]) for i in typed)
            raise ValueError(f"{len(typed)} {items} are {name} {noun}s ({named}): name one")
    known = [n for n in names if n is not None]
    if not known:
        return _absent(items, name)
    hint = did_you_mean(name, known) or f" ({items}: {', '.join(known)})"
    raise ValueError(f"no {noun} named {name!r}{hint}")


def _absent(items: str, name: str) -> int:
    raise ValueError(f"no {_NOUNS[items]} named {name!r} (there are no {items})")


def resolve_key(data: Any, path: list[str | int]) -> list[str | int]:
    """`path` with the names of list items replaced by their indices in `data` (the recipe as
    YAML data); a ValueError as find_item gives it. Keys `data` does not have yet are kept."""
    resolved: list[str | int] = []
    node = data
    for part in path:
        items = named_list(resolved)
        if isinstance(part, str) and isinstance(node, list) and items is not None:
            part = find_item(items, node, part)
        elif isinstance(part, str) and node is None and items is not None:
            part = _absent(items, part)
        resolved.append(part)
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            node = None
    return resolved


def resolved_set_keys(sets: list[str] | tuple[str, ...] | None, data: Any) -> dict[str, str]:
    """Key path (with indices, as errors name keys) -> assignment of each `--set`, names
    resolved against `data` (a Recipe or its YAML data); the later of two on one key."""
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="python")
    found: dict[str, str] = {}
    for assignment in sets or []:
        try:
            path = parse_key(assignment.split("=", 1)[0].strip())
        except ValueError:
            continue  # apply_override reports it
        # A name that a later --set changed is not found: the key stays as written.
        with contextlib.suppress(ValueError):
            path = resolve_key(data, path)
        found[key_text(path)] = assignment
    return found


# --- "did you mean" for an unknown key: the options of the model at an error's location ---


def _unwrap(annotation: Any) -> Any:
    """`list[X]` from `Annotated[list[X], …]` or `list[X] | None`."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin is Union or origin is types.UnionType:
            args = [a for a in get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation may hold (Optional, unions, Annotated unwrapped;
    a step is any registered step class)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _models(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return [m for arg in get_args(annotation) for m in _models(arg)]
    if isinstance(annotation, type) and issubclass(annotation, StepBase):
        return list(registered_steps().values()) if annotation is StepBase else [annotation]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []


def _tag_of(model: type[BaseModel]) -> set[str]:
    """The discriminator values (`step:` or `format:`) a model is chosen by."""
    for key in ("step", "format"):
        field = model.model_fields.get(key)
        if field is not None:
            return {a for a in get_args(field.annotation) if isinstance(a, str)}
    return set()


def known_keys(root: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys allowed beside the last item of a pydantic error location (pydantic puts a
    tagged union's tag in it: ("steps", 2, "filter_language", "min_scor"))."""
    annotation: Any = root
    for item in loc[:-1]:
        if isinstance(item, int):
            annotation = _unwrap(annotation)
            args = get_args(annotation)
            annotation = args[-1] if get_origin(annotation) in (list, dict) and args else None
            continue
        models = _models(annotation)
        field_of = [m for m in models if item in m.model_fields]
        tagged = [m for m in models if item in _tag_of(m) or m.__name__ == item]
        if len(models) > 1 and len(tagged) == 1:
            annotation = tagged[0]  # the union's tag: the member it chose
        elif len(field_of) == 1:
            annotation = field_of[0].model_fields[item].annotation
        else:
            return []
    models = _models(annotation)
    return list(models[0].model_fields) if len(models) == 1 else []


def unknown_key_hint(root: type[BaseModel], loc: tuple[Any, ...]) -> str:
    """` (did you mean X?)` for the unknown key at `loc`, or ""."""
    if not loc or not isinstance(loc[-1], str):
        return ""
    return did_you_mean(loc[-1], known_keys(root, loc))
