"""Converters that need code rather than a mapping, selected by name from a recipe."""

from __future__ import annotations

import re
from typing import Any

from sftforge.tasks.base.outcome import Rejected

_GUANACO_TURN = re.compile(r"### (Human|Assistant):")
_GUANACO_ROLES = {"Human": "user", "Assistant": "assistant"}


def guanaco_text(row: dict[str, Any], source: str, fallback_id: str) -> dict[str, Any] | Rejected:
    """timdettmers/openassistant-guanaco's `text` ("### Human: …### Assistant: …") -> messages."""
    text = row.get("text")
    if not isinstance(text, str):
        return Rejected("missing_field" if text is None else "wrong_type", "`text` is not text")
    pieces = _GUANACO_TURN.split(text)
    if pieces[0].strip():
        return Rejected("wrong_format", "text does not start with '### Human:'")
    messages = [
        {"role": _GUANACO_ROLES[role], "content": content.strip()}
        for role, content in zip(pieces[1::2], pieces[2::2], strict=True)
    ]
    if not messages:
        return Rejected("wrong_format", "no '### Human:' / '### Assistant:' turns")
    meta = {k: v for k, v in row.items() if k != "text"}
    return {"id": fallback_id, "source": source, "model": None, "messages": messages, "meta": meta}


def to_guanaco_text(messages: list[dict[str, Any]]) -> str:
    """Back to Guanaco's training text; system messages have no place in it and are dropped."""
    names = {"user": "Human", "assistant": "Assistant"}
    return "".join(
        f"### {names[m['role']]}: {m['content']}" for m in messages if m["role"] in names
    )


# deepmind/code_contests language codes, most wanted first (SelFee trained on Python).
_PYTHON = (3, 1)


def code_contests(
    row: dict[str, Any], source: str, dataset: str, fallback_id: str
) -> dict[str, Any] | Rejected:
    """description -> instruction; the first Python 3 (else Python 2) solution -> output."""
    description = row.get("description")
    solutions = row.get("solutions")
    if not isinstance(description, str) or not description.strip():
        return Rejected("empty_instruction", "no description")
    if not isinstance(solutions, dict):
        return Rejected("missing_field", "no `solutions`")
    languages, codes = solutions.get("language") or [], solutions.get("solution") or []
    for wanted in _PYTHON:
        for language, code in zip(languages, codes, strict=False):
            if language == wanted and isinstance(code, str) and code.strip():
                return {
                    "id": str(row.get("name") or fallback_id),
                    "source": source,
                    "dataset": dataset,
                    "instruction": description.strip(),
                    "input": "",
                    "output": code.strip(),
                    "meta": {"language": "python3" if wanted == 3 else "python2"},
                }
    return Rejected("no_python_solution", f"{len(codes)} solutions, none in Python")


def first_pair(record: dict[str, Any], dataset: str) -> dict[str, Any] | Rejected:
    """A cleaned conversation -> its first user question and the answer to it (SelFee)."""
    turns = [m for m in record["messages"] if m["role"] != "system"]
    if len(turns) < 2 or turns[0]["role"] != "user" or turns[1]["role"] != "assistant":
        return Rejected("wrong_format", "no leading user/assistant pair")
    return {
        "id": record["id"],
        "source": record["source"],
        "dataset": dataset,
        "instruction": turns[0]["content"],
        "input": "",
        "output": turns[1]["content"],
        "meta": record.get("meta") or {},
    }
