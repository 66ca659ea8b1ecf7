"""Declarative mapping of a source row to an instruction record.

A template is text with `{path|filter}` fields: `{question}`, `{answers.answer_text}`,
`{answers[0].answer_text}`, `{options|lines}`. A mapping value may be a list of templates:
the first that renders to a non-empty string wins (CoNaLa: rewritten_intent, else intent).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from sftforge.schemas.recipe import InstructionMapping, Template
from sftforge.tasks.base.outcome import Rejected

_FIELD = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")
_PATH_PART = re.compile(r"\.?([^.\[\]]+)|\[(-?\d+)\]")


class MappingError(Exception):
    def __init__(self, reason: str, detail: str, absent_key: bool = False) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.absent_key = absent_key  # a key the row's object does not have (not a bad index)


@lru_cache(maxsize=1024)
def _parse_path(path: str) -> tuple[tuple[str | None, int | None], ...]:
    parts = []
    pos = 0
    while pos < len(path):
        match = _PATH_PART.match(path, pos)
        if match is None or match.end() == pos:
            raise MappingError("bad_template", f"cannot read field path {path!r}")
        pos = match.end()
        index = match.group(2)
        parts.append((match.group(1), int(index) if index is not None else None))
    return tuple(parts)


def _lookup(row: Any, path: str) -> Any:
    value = row
    for key, index in _parse_path(path):
        if key is not None:
            if not isinstance(value, dict) or key not in value:
                raise MappingError("missing_field", f"no field {path!r}", absent_key=True)
            value = value[key]
        else:
            assert index is not None
            if not isinstance(value, list) or not -len(value) <= index < len(value):
                raise MappingError("missing_field", f"no element {path!r}")
            value = value[index]
    return value


def _text(value: Any, path: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        raise MappingError("wrong_type", f"{path!r} is {type(value).__name__}, expected text")
    if isinstance(value, int | float):
        return str(value)
    raise MappingError("wrong_type", f"{path!r} is a {type(value).__name__}, expected text")


def _apply(value: Any, name: str, path: str) -> Any:
    if name == "lines":
        if not isinstance(value, list):
            raise MappingError("wrong_type", f"{path!r} is not a list (|lines)")
        return "\n".join(_text(v, path) for v in value)
    if name == "first":
        if not isinstance(value, list) or not value:
            raise MappingError("missing_field", f"{path!r} has no first element")
        return value[0]
    if name == "nospace":
        return "".join(_text(value, path).split())
    if name == "strip":
        return _text(value, path).strip()
    raise MappingError("bad_template", f"unknown filter |{name}")


Segment = str | tuple[str, tuple[str, ...]]  # literal text, or (path, filters)


@lru_cache(maxsize=1024)
def _compile(template: str) -> tuple[Segment, ...]:
    """Templates are parsed once: a recipe has a handful, applied to millions of rows."""
    segments: list[Segment] = []
    pos = 0
    for match in _FIELD.finditer(template):
        segments.append(template[pos : match.start()])
        if match.group(0) in ("{{", "}}"):
            segments.append(match.group(0)[0])
        else:
            path, *filters = [p.strip() for p in match.group(1).split("|")]
            segments.append((path, tuple(filters)))
        pos = match.end()
    segments.append(template[pos:])
    return tuple(s for s in segments if s != "")


def render(
    template: str, row: dict[str, Any], strict: bool = False, absent: list[str] | None = None
) -> str:
    """Fill a template. `strict`: a null, empty or absent field fails it (for choices).

    With an `absent` list (and not strict), a key the row lacks is empty like a null cell —
    rows of one JSON file need not all have every key, as a table's columns would — and its
    path is added to the list, so that an empty result is reported as the missing field."""
    out: list[str] = []
    for segment in _compile(template):
        if isinstance(segment, str):
            out.append(segment)
            continue
        path, filters = segment
        try:
            value = _lookup(row, path)
        except MappingError as exc:
            if strict or absent is None or not exc.absent_key:
                raise
            absent.append(path)
            continue
        for name in filters:
            value = _apply(value, name, path)
        if value is None or (strict and value == ""):
            if strict:
                raise MappingError("missing_field", f"{path!r} is empty")
            continue  # a null cell (CSV, a column another file had) is empty, not absent
        out.append(_text(value, path))
    return "".join(out)


def render_choice(template: Template, row: dict[str, Any], absent: list[str] | None = None) -> str:
    """A list of templates: the first whose fields are all present and non-empty."""
    if isinstance(template, str):
        return render(template, row, absent=absent)
    for alternative in template:
        try:
            text = render(alternative, row, strict=True)
        except MappingError as exc:
            if exc.reason == "bad_template":
                raise
            continue
        if text.strip():
            return text
    # None fits: the last one, leniently, so the error (or emptiness) is about it.
    return render(template[-1], row, absent=absent) if template else ""


def explode(row: dict[str, Any], field: str | None) -> Iterator[tuple[str, dict[str, Any]]]:
    """(suffix, row) per element of `field` (the element replaces the list), or the row."""
    if field is None:
        yield "", row
        return
    items = row.get(field)
    if not isinstance(items, list):
        raise MappingError("wrong_type", f"{field!r} is not a list (explode)")
    for j, item in enumerate(items):
        yield f".{j}", {**row, field: item}


def to_instruction(
    row: dict[str, Any],
    mapping: InstructionMapping,
    source: str,
    dataset: str,
    fallback_id: str,
    meta_fields: list[str],
    id_suffix: str = "",
) -> dict[str, Any] | Rejected:
    absent_instruction: list[str] = []
    absent_output: list[str] = []
    try:
        instruction = render_choice(mapping.instruction, row, absent_instruction)
        input_text = render_choice(mapping.input, row, [])
        output = render_choice(mapping.output, row, absent_output)
        record_id = render(mapping.id, row, absent=[]) + id_suffix if mapping.id else fallback_id
    except MappingError as exc:
        return Rejected(exc.reason, exc.detail)
    if not instruction.strip():
        return _empty("instruction", absent_instruction)
    if mapping.output and not output.strip():
        return _empty("output", absent_output)
    meta = {name: row[name] for name in meta_fields if name in row}
    return {
        "id": record_id,
        "source": source,
        "dataset": dataset,
        "instruction": instruction,
        "input": input_text,
        "output": output,
        "meta": meta,
    }


def _empty(field: str, absent: list[str]) -> Rejected:
    if absent:
        return Rejected("missing_field", f"no field {absent[0]!r} (the {field} renders empty)")
    return Rejected(f"empty_{field}", f"the {field} renders empty")
