"""The one train/eval split-file writer every output format uses.

An output's files are one per split (train, eval) and shard index, each a JSON list, JSON Lines
or parquet file, named by a `Layout`. `SplitFiles` opens a split's files the first time a row
goes there, writes rows in the order they come, and commits all of the output's files together
or none: a file is written under a temporary name in its final folder and renamed when every
file is complete, so a reader (or a rerun) never sees half an output. The files themselves
stream (tasks/outputs/file_writers.py): memory holds one buffered parquet row group at most.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import pyarrow as pa

from sftforge.tasks.outputs.file_writers import (
    JsonListWriter,
    JsonlWriter,
    ParquetWriter,
    TextFile,
)


@dataclass(frozen=True)
class FileSpec:
    """One file of every split: its suffix after the stem (`.json`, `.text.json`, `.jsonl`,
    `.parquet`), which also says how it is written; parquet files need their schema."""

    suffix: str
    schema: pa.Schema | None = None


@dataclass(frozen=True)
class Layout:
    """Where an output's files go: `folder/<name><sep><split>[-<shard>]<suffix>` per FileSpec.

    `split_sep` "." gives the training files' `name.train.json`, "-" the JSON exports'
    `name-train.json`; None leaves the split out (an output that is not split at all).
    `shards` N spreads each split over files `-0` … `-N-1`.
    """

    folder: Path
    name: str
    specs: tuple[FileSpec, ...]
    split_sep: str | None = "."
    shards: int | None = None

    def paths(self, split: str, shard: int = 0) -> list[Path]:
        stem = self.name if self.split_sep is None else f"{self.name}{self.split_sep}{split}"
        if self.shards is not None:
            stem = f"{stem}-{shard}"
        return [self.folder / f"{stem}{spec.suffix}" for spec in self.specs]

    def every_path(self, splits: Iterable[str]) -> list[Path]:
        """All the files this layout can make for these splits (every shard)."""
        return [
            path
            for split in splits
            for shard in range(self.shards or 1)
            for path in self.paths(split, shard)
        ]


@dataclass
class BatchPart:
    """What one batch adds to one split's files: lines for each JSON file, rows for parquet."""

    lines: list[list[str]]
    rows: pa.Table | None = None


@dataclass
class BatchDone:
    """A batch's output (computed in a worker process, written in order by the caller)."""

    parts: dict[str, BatchPart]  # every split the batch's records went to, even if empty
    counts: Counter[str]


@dataclass
class _OpenSplit:
    """The open files of one split and shard: JSON files in FileSpec order, and parquet."""

    json: list[JsonListWriter | JsonlWriter]
    parquet: ParquetWriter | None

    def write(self, part: BatchPart) -> None:
        for writer, lines in zip(self.json, part.lines, strict=True):
            writer.write_many(lines)
        if self.parquet is not None and part.rows is not None:
            self.parquet.write_table(part.rows)


class SplitFiles:
    """The files of one output, opened per split (and shard) on first use, committed together
    or not at all. As a context manager: committed when the block ends, aborted (temporary
    files removed, the files of an earlier run left as they were) when it raises."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self._open: dict[tuple[str, int], _OpenSplit] = {}
        self._files: list[TextFile | ParquetWriter] = []

    def __enter__(self) -> SplitFiles:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.commit()
        else:
            self.abort()

    def open(self, split: str, shard: int = 0) -> _OpenSplit:
        """The split's files, created (empty) if this is their first use."""
        key = (split, shard)
        if key not in self._open:
            json_files: list[JsonListWriter | JsonlWriter] = []
            parquet = None
            for spec, path in zip(self.layout.specs, self.layout.paths(split, shard), strict=True):
                if spec.suffix.endswith(".parquet"):
                    assert spec.schema is not None, f"{path.name}: a parquet file needs a schema"
                    parquet = self._add(ParquetWriter(path, spec.schema))
                elif spec.suffix.endswith(".jsonl"):
                    json_files.append(self._add(JsonlWriter(path)))
                else:
                    json_files.append(self._add(JsonListWriter(path)))
            self._open[key] = _OpenSplit(json_files, parquet)
        return self._open[key]

    def _add(self, writer: Any) -> Any:
        self._files.append(writer)  # added as soon as it exists: an abort removes it too
        return writer

    def write(self, split: str, part: BatchPart, shard: int = 0) -> None:
        """A batch's lines (one list per JSON file) and rows (parquet) for one split."""
        self.open(split, shard).write(part)

    def write_json(self, split: str, text: str, shard: int = 0) -> None:
        """One row's JSON text to the split's first JSON file (row by row: the exports)."""
        files = self._open.get((split, shard)) or self.open(split, shard)
        files.json[0].write_json(text)

    @property
    def splits(self) -> list[str]:
        """The splits written, in the order they were opened."""
        return list(dict.fromkeys(split for split, _ in self._open))

    @property
    def paths(self) -> list[Path]:
        """Every file of the output, in the order they were opened."""
        return [f.path for f in self._files]

    def commit(self) -> None:
        for writer in self._files:
            writer.commit()

    def abort(self) -> None:
        for writer in self._files:
            writer.abort()

    def remove_unwritten(self, candidates: Iterable[Path]) -> None:
        """Files an earlier run wrote that this run does not (an eval split that is now empty,
        text files turned off): `candidates` not among this output's files."""
        written = set(self.paths)
        for path in candidates:
            if path not in written:
                path.unlink(missing_ok=True)


def write_batches(
    layout: Layout, batches: Iterable[BatchDone], stale: Layout | None = None
) -> tuple[SplitFiles, dict[str, int]]:
    """Every batch's parts to its splits' files, in batch order, committed together; then the
    train/eval files of `stale` (default: `layout`) that an earlier run left and this one did
    not write are removed. Returns the files and the batches' counts summed (sorted by name).
    The train split's files are made even when no row goes there (trainers expect them)."""
    counts: Counter[str] = Counter()
    with SplitFiles(layout) as files:
        files.open("train")
        for done in batches:
            counts.update(done.counts)
            for split, part in done.parts.items():
                files.write(split, part)
    files.remove_unwritten((stale or layout).every_path(("train", "eval")))
    return files, dict(sorted(counts.items()))


def files_entry(
    config: Any, files: SplitFiles, counts: dict[str, Any], **details: Any
) -> dict[str, Any]:
    """A training output's manifest entry: what it is, its files, its own details, counts."""
    folder, name = files.layout.folder, files.layout.name
    return {
        "format": config.format,
        "name": name,
        "path": str(folder / name),
        "files": sorted(str(p) for p in files.paths),
        **details,
        "counts": counts,
    }
