"""Input bytes: files opened by what they hold (gzip or not), read in chunks and lines, and a
compressed file cut short reported after everything before the cut was delivered."""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterator
from pathlib import Path

CHUNK = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"


class TruncatedInput(Exception):
    """The input ended where its framing says more must follow (a gzip stream cut short).

    Raised after every byte before the cut was delivered, so the readers keep the records
    before the break and report the break itself as a reject."""


def is_gzip(path: Path) -> bool:
    # By content, not by name: a plain file named `.jsonl.gz` and gzip named `.jsonl` are read.
    with path.open("rb") as fh:
        return fh.read(2) == _GZIP_MAGIC


def open_bytes(path: Path) -> io.BufferedIOBase:
    return gzip.open(path, "rb") if is_gzip(path) else path.open("rb")


def iter_chunks(path: Path, size: int = CHUNK) -> Iterator[bytes]:
    """The file's (decompressed) bytes in chunks; TruncatedInput at a broken gzip stream."""
    with open_bytes(path) as fh:
        while True:
            try:
                # read1: one step at a time, so that the data before a cut is delivered
                # (read(size) raises at the cut and drops what it had decompressed).
                chunk = fh.read1(size)
            except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
                raise TruncatedInput(f"compressed data ends or breaks early: {exc}") from exc
            if not chunk:
                return
            yield chunk


def iter_lines(path: Path) -> Iterator[bytes]:
    """Lines with their `\\n`, in order; a compressed file cut short yields its partial last
    line (without `\\n`), then raises TruncatedInput."""
    rest = b""
    try:
        for chunk in iter_chunks(path):
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            for line in lines:
                yield line + b"\n"
    except TruncatedInput:
        if rest:
            yield rest
        raise
    if rest:
        yield rest


def first_non_space(path: Path) -> bytes:
    """The first byte that is neither whitespace nor a UTF-8 BOM (b"" for an empty file)."""
    try:
        for chunk in iter_chunks(path, 4096):
            stripped = chunk.lstrip().removeprefix(b"\xef\xbb\xbf").lstrip()
            if stripped:
                return stripped[:1]
    except TruncatedInput:
        pass
    return b""


def first_line(path: Path) -> bytes:
    try:
        return next(iter_lines(path), b"")
    except TruncatedInput:
        return b""
