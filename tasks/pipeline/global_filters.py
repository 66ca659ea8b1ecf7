"""Global filters (dedup_exact, sample_per_group) as scan → decide → apply.

Both keep or reject whole rows, unchanged, and a row's fate depends on other shards (the
first occurrence of a key; a group's lowest priorities). Instead of passing every record
through one process in order, each runs in three parts:

- scan, per shard in a worker: the few values per row that the decision needs (a 16-byte
  key and the id; a group and a priority), read from those columns only;
- decide, in the flow's process, shards in input order: which rows each stage rejects;
- apply, per shard in a worker: each stage's output is the rows of its input it keeps.

Consecutive global filters fuse into one segment with one scan and one apply pass: as every
stage keeps a subset of its input's rows unchanged, all their scans can read the segment's
input. A dedup decides shard by shard as scans arrive; a sample needs every shard first,
so it ends a fused segment.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sftforge.schemas.records import SCHEMAS
from sftforge.schemas.steps import StepBase
from sftforge.tasks.base.outcome import Rejected
from sftforge.tasks.base.shards import table_records
from sftforge.tasks.steps import build_step
from sftforge.tasks.steps.dedup_exact import query_key_of, record_key
from sftforge.tasks.steps.sample_per_group import GroupSampler

_KEY = 16  # bytes of an xxh3-128 key


class DedupDecider:
    """dedup_exact: the first occurrence of a key, in shard and row order, survives.

    The keys seen are kept as a sorted array (16 bytes each, and 8 for where each was first
    seen) rather than a dict of objects: about 24 MB per million unique queries instead of
    some 200 MB. A duplicate's detail (the survivor's id) is looked up once all shards are in.
    """

    def __init__(self, kind: str) -> None:
        self.conversations = kind == "conversation"
        content = ["messages"] if self.conversations else ["instruction", "input"]
        self.columns = ["id", *content]
        self.seen = np.empty(0, dtype="S16")  # fixed-width bytes: compared as raw bytes
        self.where = np.empty(0, dtype=np.int64)  # shard << 32 | row of each key's first

    def __getstate__(self) -> dict[str, Any]:
        # A worker gets the decider to scan with, never the keys seen: they stay in the flow's
        # process (pickled into every scan call, they grew every call and every worker with N).
        return {**self.__dict__, "seen": self.seen[:0], "where": self.where[:0]}

    def scan(self, table: pa.Table) -> tuple[bytes, dict[int, str]]:
        """Every row's key (16 bytes), and for rows none could be made of, why."""
        if self.conversations:
            texts: Any = [(r,) for r in table_records(table.select(["messages"]))]
            make: Any = record_key
        else:
            columns = (table.column(c).to_pylist() for c in ("instruction", "input"))
            texts = zip(*columns, strict=True)
            make = query_key_of
        keys: list[bytes] = []
        errors: dict[int, str] = {}
        for row, values in enumerate(texts):
            try:
                keys.append(make(*values))
            except Exception as exc:  # as the step would: this record is a step error
                errors[row] = f"{type(exc).__name__}: {exc}"
                keys.append(bytes(_KEY))
        return b"".join(keys), errors

    def absorb(
        self, shard: int, scan: tuple[bytes, dict[int, str]], alive: list[int]
    ) -> dict[int, Rejected | int]:
        """Rejections among `alive` (rows of the segment's input), by position in `alive`:
        a Rejected, or for a duplicate where its survivor is (see `name_survivors`)."""
        blob, errors = scan
        rejected: dict[int, Rejected | int] = {
            p: Rejected("step_error", errors[row]) for p, row in enumerate(alive) if row in errors
        }
        positions = np.array([p for p in range(len(alive)) if p not in rejected], dtype=np.int64)
        rows = np.asarray(alive, dtype=np.int64)[positions]
        keys = np.frombuffer(blob, dtype="S16")[rows]
        unique, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        owner = (shard << 32) | rows[first]
        at = np.searchsorted(self.seen, unique)
        found = np.zeros(len(unique), dtype=bool)
        inside = at < len(self.seen)
        found[inside] = self.seen[at[inside]] == unique[inside]
        owner[found] = self.where[at[found]]
        duplicate = found[inverse] | (first[inverse] != np.arange(len(keys)))
        for j in np.flatnonzero(duplicate):
            rejected[int(positions[j])] = int(owner[inverse[j]])
        new = ~found
        self.seen = np.insert(self.seen, at[new], unique[new])
        self.where = np.insert(self.where, at[new], owner[new])
        return rejected


def name_survivors(
    verdicts: list[dict[int, Rejected | int]], ids_of: Callable[[int], list[str]]
) -> None:
    """Turn each duplicate's survivor location into its Rejected, naming the survivor's id
    (each shard's ids are read once, and only for shards that hold a survivor)."""
    wanted = sorted({v for verdict in verdicts for v in verdict.values() if isinstance(v, int)})
    names: dict[int, str] = {}
    for shard in sorted({code >> 32 for code in wanted}):
        ids = ids_of(shard)
        names.update((code, ids[code & 0xFFFFFFFF]) for code in wanted if code >> 32 == shard)
    for verdict in verdicts:
        for position, value in verdict.items():
            if isinstance(value, int):
                verdict[position] = Rejected("duplicate", names[value])


class SampleDecider:
    """sample_per_group: each group's cut-off from every shard; rows judged when applied."""

    def __init__(self, sampler: GroupSampler, kind: str) -> None:
        self.sampler = sampler
        self.columns = sampler_columns(sampler, SCHEMAS[kind].names)
        self.heaps: dict[str, list[int]] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "heaps": {}}  # as DedupDecider: workers only scan

    def scan(self, table: pa.Table) -> list[tuple[int, str, int]]:
        rows, records = capped_records(table, self.sampler)
        found = ((row, self.sampler.scan_row(r)) for row, r in zip(rows, records, strict=True))
        return [(row, *value) for row, value in found if value is not None]

    def absorb(self, shard: int, scan: list[tuple[int, str, int]], alive: list[int]) -> None:
        living = set(alive)
        for row, group, value in scan:
            if row in living:
                self.sampler.offer(self.heaps, group, value)

    def finish(self) -> GroupSampler:
        self.sampler.finish(self.heaps)
        self.heaps = {}
        return self.sampler


def sampler_columns(sampler: GroupSampler, names: list[str]) -> list[str]:
    wanted = [*sampler.prepare_columns, sampler.by]
    return [c for c in dict.fromkeys(wanted) if c in names]


def capped_records(table: pa.Table, sampler: GroupSampler) -> tuple[list[int], list[dict]]:
    """The rows of the sampler's datasets, as records of the columns it reads: the others
    (most rows, usually) are never turned into Python objects."""
    if sampler.datasets is None:
        rows = list(range(table.num_rows))
    else:
        wanted = pc.is_in(table.column("dataset"), pa.array(sorted(sampler.datasets)))
        rows = pc.indices_nonzero(pc.fill_null(wanted, False)).to_pylist()
    columns = sampler_columns(sampler, table.schema.names)
    picked = table.select(columns).take(pa.array(rows, type=pa.int64()))
    return rows, table_records(picked)


def decider(step: StepBase, seed: int, kind: str) -> DedupDecider | SampleDecider:
    if step.step == "dedup_exact":
        return DedupDecider(kind)
    return SampleDecider(build_step(step, seed), kind)


def scan_columns(deciders: list[Any]) -> list[str]:
    return list(dict.fromkeys(c for d in deciders for c in d.columns))


def scan_records(table: pa.Table, deciders: list[Any]) -> list[Any]:
    """Every decider's scan of one shard of the segment's input (a worker's job)."""
    return [d.scan(table) for d in deciders]


def judge(table: pa.Table, verdict: dict[int, Rejected] | GroupSampler) -> dict[int, Rejected]:
    """A stage's rejections among the rows of its input table, by row."""
    if isinstance(verdict, dict):
        return verdict  # decided in order, in the flow's process
    rows, records = capped_records(table, verdict)
    found = ((row, verdict(r)) for row, r in zip(rows, records, strict=True))
    return {row: result for row, result in found if isinstance(result, Rejected)}
