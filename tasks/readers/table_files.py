"""CSV and plain-text files, row by row: a bad row is one reject with its line and raw text.

`datasets` reads these in blocks, and one bad row there costs the rest of the block (or of
the file); here every row stands alone. CSV cells stay text exactly as written: pandas
would turn "NA", "null" or "N/A" into missing values and "1.50" into 1.5.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections import deque
from collections.abc import Iterator
from itertools import chain
from pathlib import Path

from sftforge.tasks.readers.byte_streams import TruncatedInput, iter_chunks, iter_lines
from sftforge.tasks.readers.json_text import has_surrogate, kept_text
from sftforge.tasks.readers.raw import RawItem

# A cell may be a whole long answer; the module's default limit (128 KiB) is for safety
# against runaway quotes, which the per-row error below already contains.
csv.field_size_limit(1 << 30)
_KEPT_CHUNKS = 8  # a bad row's raw text is kept if it spans fewer than 8 MB
_LONE_SURROGATE = re.compile("[\udc80-\udcff]")  # invalid bytes, as surrogateescape keeps them


class _Lines:
    """A file's text as lines for csv.reader, fed a chunk's worth at a time (so the reader's
    loop stays in C), keeping the last few chunks' lines to give a bad row its raw text."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.kept: deque[tuple[int, list[str]]] = deque(maxlen=_KEPT_CHUNKS)  # (first line, lines)
        self.truncated: str | None = None
        self.has_bad_bytes = False  # from the first chunk with invalid UTF-8 on, cells are checked

    def __iter__(self) -> Iterator[str]:
        return chain.from_iterable(self._batches())

    def _batches(self) -> Iterator[list[str]]:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")
        rest, first_line, final = "", 0, False
        chunks = iter_chunks(self.path)
        while not final:
            try:
                chunk = next(chunks)
            except StopIteration:
                chunk, final = b"", True
            except TruncatedInput as exc:
                chunk, final, self.truncated = b"", True, str(exc)
            text = decoder.decode(chunk, final=final)
            if not self.has_bad_bytes and not text.isascii():
                self.has_bad_bytes = has_surrogate(text)
            if first_line == 0 and not self.kept:
                text = text.removeprefix("\ufeff")
            parts = (rest + text).split("\n")
            rest = parts.pop()  # after the last newline: a line still incomplete (or the last)
            lines = [line + "\n" for line in parts]
            if final and rest:
                lines.append(rest)
            self.kept.append((first_line, lines))
            first_line += len(lines)
            yield lines

    def text(self, first: int, end: int) -> str:
        """Lines [first, end) (0-based), joined; "" if they have left the kept chunks."""
        out: list[str] = []
        for start, lines in self.kept:
            lo, hi = max(first, start), min(end, start + len(lines))
            if lo < hi:
                out.extend(lines[lo - start : hi - start])
        return "".join(out)


def _bad(path: Path, line: int, raw: str, why: str, reason: str, index: int) -> RawItem:
    text, cut = kept_text(raw.rstrip("\r\n"))
    where = f"{path.name}:{line}"
    return RawItem(where, text=text, error=f"{why}{cut}", reason=reason, index=index)


def _has_bad_bytes(cells: list[str]) -> bool:
    return any(not cell.isascii() and _LONE_SURROGATE.search(cell) for cell in cells)


def iter_csv(path: Path) -> Iterator[RawItem]:
    """Rows as {header: cell}; the header is the first row. Row positions count data rows."""
    lines = _Lines(path)
    reader = csv.reader(lines, strict=True)
    header: list[str] | None = None
    index = done = 0  # data rows seen; lines consumed before the current row
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            line, raw, done = done + 1, lines.text(done, reader.line_num), reader.line_num
            yield _bad(path, line, raw, f"line {line}: not CSV: {exc}", "invalid_csv", index)
            index += 1
            continue
        line, first, done = done + 1, done, reader.line_num
        if not cells:
            continue  # a blank line
        if lines.has_bad_bytes and _has_bad_bytes(cells):
            why = f"line {line}: not UTF-8"
            yield _bad(path, line, lines.text(first, done), why, "invalid_unicode", index)
        elif header is None:
            header = cells
            continue
        elif len(cells) != len(header):
            why = f"line {line}: {len(cells)} fields, the header has {len(header)}"
            yield _bad(path, line, lines.text(first, done), why, "invalid_csv", index)
        else:
            yield RawItem(f"{path.name}#{index}", value=dict(zip(header, cells, strict=True)))
        index += 1
    if lines.truncated:
        where = f"{path.name}#{index}"
        yield RawItem(where, text="", error=lines.truncated, reason="truncated_input")


def iter_text_lines(path: Path) -> Iterator[RawItem]:
    """One row per line, as `datasets`' text builder: {"text": line without its newline}."""
    index = 0
    try:
        for index, raw in enumerate(iter_lines(path)):  # noqa: B007
            try:
                text = raw.decode("utf-8").removesuffix("\n").removesuffix("\r")
            except UnicodeDecodeError as exc:
                why = f"line {index + 1}: not UTF-8: {exc}"
                yield _bad(path, index + 1, raw, why, "invalid_unicode", index)
                continue
            if index == 0:
                text = text.removeprefix("\ufeff")
            yield RawItem(f"{path.name}#{index}", value={"text": text})
    except TruncatedInput as exc:
        yield RawItem(f"{path.name}#{index + 1}", text="", error=str(exc), reason="truncated_input")
