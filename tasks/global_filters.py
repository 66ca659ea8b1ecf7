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

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from schemas.records import SCHEMAS
from schemas.steps import StepBase
from tasks.dedup_exact import query_key_of, record_key
from tasks.outcome import Rejected
from tasks.sample_per_group import GroupSampler
from tasks.shards import table_records
from tasks.steps import build_step

_KEY = 16  # bytes of an xxh3-128 key


class DedupDecider:
    """dedup_exact: the first occurrence of a key, in shard and row order, survives."""

    def __init__(self, kind: str) -> None:
        self.conversations = kind == "conversation"
        content = ["messages"] if self.conversations else ["instruction", "input"]
        self.columns = ["id", *content]
        self.first_seen: dict[bytes, str] = {}

    def scan(self, table: pa.Table) -> tuple[list[bytes | str], list[str]]:
        """Per row its key, or why none could be made (a step error, as the step would)."""
        if self.conversations:
            texts: Any = [(r,) for r in table_records(table.select(["messages"]))]
            make: Any = record_key
        else:
            columns = (table.column(c).to_pylist() for c in ("instruction", "input"))
            texts = zip(*columns, strict=True)
            make = query_key_of
        keys: list[bytes | str] = []
        for values in texts:
            try:
                keys.append(make(*values))
            except Exception as exc:
                keys.append(f"{type(exc).__name__}: {exc}")
        return keys, table.column("id").to_pylist()

    def absorb(self, scan: tuple[list[bytes | str], list[str]], alive: list[int]) -> dict:
        """Rejections among `alive` (rows of the segment's input), by position in `alive`."""
        keys, ids = scan
        rejected: dict[int, Rejected] = {}
        for position, row in enumerate(alive):
            key = keys[row]
            if isinstance(key, str):
                rejected[position] = Rejected("step_error", key)
                continue
            survivor = self.first_seen.get(key)
            if survivor is None:
                self.first_seen[key] = ids[row]
            else:
                rejected[position] = Rejected("duplicate", survivor)
        return rejected


class SampleDecider:
    """sample_per_group: each group's cut-off from every shard; rows judged when applied."""

    def __init__(self, sampler: GroupSampler, kind: str) -> None:
        self.sampler = sampler
        self.columns = sampler_columns(sampler, SCHEMAS[kind].names)
        self.heaps: dict[str, list[int]] = {}

    def scan(self, table: pa.Table) -> list[tuple[int, str, int]]:
        rows, records = capped_records(table, self.sampler)
        found = ((row, self.sampler.scan_row(r)) for row, r in zip(rows, records, strict=True))
        return [(row, *value) for row, value in found if value is not None]

    def absorb(self, scan: list[tuple[int, str, int]], alive: list[int]) -> None:
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
