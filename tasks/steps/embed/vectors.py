"""Where a run keeps its vectors: `OUT/embeddings/<stage>/part-NNNNN.parquet`, one file per
shard of the stage, rows `id` (the record's) and `vector` (float32, fixed size), written under
a temporary name and renamed whole. Readers (`sftforge map`, semantic decontamination) take
every part of a stage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sftforge.tasks.base.shards import part_name, write_table_atomic

VECTORS_DIR = "embeddings"


def vectors_part(out: Path, stage: str, shard: int) -> Path:
    return out / VECTORS_DIR / stage / part_name(shard)


def write_vectors(path: Path, ids: list[str], vectors: np.ndarray) -> None:
    """`vectors` (len(ids) x dimensions, float32) as a parquet file keyed by id."""
    matrix = np.ascontiguousarray(vectors, dtype=np.float32)
    width = matrix.shape[1] if matrix.ndim == 2 and len(ids) else 0
    column = pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1)), width)
    write_table_atomic(pa.table({"id": pa.array(ids, pa.string()), "vector": column}), path)


def read_vectors(out: Path, stage: str) -> tuple[list[str], np.ndarray]:
    """Every vector a stage wrote, in shard order: (ids, n x dimensions float32)."""
    parts = sorted((out / VECTORS_DIR / stage).glob("part-*.parquet"))
    if not parts:
        raise FileNotFoundError(f"no vectors in {out / VECTORS_DIR / stage}")
    ids: list[str] = []
    blocks: list[np.ndarray] = []
    for part in parts:
        table = pq.read_table(part)
        if table.num_rows == 0:
            continue
        column = table.column("vector").combine_chunks()
        width = column.type.list_size
        ids.extend(table.column("id").to_pylist())
        blocks.append(column.flatten().to_numpy().reshape(-1, width))
    return ids, np.vstack(blocks) if blocks else np.zeros((0, 0), np.float32)


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Each row scaled to length 1 (zero rows stay zero): dot products are then cosines."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)
