"""Readers: stream input records from files and datasets, one at a time.

A reader never decides whether a record is good; it yields what it found (the parsed
value, or the text it could not parse and why) and the read stage turns each into a
record or a reject. Nothing is loaded whole: JSON, JSON Lines, CSV and text are read
record by record by sftforge's own readers (json_files, table_files), so that one bad
record is one reject; parquet, arrow and Hub datasets through `datasets`, streamed.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sftforge.schemas.recipe import SourceConfig
from sftforge.tasks.readers.byte_streams import first_line, first_non_space, iter_chunks
from sftforge.tasks.readers.json_files import iter_json_values, iter_jsonl
from sftforge.tasks.readers.json_text import (
    DECODER,
    Problem,
    check_bytes,
    kept_text,
    parse_problem,
)
from sftforge.tasks.readers.raw import RawItem
from sftforge.tasks.readers.table_files import iter_csv, iter_text_lines

__all__ = ["RawItem", "UnreadableInput", "iter_source", "iter_sharegpt_file", "probe"]

_NEXT_DATA = re.compile(
    rb"<script[^>]*\bid=[\"']__NEXT_DATA__[\"'][^>]*>(.*?)</script\s*>", re.S | re.I
)
_PAGE_LIMIT = 256 << 20  # a saved page larger than this is not a chat page


def _logical_suffix(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    return suffixes[-1] if suffixes else ""


def _read_page(path: Path) -> bytes:
    data = bytearray()
    for chunk in iter_chunks(path):  # TruncatedInput: the caller keeps what the page held
        data += chunk
        if len(data) > _PAGE_LIMIT:
            break
    return bytes(data)


def _page_reject(path: Path, script: bytes, problem: Problem) -> RawItem:
    # A page that parses but is not a conversation is `invalid_record`; bad text keeps its reason.
    reason = "invalid_record" if problem.reason == "invalid_json" else problem.reason
    text, cut = kept_text(script)
    why = f"unreadable __NEXT_DATA__: {problem.detail}{cut}"
    return RawItem(path.name, text=text, error=why, reason=reason)


def iter_html_page(path: Path) -> Iterator[RawItem]:
    """A saved ShareGPT page: the conversation is in <script id="__NEXT_DATA__">."""
    data = _read_page(path)
    match = _NEXT_DATA.search(data)
    if match is None:
        snippet, _ = kept_text(data[:2000])
        why = "no __NEXT_DATA__ script in the page"
        yield RawItem(path.name, text=snippet, error=why, reason="invalid_record")
        return
    script = match.group(1)
    try:
        payload = DECODER.decode(script.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        yield _page_reject(path, script, parse_problem(exc))
        return
    problem = check_bytes(payload, script)
    props = payload.get("props", {}).get("pageProps") if isinstance(payload, dict) else None
    content = props.get("content") if isinstance(props, dict) else None
    if problem is None and not isinstance(content, dict):
        problem = Problem("invalid_record", "props.pageProps.content is not an object")
    if problem is not None:
        yield _page_reject(path, script, problem)
        return
    record = {
        "id": props.get("id") or content.get("id") or path.stem,  # type: ignore[union-attr]
        "conversations": content.get("items"),  # type: ignore[union-attr]
        "model": content.get("model"),  # type: ignore[union-attr]
        "title": content.get("title"),  # type: ignore[union-attr]
    }
    yield RawItem(path.name, value=record)


def iter_json_file(path: Path) -> Iterator[RawItem]:
    """JSON Lines, a JSON list or JSON values one after another, told apart by content."""
    first = first_non_space(path)
    if first == b"":
        return  # an empty file holds no records
    if _logical_suffix(path) == ".jsonl" or first == b"{" and _looks_like_jsonl(path):
        yield from iter_jsonl(path)
    else:
        yield from iter_json_values(path)


def iter_sharegpt_file(path: Path) -> Iterator[RawItem]:
    if _logical_suffix(path) in (".html", ".htm"):
        yield from iter_html_page(path)
    else:
        yield from iter_json_file(path)


def _looks_like_jsonl(path: Path) -> bool:
    """A `.json` file whose first line is a whole object is JSON Lines (FastChat writes both)."""
    try:
        return isinstance(json.loads(first_line(path)), dict)
    except (ValueError, RecursionError):
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
                raise UnreadableInput(f"{label}: cannot be read: {_one_line(exc)}") from exc
            # Broken part-way (a CSV quote, a bad block): keep what came before, say so.
            yield RawItem(
                f"{label}#{index}",
                text="",
                error=f"unreadable after row {index}; the rest was not read: {_one_line(exc)}",
                reason="unreadable_rest",
            )
            return
        yield RawItem(f"{label}#{index}", value=row)
        index += 1


# Local files sftforge reads itself, row by row; `datasets` reads the rest (and Hub ids).
_OWN_READERS = {".json": iter_json_file, ".jsonl": iter_json_file, ".csv": iter_csv}
_OWN_READERS[".txt"] = iter_text_lines
_DATASETS_BUILDERS = {".parquet": "parquet", ".arrow": "arrow"}
_PROBE_ROWS = 100


def _one_line(exc: BaseException) -> str:
    """An exception as one line: Hub and `datasets` errors run to many (and to URLs)."""
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    return f"{type(exc).__name__}: {first[:300]}"


@contextmanager
def _hub_warnings_hidden() -> Iterator[None]:
    """huggingface_hub logs a warning per retry of an unreachable Hub (a hundred lines before
    it gives up): the one line that matters is the error it ends with."""
    hub = logging.getLogger("huggingface_hub")
    level = hub.level
    hub.setLevel(logging.ERROR)
    try:
        yield
    finally:
        hub.setLevel(level)


def iter_hf(source: SourceConfig, files: list[Path] | None) -> Iterator[RawItem]:
    """An HF dataset id (through `datasets`, streamed), or local files: JSON, JSON Lines,
    CSV and text row by row with sftforge's readers, parquet and arrow through `datasets`.

    Local files are read one at a time, so that a bad file is named and does not take
    the others with it.
    """
    if source.dataset:
        import datasets  # imported here: it is slow to import and only these readers need it

        try:
            with _hub_warnings_hidden():
                ds = datasets.load_dataset(
                    source.dataset, name=source.subset, split=source.split, streaming=True
                )
        except Exception as exc:
            raise UnreadableInput(f"{source.dataset}: cannot be opened: {_one_line(exc)}") from exc
        yield from _iter_dataset(ds, source.dataset)
        return
    for path in files or []:
        suffix = _logical_suffix(path)
        if suffix in _OWN_READERS:
            yield from _OWN_READERS[suffix](path)
            continue
        builder = _DATASETS_BUILDERS.get(suffix)
        if builder is None:
            raise UnreadableInput(f"{path}: no reader for {path.suffix!r} files")
        if path.stat().st_size == 0:
            continue
        import datasets

        try:
            ds = datasets.load_dataset(builder, data_files=str(path), split="train", streaming=True)
        except Exception as exc:
            raise UnreadableInput(f"{path}: {_one_line(exc)}") from exc
        yield from _iter_dataset(ds, path.name)


def probe(source: SourceConfig, files: list[Path] | None) -> None:
    """Before the run starts, for an hf source: a Hub dataset can be opened and gives a
    row; a local file can be read, and is text in UTF-8 (a file whose first rows are all
    undecodable is in another encoding: one usage error, not a reject per row).
    UnreadableInput names the dataset or the file."""
    if source.format != "hf":
        return
    if source.dataset:
        next(iter(iter_hf(source, None)), None)
        return
    for path in files or []:
        single = source.model_copy(update={"path": str(path)})
        head = [item for _, item in zip(range(_PROBE_ROWS), iter_hf(single, [path]), strict=False)]
        if head and all(item.reason == "invalid_unicode" and item.error for item in head):
            raise UnreadableInput(
                f"{path}: not UTF-8 text (none of its first {len(head)} rows decodes);"
                " convert it to UTF-8"
            )


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
