"""CSV and plain-text files, row by row: a bad row is one reject with its line and raw text.

`datasets` reads these in blocks, and one bad row there costs the rest of the block (or of
the file); here every row stands alone. CSV cells stay text exactly as written: pandas
would turn "NA", "null" or "N/A" into missing values and "1.50" into 1.5.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from sftforge.tasks.readers.byte_streams import TruncatedInput, iter_lines
from sftforge.tasks.readers.json_text import kept_text
from sftforge.tasks.readers.raw import RawItem

# A cell may be a whole long answer; the module's default limit (128 KiB) is for safety
# against runaway quotes, which the per-row error below already contains.
csv.field_size_limit(1 << 30)


class _Tap:
    """Text lines for csv.reader, remembering which raw lines the current row used."""

    def __init__(self, path: Path) -> None:
        self.lines = iter_lines(path)
        self.taken: list[bytes] = []
        self.lineno = 0
        self.truncated: str | None = None
        self.first = True

    def __iter__(self) -> _Tap:
        return self

    def __next__(self) -> str:
        try:
            raw = next(self.lines)
        except TruncatedInput as exc:
            self.truncated = str(exc)
            raise StopIteration from exc
        self.taken.append(raw)
        self.lineno += 1
        text = raw.decode("utf-8", errors="surrogateescape")
        if self.first:
            text, self.first = text.removeprefix("\ufeff"), False
        return text

    def row_text(self) -> tuple[int, bytes]:
        """The first line number and raw bytes of the row just read."""
        first = self.lineno - len(self.taken) + 1
        raw, self.taken = b"".join(self.taken), []
        return first, raw


def _bad(path: Path, line: int, raw: bytes, why: str, reason: str, index: int) -> RawItem:
    text, cut = kept_text(raw.rstrip(b"\r\n"))
    where = f"{path.name}:{line}"
    return RawItem(where, text=text, error=f"{why}{cut}", reason=reason, index=index)


def iter_csv(path: Path) -> Iterator[RawItem]:
    """Rows as {header: cell}; the header is the first row. Row positions count data rows."""
    tap = _Tap(path)
    reader = csv.reader(tap, strict=True)
    header: list[str] | None = None
    index = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            line, raw = tap.row_text()
            yield _bad(path, line, raw, f"line {line}: not CSV: {exc}", "invalid_csv", index)
            index += 1
            continue
        line, raw = tap.row_text()
        if not cells:
            continue  # a blank line
        if any("\udc80" <= ch <= "\udcff" for cell in cells for ch in cell):
            yield _bad(path, line, raw, f"line {line}: not UTF-8", "invalid_unicode", index)
        elif header is None:
            header = cells
            continue
        elif len(cells) != len(header):
            why = f"line {line}: {len(cells)} fields, the header has {len(header)}"
            yield _bad(path, line, raw, why, "invalid_csv", index)
        else:
            yield RawItem(f"{path.name}#{index}", value=dict(zip(header, cells, strict=True)))
        index += 1
    if tap.truncated:
        where = f"{path.name}#{index}"
        yield RawItem(where, text="", error=tap.truncated, reason="truncated_input")


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
