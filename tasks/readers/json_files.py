"""JSON Lines, JSON lists and concatenated JSON values, streamed record by record.

Each record is parsed on its own, so one broken record is one reject: a JSON Lines line is
its own frame; inside a list (or a run of top-level values) the scanner parses one value at
a time with the standard decoder and, where a value is broken, skips to the next place a
record can start (a `{` at the start of a line when the file puts records on lines, else
after `},`), keeping the skipped text in the reject. Nothing is loaded whole.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from pathlib import Path

from sftforge.tasks.readers.byte_streams import TruncatedInput, iter_chunks, iter_lines
from sftforge.tasks.readers.json_text import (
    DECODER,
    Problem,
    check_text,
    has_surrogate,
    kept_text,
    parse_line,
    parse_problem,
)
from sftforge.tasks.readers.raw import RawItem

_SPACE = re.compile(r"[ \t\n\r]*")
_FIRST_KEY = re.compile(r'\{[ \t\n\r]*"(?:[^"\\\n]|\\.){0,200}"[ \t\n\r]*:')
_MAX_SKIP = 64 << 20  # characters of unframed text one reject may span
_NOT_JSON = "the list ended; the file goes on with text that is not part of it"


def iter_jsonl(path: Path) -> Iterator[RawItem]:
    """One record per non-blank line; `where` names the line, `index` counts records."""
    lineno = index = 0
    try:
        for lineno, line in enumerate(iter_lines(path), start=1):  # noqa: B007
            if not line.strip():
                continue
            value, problem = parse_line(line)
            where = f"{path.name}:{lineno}"
            if problem is None:
                yield RawItem(where, value=value, index=index)
            else:
                text, cut = kept_text(line.rstrip(b"\n"))
                why = problem.detail + cut
                yield RawItem(where, text=text, error=why, reason=problem.reason, index=index)
            index += 1
    except TruncatedInput as exc:
        # The partial last line (if any) was already yielded as a reject of its own.
        where = f"{path.name}:{lineno + 1}"
        yield RawItem(where, text="", error=str(exc), reason="truncated_input", index=index)


class _Text:
    """The file's text, decoded chunk by chunk (invalid bytes kept as lone surrogates, found
    per record later), in a window that only grows while one record is being parsed."""

    def __init__(self, path: Path) -> None:
        self.chunks = iter_chunks(path)
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.truncated: str | None = None  # why a compressed input ended early
        self.lines_before = 0  # newlines in the text already dropped from the window
        self.has_bad_bytes = False  # from the first chunk with invalid UTF-8 on, records
        # are checked for the lone surrogates that stand for those bytes

    def more(self, at_least: int = 1) -> bool:
        """Read at least `at_least` more characters if the input has them; False at its end."""
        added = 0
        while added < at_least and not self.eof:
            try:
                chunk = next(self.chunks)
            except StopIteration:
                chunk, self.eof = b"", True
            except TruncatedInput as exc:
                chunk, self.eof, self.truncated = b"", True, str(exc)
            text = self.decoder.decode(chunk, final=self.eof)
            if not self.has_bad_bytes and not text.isascii():
                self.has_bad_bytes = has_surrogate(text)
            if not self.buf and not self.lines_before:
                text = text.removeprefix("\ufeff")  # a BOM is not part of the JSON
            self.lines_before += self.buf.count("\n", 0, self.pos)
            self.buf = self.buf[self.pos :] + text
            self.pos = 0
            added += len(text)
        return added > 0

    def skip_space(self) -> str:
        """The next non-space character, after moving past whitespace ("" at the end)."""
        while True:
            self.pos = _SPACE.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.more():
                return ""

    def line(self, at: int) -> int:
        return self.lines_before + self.buf.count("\n", 0, at) + 1

    def decode(self) -> tuple[object, int] | tuple[BaseException, None]:
        """The value at `pos` and where it ends, reading on while it may be incomplete (the
        window doubles each time, so a long record is not parsed again per chunk). Reading
        on drops the text before `pos` from the window: `pos` stays the record's start."""
        while True:
            try:
                return DECODER.raw_decode(self.buf, self.pos)
            except (ValueError, RecursionError) as exc:
                error: BaseException = exc
            incomplete = isinstance(error, json.JSONDecodeError) and (
                error.pos >= len(self.buf) - 1 or error.msg.startswith("Unterminated string")
            )
            if not (incomplete and self.more(max(len(self.buf) - self.pos, 1))):
                return error, None


class _Frame:
    """Where records start in this file, learnt from the first one: after a newline and the
    same indentation when the file puts records on lines, else after a comma; and, once a
    record was read, with the same opening (`{"id":`), so a nested object is not taken for
    a record."""

    def __init__(self, text: _Text, start: int) -> None:
        line_start = text.buf.rfind("\n", 0, start) + 1
        indent = text.buf[line_start:start]
        self.on_lines = line_start > 0 and not indent.strip()
        self.lead = "\n" + indent if self.on_lines else None
        self.pattern = self._compile("{")

    def _compile(self, opening: str) -> re.Pattern[str]:
        if self.lead is not None:
            return re.compile(re.escape(self.lead) + f"(?={re.escape(opening)})")
        return re.compile(r",[ \t\n\r]*" + f"(?={re.escape(opening)})")

    def learn(self, text: _Text, start: int) -> None:
        opening = _FIRST_KEY.match(text.buf, start)
        if opening is not None:
            self.pattern = self._compile(opening.group(0))

    def next_start(self, text: _Text) -> int:
        """The next place a record may start after the one at `text.pos`: else the end of
        the input, or of a window of _MAX_SKIP characters (the window stays bounded)."""
        while True:
            found = self.pattern.search(text.buf, text.pos + 1)
            if found is not None:
                return found.end()
            if len(text.buf) - text.pos >= _MAX_SKIP:
                return len(text.buf)
            if not text.more(max(len(text.buf) - text.pos, 1)):
                return len(text.buf)


def iter_json_values(path: Path) -> Iterator[RawItem]:
    """A JSON list (`[{…}, …]`) or top-level values one after another (`{…}\\n{…}`)."""
    text = _Text(path)
    in_list = text.skip_space() == "["
    after_list = False
    text.pos += in_list
    frame: _Frame | None = None
    learnt = False
    ended_inside = False  # a record was cut by the end of the input (and reported)
    index = 0
    while char := text.skip_space():
        if in_list and char in "],":
            text.pos += 1  # the end of the list, or a separator (a stray one is harmless)
            in_list, after_list = (False, True) if char == "]" else (in_list, after_list)
            continue
        start = text.pos
        frame = frame or _Frame(text, start)
        where = f"{path.name}#{index}"
        index += 1
        value, end = text.decode()
        start = text.pos  # reading on moves the window: the record starts at its start again
        if end is None:
            end = frame.next_start(text)
            at_end = end >= len(text.buf)
            problem = parse_problem(value, with_position=False)  # type: ignore[arg-type]
            if at_end and (text.truncated or in_list):
                ended_inside = True
                why = text.truncated or "the input ends inside a record"
                problem = Problem("truncated_input", why)
        else:
            problem = check_text(value, text.buf, start, end, text.has_bad_bytes)
            if problem is None and after_list:
                problem = Problem("invalid_json", _NOT_JSON)
            if problem is None:
                if not learnt:
                    frame.learn(text, start)
                    learnt = True
                yield RawItem(where, value=value)
                text.pos = end
                continue
        # Up to the next record: without the separator (`,` and whitespace) before it.
        raw, cut = kept_text(text.buf[start:end].rstrip().removesuffix(",").rstrip())
        detail = f"line {text.line(start)}: {problem.detail}{cut}"
        yield RawItem(where, text=raw, error=detail, reason=problem.reason)
        text.pos = end
    if ended_inside:
        return
    if text.truncated or in_list:
        why = text.truncated or "the input ends before the list is closed"
        yield RawItem(f"{path.name}#{index}", text="", error=why, reason="truncated_input")
