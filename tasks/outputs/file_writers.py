"""Streaming, atomic files for the outputs: JSON lists, JSON Lines, parquet.

Each file is written under a temporary name in its final folder and renamed when committed
(tasks/outputs/split_files.py commits an output's files together); memory holds one buffered
parquet row group at most.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

from sftforge.tasks.base.atomic import temp_path, write_bytes_atomic


def dumps(value: Any) -> str:
    # Compact separators: token files are mostly numbers, and the spaces would be a third of them.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def write_json_atomic(path: Path, value: Any) -> None:
    text = json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    write_bytes_atomic(path, text.encode("utf-8"))


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


class TextFile:
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


class JsonListWriter(TextFile):
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


class JsonlWriter(TextFile):
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
        """Rows in arrow form (a batch of examples; arrow_rows.rows_table makes one from dicts)."""
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
