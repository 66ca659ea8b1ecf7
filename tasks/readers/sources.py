"""Readers: stream input records from files and datasets, one at a time.

A reader never decides whether a record is good; it yields what it found (the parsed
value, or the text it could not parse and why) and the read stage turns each into a
record or a reject. Nothing is loaded whole: JSON lists go through ijson, JSONL line by
line, HF datasets with `streaming=True`.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import ijson

from sftforge.schemas.recipe import SourceConfig


@dataclass(frozen=True, slots=True)
class RawItem:
    where: str  # "file.jsonl:12" — names the record for humans and for fallback ids
    value: Any = None  # the parsed record
    text: str | None = None  # the original text, when it could not be parsed
    error: str | None = None  # why it could not be parsed
    reason: str = "invalid_json"  # the reject reason when it could not be parsed


_NEXT_DATA = re.compile(
    rb"<script[^>]*\bid=[\"']__NEXT_DATA__[\"'][^>]*>(.*?)</script\s*>", re.S | re.I
)


def _open(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")


def _logical_suffix(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    return suffixes[-1] if suffixes else ""


def _first_char(path: Path) -> bytes:
    with _open(path) as fh:
        while chunk := fh.read(4096):
            stripped = chunk.lstrip().lstrip(b"\xef\xbb\xbf").lstrip()
            if stripped:
                return stripped[:1]
    return b""


def iter_jsonl(path: Path) -> Iterator[RawItem]:
    with _open(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{path.name}:{lineno}"
            try:
                yield RawItem(where, value=json.loads(line))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                text = line.decode("utf-8", errors="replace").rstrip("\n")
                yield RawItem(where, text=text, error=f"not JSON: {exc}")


def iter_json_values(path: Path) -> Iterator[RawItem]:
    """A JSON list (`[{…}, …]`) or concatenated top-level values, streamed with ijson."""
    list_mode = _first_char(path) == b"["
    index = 0
    with _open(path) as fh:
        items = (
            ijson.items(fh, "item", use_float=True)
            if list_mode
            else ijson.items(fh, "", multiple_values=True, use_float=True)
        )
        try:
            for value in items:
                yield RawItem(f"{path.name}#{index}", value=value)
                index += 1
        except (ijson.JSONError, ijson.IncompleteJSONError, UnicodeDecodeError) as exc:
            # A streaming parser cannot resynchronise inside a broken list: what follows the
            # error is reported as one reject, so the loss is visible and counted.
            yield RawItem(
                f"{path.name}#{index}",
                text="",
                error=f"not JSON after item {index}; the rest of the file was not read: {exc}",
            )


def iter_html_page(path: Path) -> Iterator[RawItem]:
    """A saved ShareGPT page: the conversation is in <script id="__NEXT_DATA__">."""
    data = path.read_bytes()
    match = _NEXT_DATA.search(data)
    if match is None:
        snippet = data[:2000].decode("utf-8", errors="replace")
        yield RawItem(
            path.name,
            text=snippet,
            error="no __NEXT_DATA__ script in the page",
            reason="invalid_record",
        )
        return
    try:
        payload = json.loads(match.group(1))
        props = payload["props"]["pageProps"]
        content = props["content"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        text = match.group(1)[:100_000].decode("utf-8", errors="replace")
        yield RawItem(
            path.name,
            text=text,
            error=f"unreadable __NEXT_DATA__: {exc!r}",
            reason="invalid_record",
        )
        return
    if not isinstance(content, dict):
        yield RawItem(
            path.name,
            text=json.dumps(content),
            error="pageProps.content is not an object",
            reason="invalid_record",
        )
        return
    record = {
        "id": props.get("id") or content.get("id") or path.stem,
        "conversations": content.get("items"),
        "model": content.get("model"),
        "title": content.get("title"),
    }
    yield RawItem(path.name, value=record)


def iter_sharegpt_file(path: Path) -> Iterator[RawItem]:
    suffix = _logical_suffix(path)
    if suffix not in (".html", ".htm") and _first_char(path) == b"":
        return  # an empty dump holds no records
    if suffix in (".html", ".htm"):
        yield from iter_html_page(path)
    elif suffix == ".jsonl" or _first_char(path) == b"{" and _looks_like_jsonl(path):
        yield from iter_jsonl(path)
    else:
        yield from iter_json_values(path)


def _looks_like_jsonl(path: Path) -> bool:
    """A `.json` file whose first line is a whole object is JSON Lines (FastChat writes both)."""
    with _open(path) as fh:
        first = fh.readline()
    try:
        return isinstance(json.loads(first), dict)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False


class UnreadableInput(Exception):
    """A whole input file (or dataset) that cannot be read at all: bad usage, exit 2."""


def _rows(ds: Any, batch_size: int = 1000) -> Iterator[dict[str, Any]]:
    """Rows of an (iterable) dataset, fetched in batches: row-by-row iteration through
    `datasets` costs more than everything else the read stage does."""
    for batch in ds.iter(batch_size=batch_size):
        keys = list(batch)
        for values in zip(*(batch[k] for k in keys), strict=True):
            yield dict(zip(keys, values, strict=True))


def _iter_dataset(ds: Any, label: str) -> Iterator[RawItem]:
    index = 0
    iterator = _rows(ds)
    while True:
        try:
            row = next(iterator)
        except StopIteration:
            return
        except Exception as exc:
            if index == 0:
                raise UnreadableInput(
                    f"{label}: cannot be read: {type(exc).__name__}: {exc}"
                ) from exc
            # Broken part-way (a CSV quote, a bad block): keep what came before, say so.
            yield RawItem(
                f"{label}#{index}",
                text="",
                error=f"unreadable after row {index}; the rest was not read: {exc}",
                reason="unreadable_rest",
            )
            return
        yield RawItem(f"{label}#{index}", value=row)
        index += 1


_BUILDERS = {
    ".json": "json",
    ".jsonl": "json",
    ".csv": "csv",
    ".parquet": "parquet",
    ".txt": "text",
    ".arrow": "arrow",
}


def iter_hf(source: SourceConfig, files: list[Path] | None) -> Iterator[RawItem]:
    """Anything `datasets.load_dataset` reads, streamed: an HF dataset id, or local files.

    Local files are loaded one at a time, so that a bad file is named and does not take
    the others with it.
    """
    import datasets  # imported here: it is slow to import and only these readers need it

    if source.dataset:
        try:
            ds = datasets.load_dataset(
                source.dataset, name=source.subset, split=source.split, streaming=True
            )
        except Exception as exc:
            raise UnreadableInput(f"{source.dataset}: {type(exc).__name__}: {exc}") from exc
        yield from _iter_dataset(ds, source.dataset)
        return
    for path in files or []:
        builder = _BUILDERS.get(_logical_suffix(path))
        if builder is None:
            raise UnreadableInput(f"{path}: no datasets loader for {path.suffix!r} files")
        if path.stat().st_size == 0:
            continue
        try:
            ds = datasets.load_dataset(builder, data_files=str(path), split="train", streaming=True)
        except Exception as exc:
            raise UnreadableInput(f"{path}: {type(exc).__name__}: {exc}") from exc
        yield from _iter_dataset(ds, path.name)


def probe(source: SourceConfig, files: list[Path] | None) -> None:
    """Read the first row of each local file of an hf source: an unreadable file is a usage
    error to report before the run starts (UnreadableInput names the file)."""
    if source.format != "hf" or source.dataset:
        return
    for path in files or []:
        single = source.model_copy(update={"path": str(path)})
        next(iter(iter_hf(single, [path])), None)


def iter_couplets(files: list[Path]) -> Iterator[RawItem]:
    """The couplet set: parallel in.txt / out.txt lines (through load_dataset("text"))."""
    import datasets

    by_name = {p.name: p for p in files}
    if "in.txt" not in by_name or "out.txt" not in by_name:
        raise UnreadableInput(f"{files[0].parent}: a couplets folder needs in.txt and out.txt")

    def lines(path: Path) -> Any:
        return datasets.load_dataset("text", data_files=str(path), split="train", streaming=True)

    for index, (first, second) in enumerate(
        zip(lines(by_name["in.txt"]), lines(by_name["out.txt"]), strict=False)
    ):
        yield RawItem(f"couplets#{index}", value={"in": first["text"], "out": second["text"]})


def iter_source(source: SourceConfig, files: list[Path] | None) -> Iterator[RawItem]:
    if source.format == "hf":
        yield from iter_hf(source, files)
        return
    if source.format == "couplets":
        yield from iter_couplets(files or [])
        return
    for path in files or []:
        yield from iter_sharegpt_file(path)
