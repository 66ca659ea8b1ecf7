"""parse_line decodes with orjson where it can: the value, or the reject and its detail, must be
exactly what the standard library's decoder gives for every line."""

from __future__ import annotations

import json

import pytest

from sftforge.tasks.readers.json_text import DECODER, parse_line, parse_problem

LINES = [
    b'{"a": 1, "b": [1.5, -0.0, null, true], "c": "\\u00e9\\n\\t"}',
    b'{"id": 123456789012345678901234567890}',  # beyond 64 bits: orjson would give a float
    b'{"id": 9223372036854775807, "n": -9223372036854775808}',
    b'{"a": 1e400}', b'{"a": NaN}', b'{"a": Infinity}', b'{"a": 1e-400}',
    b'{"a": "\\ud800"}', b'{"a": "\\ud83d\\ude00"}', b'{"a": "\xed\xa0\x80"}', b'{"a": "\xff"}',
    b'\xef\xbb\xbf{"a": 1}', b'{"a": 1, "a": 2}', b'{"a": "x\x01y"}', b'{"a": 1} trailing',
    b"[" * 2000 + b"]" * 2000, b'{"a": 01}', b'"just a string"', b"{'a': 1}", b'{"a":1}\r\n',
]


def stdlib(line: bytes):
    try:
        return DECODER.decode(line.decode("utf-8").removeprefix("\ufeff")), None
    except (ValueError, RecursionError) as exc:
        return None, parse_problem(exc)


@pytest.mark.parametrize("line", LINES)
def test_parse_line_matches_the_standard_library(line):
    value, problem = parse_line(line)
    expected_value, expected_problem = stdlib(line)
    if expected_problem is not None:
        assert (value, problem) == (None, expected_problem)
    elif problem is None:
        assert json.dumps(value) == json.dumps(expected_value)
        assert type(value) is type(expected_value)
    else:  # stdlib decoded it, the checks after decoding reject it (surrogates, depth)
        assert value is None and problem.reason


def test_big_integers_stay_integers():
    value, _ = parse_line(b'{"id": 123456789012345678901234567890}')
    assert value == {"id": 123456789012345678901234567890}
