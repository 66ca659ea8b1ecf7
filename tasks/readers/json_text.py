"""JSON text to values, and the checks that make a parsed value safe to store.

`json` accepts things the rest of the pipeline cannot hold: lone UTF-16 surrogates (from
`"\\ud800"` escapes, or from raw bytes `ED A0 80`, which `json.loads(bytes)` decodes with
`surrogatepass`) cannot be written as UTF-8; values nested hundreds deep break every
recursive encoder after the reader; NaN and Infinity are not JSON for any tool downstream.
Each becomes a `Problem` (a reject reason and detail) here, for one record, so one bad
record never stops a run.
"""

from __future__ import annotations

import json
import re
from typing import Any, NamedTuple

import orjson

MAX_DEPTH = 100  # far above any real record (OASST trees: ~20), far below recursion limits
MAX_KEPT_CHARS = 8_000_000  # of a reject's raw text; the detail says how much was cut


class Problem(NamedTuple):
    reason: str
    detail: str


# A cheap hint, so that the walk over a value runs only when it might find something:
# escapes \uD800–\uDFFF (paired ones too, which decode fine). Lone surrogates left by
# `surrogateescape` decoding of invalid bytes are flagged per chunk by the caller instead.
_SURROGATE_BYTES = re.compile(rb"\\[uU][dD][89a-fA-F]")
_SURROGATE_ESCAPE = re.compile(r"\\[uU][dD][89a-fA-F]")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


DECODER = json.JSONDecoder(parse_constant=_reject_constant)
# orjson decodes a line several times faster, to the same value wherever it accepts the line,
# except integers beyond 64 bits (it returns floats): lines with 19 digits in a row skip it
# (found by mapping digits to "9" and the rest to " ": a regex scan was slower than json).
# Whatever it refuses (NaN, lone surrogates, invalid UTF-8, a BOM, depth over 1024) goes to
# `json`, whose error message the reject keeps.
_DIGITS_AS_9 = bytes(b"9"[0] if 48 <= i <= 57 else 32 for i in range(256))
_LONG_DIGITS = b"9" * 19


def parse_problem(exc: BaseException, with_position: bool = True) -> Problem:
    """The reject for an exception raised by `json` on one record's text (`with_position`:
    json's line/column, which only make sense when the text is the record's own)."""
    if isinstance(exc, UnicodeDecodeError):
        return Problem("invalid_unicode", f"not UTF-8: {exc}")
    if isinstance(exc, RecursionError):
        return Problem("too_deep", "nested too deep to parse")
    if "integer string conversion" in str(exc):
        return Problem("invalid_json", "an integer of more than 4300 digits")
    if isinstance(exc, json.JSONDecodeError) and not with_position:
        return Problem("invalid_json", f"not JSON: {exc.msg}")
    return Problem("invalid_json", f"not JSON: {exc}")


def has_surrogate(text: str) -> bool:
    """Text that cannot be written as UTF-8: a lone surrogate (escaped, or kept by
    `surrogateescape` for an invalid byte)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def value_problem(value: Any, *, surrogates: bool, depth: bool) -> Problem | None:
    """Walk `value` (iteratively: it may be deep) for lone surrogates and excess depth."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, level = stack.pop()
        if level > MAX_DEPTH:
            return Problem("too_deep", f"nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, str):
            if surrogates and has_surrogate(node):
                why = "invalid UTF-8 bytes or a lone UTF-16 surrogate (not encodable text)"
                return Problem("invalid_unicode", why)
        elif isinstance(node, dict):
            for key, item in node.items():
                if surrogates and has_surrogate(key):
                    return Problem("invalid_unicode", "a lone UTF-16 surrogate in a key")
                if depth or surrogates:
                    stack.append((item, level + 1))
        elif isinstance(node, list):
            stack.extend((item, level + 1) for item in node)
    return None


def _deep_hint(count_open: int) -> bool:
    return count_open > MAX_DEPTH


def check_bytes(value: Any, line: bytes) -> Problem | None:
    surrogates = b"\\u" in line and _SURROGATE_BYTES.search(line) is not None
    depth = _deep_hint(line.count(b"{") + line.count(b"["))
    if not (surrogates or depth):
        return None
    return value_problem(value, surrogates=surrogates, depth=depth)


def check_text(value: Any, text: str, start: int, end: int, raw_surrogates: bool) -> Problem | None:
    """`raw_surrogates`: the text around this record holds lone surrogates of its own."""
    surrogates = raw_surrogates or (
        text.find("\\u", start, end) != -1
        and _SURROGATE_ESCAPE.search(text, start, end) is not None
    )
    depth = _deep_hint(text.count("{", start, end) + text.count("[", start, end))
    if not (surrogates or depth):
        return None
    return value_problem(value, surrogates=surrogates, depth=depth)


_NOT_DECODED = object()


def parse_line(line: bytes) -> tuple[Any, Problem | None]:
    """One JSON Lines line -> (value, None) or (None, the reason it is not a record)."""
    try:
        long_digits = _LONG_DIGITS in line.translate(_DIGITS_AS_9)
        value = _NOT_DECODED if long_digits else orjson.loads(line)
    except orjson.JSONDecodeError:
        value = _NOT_DECODED
    if value is _NOT_DECODED:
        try:
            # Strict: invalid bytes and encoded surrogates (ED A0 80) are UnicodeDecodeError.
            value = DECODER.decode(line.decode("utf-8").removeprefix("\ufeff"))
        except (ValueError, RecursionError) as exc:
            return None, parse_problem(exc)
    problem = check_bytes(value, line)
    return (None, problem) if problem else (value, None)


def kept_text(raw: bytes | str) -> tuple[str, str]:
    """A reject's raw text, storable as UTF-8 (invalid bytes and lone surrogates shown as
    `\\xNN` / `\\udNNN` escapes) and bounded; the second value notes a cut, if any."""
    if isinstance(raw, str):  # text decoded with `surrogateescape`: back to its bytes
        raw = raw.encode("utf-8", errors="surrogateescape")
    text = raw.decode("utf-8", errors="backslashreplace")
    if len(text) <= MAX_KEPT_CHARS:
        return text, ""
    cut = len(text) - MAX_KEPT_CHARS
    return text[:MAX_KEPT_CHARS], f" (raw text cut to {MAX_KEPT_CHARS:,} characters: {cut:,} more)"
