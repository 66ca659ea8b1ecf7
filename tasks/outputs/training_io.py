"""Streaming, atomic writers for training files: JSON lists, JSON Lines, parquet.

Each file is written under a temporary name in its final folder and renamed when complete, so
a reader (or a rerun) never sees half a file; memory holds one buffered row group at most.
"""

from __future__ import annotations

import itertools
import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sftforge.tasks.base.atomic import temp_path, write_bytes_atomic


def dumps(value: Any) -> str:
    # Compact separators: token files are mostly numbers, and the spaces would be a third of them.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class _TextFile:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.tmp, self.count = path, temp_path(path), 0
        self.fh: IO[str] = self.tmp.open("w", encoding="utf-8")

    def commit(self) -> None:
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        self.fh.close()
        self.tmp.unlink(missing_ok=True)


class JsonListWriter(_TextFile):
    """A JSON list, one item per line: `[\\n item,\\n item\\n]`."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.fh.write("[")

    def write_json(self, text: str) -> None:
        self.fh.write(("\n" if self.count == 0 else ",\n") + text)
        self.count += 1

    def write_many(self, texts: list[str]) -> None:
        if texts:
            self.fh.write(("\n" if self.count == 0 else ",\n") + ",\n".join(texts))
            self.count += len(texts)

    def commit(self) -> None:
        self.fh.write("\n]\n" if self.count else "]\n")
        super().commit()


class JsonlWriter(_TextFile):
    def write_json(self, text: str) -> None:
        self.fh.write(text + "\n")
        self.count += 1

    def write_many(self, texts: list[str]) -> None:
        if texts:
            self.fh.write("\n".join(texts) + "\n")
            self.count += len(texts)


class ParquetWriter:
    """Tables of rows buffered and written in row groups of about `group_rows` rows or
    `group_values` list elements (token ids), whichever comes first: memory stays bounded
    however long the examples are, and the same rows always give the same bytes."""

    def __init__(
        self, path: Path, schema: pa.Schema, group_rows: int = 2048, group_values: int = 1 << 20
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.tmp, self.schema = path, temp_path(path), schema
        self.group_rows, self.group_values = group_rows, group_values
        self.lists = [f.name for f in schema if pa.types.is_list(f.type)]
        self.tables: list[pa.Table] = []  # one group's worth at most
        self.count = self.rows = self.values = 0
        self.writer = pq.ParquetWriter(self.tmp, schema, compression="zstd")

    def write_table(self, table: pa.Table) -> None:
        """Rows in arrow form (a batch of examples; `rows_table` makes one from dicts)."""
        self.tables.append(table.cast(self.schema))
        self.count += table.num_rows
        self.rows += table.num_rows
        self.values += sum(
            len(chunk.flatten()) for name in self.lists for chunk in table.column(name).chunks
        )
        if self.rows >= self.group_rows or self.values >= self.group_values:
            self._flush()

    def _flush(self) -> None:
        if self.tables:
            table = pa.concat_tables(self.tables).combine_chunks()
            self.writer.write_table(table, row_group_size=max(table.num_rows, 1))
            self.tables, self.rows, self.values = [], 0, 0

    def commit(self) -> None:
        self._flush()
        self.writer.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        try:
            self.writer.close()
        finally:
            self.tmp.unlink(missing_ok=True)


def rows_table(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """Row dicts as an arrow table (token-id lists through numpy, see `_array`)."""
    return pa.Table.from_arrays(
        [_array([row[f.name] for row in rows], f.type) for f in schema], schema=schema
    )


def _array(values: list[Any], type_: pa.DataType) -> pa.Array:
    """Lists of token ids as one flat numpy buffer plus offsets: ~5x faster than letting
    pyarrow convert a list of Python lists."""
    if not pa.types.is_list(type_):
        return pa.array(values, type=type_)
    offsets = np.zeros(len(values) + 1, dtype=np.int32)
    np.cumsum([len(v) for v in values], out=offsets[1:])
    flat = np.fromiter(
        itertools.chain.from_iterable(values),
        dtype=type_.value_type.to_pandas_dtype(),
        count=int(offsets[-1]),
    )
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat, type=type_.value_type))


def write_json_atomic(path: Path, value: Any) -> None:
    text = json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    write_bytes_atomic(path, text.encode("utf-8"))


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


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
class SplitFiles:
    """The open files of one split: JSON files in BatchPart.lines order, and parquet."""

    json: list[JsonListWriter | JsonlWriter]
    parquet: ParquetWriter | None

    def write(self, part: BatchPart) -> None:
        for writer, lines in zip(self.json, part.lines, strict=True):
            writer.write_many(lines)
        if self.parquet is not None and part.rows is not None:
            self.parquet.write_table(part.rows)


class FileSet:
    """The files of one output, committed together or not at all."""

    def __init__(self) -> None:
        self.files: list[_TextFile | ParquetWriter] = []

    def add(self, writer: Any) -> Any:
        self.files.append(writer)
        return writer

    def commit(self) -> None:
        for writer in self.files:
            writer.commit()

    def abort(self) -> None:
        for writer in self.files:
            writer.abort()


def remove_files(paths: list[Path]) -> None:
    """Files an earlier run wrote that this run does not (an eval split that is now empty)."""
    for path in paths:
        path.unlink(missing_ok=True)
