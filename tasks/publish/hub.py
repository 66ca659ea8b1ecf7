"""Publishing a run's dataset on the Hugging Face Hub.

The folder that goes up is built locally first — `--dry-run DIR` stops there — in the
Hub's layout: `data/{split}-{i:05d}-of-{n:05d}.parquet` (each at most `max_shard_bytes`)
and a README.md dataset card. The token comes from HF_TOKEN or a Prefect Secret block; it
is handed to huggingface_hub's client and nothing else (never written, logged or shown).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

MAX_SHARD_BYTES = 500 * 1000 * 1000  # the Hub's recommended parquet shard size
# Rows are written in slices of at most this many in-memory bytes, so a shard can be closed
# before the slice that would take it over the limit.
_SLICE_FRACTION = 8


class HubError(Exception):
    """A push that cannot go ahead (nothing to push, a bad target folder, no token)."""


@dataclass
class SplitFiles:
    name: str
    files: list[str] = field(default_factory=list)  # relative to the folder
    num_examples: int = 0
    num_bytes: int = 0  # in-memory (Arrow) size, the `datasets` convention
    download_size: int = 0  # parquet bytes


@dataclass
class HubFolder:
    path: Path
    schema: pa.Schema
    splits: list[SplitFiles]


def dataset_splits(out: Path, final: str | None = None) -> dict[str, list[Path]]:
    """The run's final records by split: OUT/dataset/[<split>/]part-*.parquet, or the final
    stage's parts when the recipe wrote no parquet output (`final`: that stage's name, when
    known; else the manifest's last stage)."""
    folder = out / "dataset"
    splits = {
        sub.name: sorted(sub.glob("part-*.parquet"))
        for sub in sorted(folder.glob("*"))
        if sub.is_dir() and any(sub.glob("part-*.parquet"))
    }
    if splits:
        return splits
    parts = sorted(folder.glob("part-*.parquet"))
    if not parts:
        final = final or json.loads((out / "manifest.json").read_text())["stages"][-1]["name"]
        parts = sorted((out / final).glob("part-*.parquet"))
    if not parts:
        raise HubError(f"{out}: no parquet records to push")
    return {"train": parts}


def _slices(table: pa.Table, max_shard_bytes: int) -> list[pa.Table]:
    limit = max(max_shard_bytes // _SLICE_FRACTION, 1)
    if table.num_rows == 0:
        return []
    per_row = max(table.nbytes / table.num_rows, 1.0)
    rows = max(int(limit / per_row), 1)
    return [table.slice(i, rows) for i in range(0, table.num_rows, rows)]


def _leaf_columns(schema: pa.Schema) -> int:
    sink = pa.BufferOutputStream()
    pq.write_table(schema.empty_table(), sink)
    return pq.read_metadata(pa.BufferReader(sink.getvalue())).num_columns


def write_split(
    parts: list[Path], split: str, data_dir: Path, schema: pa.Schema, max_shard_bytes: int
) -> SplitFiles:
    """Copy a split's records into shards of at most `max_shard_bytes`, named once their
    number is known. A shard is closed before a slice that could take it over the limit:
    a slice's Arrow size bounds its compressed size, and the footer written at close grows
    with the row groups (a generous allowance per column chunk)."""
    result = SplitFiles(split)
    written: list[Path] = []
    writer: pq.ParquetWriter | None = None
    handle: Any = None
    row_groups = 0
    per_row_group = 128 * _leaf_columns(schema)

    def close() -> None:
        nonlocal writer, handle, row_groups
        if writer is not None:
            writer.close()
            handle.close()
        writer = handle = None
        row_groups = 0

    for part in parts:
        table = pq.read_table(part).cast(schema)
        result.num_examples += table.num_rows
        result.num_bytes += table.nbytes
        for piece in _slices(table, max_shard_bytes):
            footer = 4096 + per_row_group * (row_groups + 1)
            if writer is not None and handle.tell() + piece.nbytes + footer > max_shard_bytes:
                close()
            if writer is None:
                path = data_dir / f".{split}-{len(written):05d}.parquet.tmp"
                written.append(path)
                handle = pa.OSFile(str(path), "wb")
                # No min/max statistics: long text makes them large, and the Hub's readers
                # scan these files whole.
                writer = pq.ParquetWriter(
                    handle, schema, compression="zstd", write_statistics=False
                )
            writer.write_table(piece, row_group_size=piece.num_rows)
            row_groups += 1
    close()
    if not written:  # an empty split still gets one (empty) file, so it loads
        path = data_dir / f".{split}-00000.parquet.tmp"
        pq.write_table(schema.empty_table(), path, compression="zstd")
        written.append(path)
    for i, tmp in enumerate(written):
        final = data_dir / f"{split}-{i:05d}-of-{len(written):05d}.parquet"
        tmp.rename(final)
        result.files.append(f"data/{final.name}")
        result.download_size += final.stat().st_size
    return result


def _prepare_target(dest: Path) -> None:
    """An empty folder, or one this command made before (README.md and data/ only)."""
    if dest.exists():
        extra = [p.name for p in dest.iterdir() if p.name not in ("README.md", "data")]
        if extra:
            raise HubError(f"{dest}: not empty ({extra[0]}); give a new or empty folder")
        shutil.rmtree(dest / "data", ignore_errors=True)
        (dest / "README.md").unlink(missing_ok=True)
    (dest / "data").mkdir(parents=True)


def build_folder(out: Path, dest: Path, max_shard_bytes: int = MAX_SHARD_BYTES) -> HubFolder:
    """Write the data shards (the card is written separately, from the result)."""
    splits = dataset_splits(out)
    _prepare_target(dest)
    first = next(p for parts in splits.values() for p in parts)
    schema = pq.read_schema(first).remove_metadata()
    result = [
        write_split(parts, split, dest / "data", schema, max_shard_bytes)
        for split, parts in splits.items()
    ]
    return HubFolder(dest, schema, result)


# ---------------------------------------------------------------- token and upload


def hub_token(secret_block: str | None = None) -> str:
    """HF_TOKEN, else the value of the named Prefect Secret block."""
    token = os.environ.get("HF_TOKEN")
    if token:
        return token
    if secret_block:
        from prefect.blocks.system import Secret

        try:
            value = Secret.load(secret_block).get()
        except ValueError:  # Prefect's "Unable to find block document named …"
            raise HubError(f"--token-block {secret_block}: no such Prefect Secret block") from None
        if value:
            return str(value)
    raise HubError(
        "no Hub token: set HF_TOKEN, or store it in a Prefect Secret block and pass "
        "--token-block NAME"
    )


def redact(text: str, token: str | None) -> str:
    return text.replace(token, "***") if token else text


def upload(folder: Path, repo_id: str, token: str, private: bool, commit_message: str) -> str:
    """Create the dataset repo if needed and commit the folder in one commit, replacing the
    data shards of an earlier push. Honours HF_ENDPOINT. Returns the commit URL."""
    from huggingface_hub import HfApi

    api = HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None, token=token)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    info = api.upload_folder(
        folder_path=str(folder),
        repo_id=repo_id,
        repo_type="dataset",
        commit_message=commit_message,
        delete_patterns=["data/*.parquet"],
    )
    return str(getattr(info, "commit_url", info))
