"""`sftforge steps`: every step and output format, one line each, from the registries (the
step registry, schemas/steps.py, and the output registry, tasks/outputs/registry.py). The
same text ends `sftforge run --help` and `validate --help`."""

from __future__ import annotations

import os
import re
import shutil
import sys
import textwrap
from typing import Any

from sftforge.schemas.steps import ANY_KIND

_NAME_WIDTH = 22
_KINDS_WIDTH = 14


def summary(doc: str | None) -> str:
    """A docstring's first sentence, on one line (a docstring may wrap its first sentence)."""
    paragraph = " ".join((doc or "").strip().split("\n\n")[0].split())
    # a sentence ends at ". " before a capital, but not in "e.g. FastChat"
    return re.split(r"(?<=\.)(?<!e\.g\.)(?<!i\.e\.)\s+(?=[A-Z])", paragraph, maxsplit=1)[0]


def _kinds(kinds: Any) -> str:
    """The record kinds a step or format takes: `any`, or `conversation`, `instruction` (an
    augmented record is an instruction record with its revisions)."""
    kinds = set(kinds)
    if kinds >= set(ANY_KIND):
        return "any"
    return ", ".join(k for k in ("conversation", "instruction") if k in kinds) or ", ".join(kinds)


def step_rows() -> list[tuple[str, str, str]]:
    """(step name, record kinds, one-line description) of every registered step, by name."""
    from sftforge.schemas.steps import registered_steps

    return [
        (name, _kinds(cls.kinds), summary(cls.__doc__))
        for name, cls in sorted(registered_steps().items())
    ]


def output_rows() -> list[tuple[str, str, str]]:
    """(format, record kinds, one-line description) of every output format, in the
    registry's order (sftforge's own formats, then training files)."""
    from sftforge.tasks.outputs.registry import FORMATS

    rows = []
    for name, fmt in FORMATS.items():
        try:
            kinds = _kinds(fmt.kinds(None))
        except (AttributeError, KeyError, TypeError):  # it depends on the output's options
            kinds = "by template"
        rows.append((name, kinds, fmt.summary))
    return rows


def _table(rows: list[tuple[str, str, str]], width: int) -> list[str]:
    indent = 2 + _NAME_WIDTH + _KINDS_WIDTH
    lines = []
    for name, kinds, text in rows:
        head = f"  {name:<{_NAME_WIDTH - 1}} {kinds:<{_KINDS_WIDTH - 1}} "
        if len(head) > indent:  # a long plugin step name: the description on its own line
            lines.append(head.rstrip())
            head = " " * indent
        if width <= 0:
            lines.append(head + (text or "-"))
            continue
        lines.extend(
            textwrap.wrap(
                text or "-",
                width=max(width, indent + 20),
                initial_indent=head,
                subsequent_indent=" " * indent,
            )
        )
    return lines


def steps_text(width: int = 80) -> str:
    """Steps and output formats as a table that fits `width` columns (0: one line each,
    unwrapped, for grep)."""
    header = f"  {'NAME':<{_NAME_WIDTH - 1}} {'TAKES':<{_KINDS_WIDTH - 1}} DESCRIPTION"
    return "\n".join(
        [
            "steps (a recipe's `steps:` list, `- step: NAME`):",
            header,
            *_table(step_rows(), width),
            "",
            "output formats (a recipe's `outputs:` list, `- format: NAME`):",
            header,
            *_table(output_rows(), width),
        ]
    )


def print_steps() -> None:
    # Wrapped to a terminal; into a pipe, one line per step or format (`| grep dedup`).
    width = shutil.get_terminal_size().columns - 1 if sys.stdout.isatty() else 0
    try:
        print(steps_text(width), flush=True)
    except BrokenPipeError:  # `sftforge steps | head`: the reader has all it wanted
        # Python would report the pipe again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
