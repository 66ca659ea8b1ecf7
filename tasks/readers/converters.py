"""Converters that need code rather than a mapping, selected by name from a recipe."""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from sftforge.tasks.base.outcome import Rejected

_GUANACO_TURN = re.compile(r"### (Human|Assistant):")
_GUANACO_ROLES = {"Human": "user", "Assistant": "assistant"}
_GUANACO_NAMES = {"user": "Human", "assistant": "Assistant"}


class GuanacoTurn(NamedTuple):
    """One turn of a Guanaco text: `head` is its marker ("### Human:"), `body` everything up to
    the next marker (" Hi there \\n"), so head + body over all turns is the text itself."""

    role: str
    head: str
    body: str


def _split_turns(text: str) -> tuple[str, list[GuanacoTurn]]:
    """(what precedes the first marker, the turns), losing no character."""
    marks = list(_GUANACO_TURN.finditer(text))
    if not marks:
        return text, []
    ends = [m.start() for m in marks[1:]] + [len(text)]
    turns = [
        GuanacoTurn(_GUANACO_ROLES[m.group(1)], m.group(0), text[m.end() : end])
        for m, end in zip(marks, ends, strict=True)
    ]
    return text[: marks[0].start()], turns


def guanaco_text(row: dict[str, Any], source: str, fallback_id: str) -> dict[str, Any] | Rejected:
    """timdettmers/openassistant-guanaco's `text` ("### Human: …### Assistant: …") -> messages.

    Messages hold the stripped content (what ShareGPT exports, dedup and the structure check
    should see). QLoRA trains on the text as written, though, spaces and newlines around the
    turns included: when those differ from "### Role: content", `meta.text` keeps the row's
    text, and to_guanaco_text / the guanaco template give it back byte for byte."""
    text = row.get("text")
    if not isinstance(text, str):
        return Rejected("missing_field" if text is None else "wrong_type", "`text` is not text")
    lead, turns = _split_turns(text)
    if lead.strip():
        return Rejected("wrong_format", "text does not start with '### Human:'")
    if not turns:
        return Rejected("wrong_format", "no '### Human:' / '### Assistant:' turns")
    messages = [{"role": t.role, "content": t.body.strip()} for t in turns]
    meta = {k: v for k, v in row.items() if k != "text"}
    if _canonical_text(messages) != text:
        meta["text"] = text
    return {"id": fallback_id, "source": source, "model": None, "messages": messages, "meta": meta}


def _canonical_text(messages: list[dict[str, Any]]) -> str:
    return "".join(head + body for _, head, body in _canonical_turns(messages))


def _canonical_turns(messages: list[dict[str, Any]]) -> list[GuanacoTurn]:
    return [
        GuanacoTurn(m["role"], f"### {_GUANACO_NAMES[m['role']]}:", f" {m['content']}")
        for m in messages
        if m["role"] in _GUANACO_NAMES
    ]


def guanaco_turns(
    messages: list[dict[str, Any]], meta: dict[str, Any] | None = None
) -> list[GuanacoTurn]:
    """The turns of Guanaco's training text for these messages (system messages have no place
    in it and are dropped): as written in `meta.text` while the messages are still a run of the
    turns parsed from it (a step may have dropped a leading or trailing one), else canonical."""
    turns = _canonical_turns(messages)
    text = meta.get("text") if isinstance(meta, dict) else None
    if not isinstance(text, str) or not turns:
        return turns
    lead, written = _split_turns(text)
    wanted = [(t.role, t.body[1:]) for t in turns]  # the contents, exactly
    parsed = [(t.role, t.body.strip()) for t in written]
    for start in range(len(parsed) - len(wanted) + 1):
        if parsed[start : start + len(wanted)] == wanted:
            exact = written[start : start + len(wanted)]
            if start == 0:  # whitespace before the first marker is the text's too
                exact[0] = exact[0]._replace(head=lead + exact[0].head)
            return exact
    return turns


def to_guanaco_text(messages: list[dict[str, Any]], meta: dict[str, Any] | None = None) -> str:
    """Back to Guanaco's training text (byte for byte when `meta.text` holds the original)."""
    return "".join(head + body for _, head, body in guanaco_turns(messages, meta))


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
