"""How `sftforge show` draws one record or reject with rich: turns under their roles with the
Markdown rendered, an instruction's fields, a reject's reason, detail and raw text.

Text comes from the data, never from us: it is never read as rich markup, control characters
(an ESC would drive the terminal) and bidirectional overrides are shown as escapes, and text
with HTML in it is shown as it is (rich's Markdown drops HTML, so a raw ShareGPT answer, all
HTML, would show as nothing and a question about `<div>` would lose its tag).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from typing import Any

from markdown_it import MarkdownIt  # rich's own Markdown parser (a dependency of rich)
from rich.console import Group, RenderableType
from rich.markdown import Markdown
from rich.panel import Panel
from rich.rule import Rule
from rich.text import Text

# rich's Markdown parser (commonmark, strikethrough, tables), with a newline a line break.
_PARSER = MarkdownIt("commonmark", {"breaks": True}).enable("strikethrough").enable("table")
_HTML = {"html_block", "html_inline"}
_MARKDOWN = {
    "fence",
    "code_block",
    "heading_open",
    "bullet_list_open",
    "ordered_list_open",
    "table_open",
    "blockquote_open",
    "strong_open",
    "code_inline",
    "link_open",
}
LISTED_TURNS = 6  # messages of a conversation shown when listing (a text limit is given)
ROLE_STYLE = {"system": "magenta", "user": "cyan", "assistant": "green"}
# Characters that would act on the terminal or reorder the text around them.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def visible(text: str) -> str:
    """`text` with what would act on the terminal written as escapes (`\\x1b`, `\\u202e`)."""

    def escape(match: re.Match[str]) -> str:
        code = ord(match.group())
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return _UNSAFE.sub(escape, text)


def clip(text: str, limit: int | None) -> tuple[str, str | None]:
    """The first `limit` characters (None: all), and a note saying how much was left out."""
    if limit is None or len(text) <= limit:
        return text, None
    return text[:limit], f"… {len(text) - limit:,} more characters (--id ID shows them all)"


def _tokens(items: list[Any]) -> Iterator[Any]:
    for token in items:
        yield token
        yield from _tokens(token.children or [])


def body(text: str | None, limit: int | None) -> RenderableType:
    """A message or field: Markdown rendered where it has Markdown's structure (a code fence,
    a list, a heading, a table, bold, inline code, a link), a newline kept as a line break as
    chat pages show it; otherwise, or when it holds HTML, the text as written (plain prose
    and bare code keep their spacing, and `a*b*c` its stars)."""
    shown, note = clip(visible(text or ""), limit)
    parsed = _PARSER.parse(shown)
    types = {token.type for token in _tokens(parsed)}
    part: RenderableType = Text(shown)
    if not types & _HTML and types & _MARKDOWN:
        markdown = Markdown(shown)
        markdown.parsed = parsed  # rich's own parse, but with `breaks`
        part = markdown
    if not shown.strip():
        part = Text("(empty)", style="dim italic")
    return Group(part, Text(note, style="dim")) if note else part


def _panel(title: str, text: str | None, limit: int | None, style: str = "blue") -> Panel:
    title_text = Text(visible(title), style=f"bold {style}")
    return Panel(body(text, limit), title=title_text, title_align="left", border_style=style)


def _meta(record: dict[str, Any]) -> list[RenderableType]:
    meta = record.get("meta")
    if isinstance(meta, str):  # JSON text on disk
        with contextlib.suppress(json.JSONDecodeError):
            meta = json.loads(meta) if meta else {}
    if not meta or meta == {}:
        return []
    text, cut = clip(visible(json.dumps(meta, ensure_ascii=False)), 300)
    return [Text("meta " + text + ("…" if cut else ""), style="dim")]


def _heading(*parts: Any) -> Rule:
    title = " · ".join(visible(str(p)) for p in parts if p not in (None, ""))
    return Rule(Text(title, style="bold"), align="left")


def turns(record: dict[str, Any], limit: int | None) -> list[RenderableType]:
    """A conversation's messages, or an instruction's fields (and an augmented record's
    answer → feedback → revision chain), without a heading; `limit` (characters of each
    text, None: all) also shows only the first LISTED_TURNS messages."""
    if isinstance(record.get("messages"), list):
        parts: list[RenderableType] = []
        messages = record["messages"]
        shown = messages if limit is None else messages[:LISTED_TURNS]
        for message in shown:
            role = str(message.get("role", "?")) if isinstance(message, dict) else "?"
            content = message.get("content") if isinstance(message, dict) else str(message)
            parts.append(_panel(role, content, limit, ROLE_STYLE.get(role, "white")))
        if len(shown) < len(messages):
            more = len(messages) - len(shown)
            parts.append(Text(f"… {more} more messages (--id ID shows them all)", style="dim"))
        return parts
    parts = [_panel("instruction", record.get("instruction"), limit, "cyan")]
    if record.get("input"):
        parts.append(_panel("input", record["input"], limit, "cyan"))
    parts.append(_panel("output", record.get("output"), limit, "green"))
    for i, step in enumerate(record.get("outputs") or []):
        parts.append(
            _panel("answer" if i == 0 else f"revision {i}", step["output"], limit, "green")
        )
        parts.append(_panel(f"feedback {i + 1}", step["feedback"], limit, "yellow"))
    if record.get("status") == "failed":
        parts.append(Text(visible(f"failed: {record.get('error')}"), style="bold red"))
    return parts


def record_view(record: dict[str, Any], limit: int | None) -> Group:
    """A kept record: `id · source · model` (or dataset), its meta, its turns."""
    label = record.get("model") if "messages" in record else record.get("dataset")
    if label == record.get("source"):  # a source's dataset is by default its name
        label = None
    extra = []
    if record.get("iteration"):
        truncated = " (cut at max_iterations)" if record.get("iteration_truncated") else ""
        extra.append(f"{record['iteration']} iterations{truncated}")
    return Group(
        _heading(record.get("id"), record.get("source"), label, *extra),
        *_meta(record),
        *turns(record, limit),
    )


def _as_record(raw: str) -> dict[str, Any] | None:
    """A reject's `record` when it is one of ours (a later stage's input), else None: the
    read stage keeps the input verbatim, which is shown as text."""
    try:
        value = json.loads(raw)
    except (json.JSONDecodeError, RecursionError):
        return None
    if not isinstance(value, dict):
        return None
    messages = value.get("messages")
    if isinstance(messages, list) and all(
        isinstance(m, dict) and isinstance(m.get("content"), str) for m in messages
    ):
        return value
    return value if isinstance(value.get("instruction"), str) else None


def reject_view(row: dict[str, Any], stage: str, limit: int | None, raw_limit: int | None) -> Group:
    """A reject: `id · source · rejected by stage`, its reason and detail, and the record as
    it entered the stage (the read stage's: the input text itself)."""
    reason = Text.assemble(("reason ", "bold"), (visible(row.get("reason") or ""), "bold red"))
    detail = Text.assemble(("detail ", "bold"), visible(row.get("detail") or ""))
    raw = row.get("record") or ""
    parsed = _as_record(raw) if stage != "read" else None
    if parsed is not None:
        entered: list[RenderableType] = [
            Text(f"the record as it entered {stage}:", style="dim"),
            *turns(parsed, limit),
        ]
    else:
        shown, note = clip(visible(raw), raw_limit)
        text = Text(shown or "(empty)")
        raw_body: RenderableType = Group(text, Text(note, style="dim")) if note else text
        title = Text("input, verbatim" if stage == "read" else "record", style="dim")
        entered = [Panel(raw_body, title=title, title_align="left", border_style="dim")]
    heading = _heading(row.get("id"), row.get("source"), f"rejected by {stage}")
    return Group(heading, reason, detail, *entered)
