"""Seeded per-group caps (FLAN: at most ten instances per task, as SelFee's blog says).

The sample does not depend on input order or sharding: every record gets a priority from
xxhash(seed, id, instruction), and each group keeps its `max` lowest priorities. A first
pass finds each group's cut-off with a bounded heap (memory O(groups × max)); as a filter
pass, workers scan each shard's priorities and the flow's process keeps the heaps.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
import xxhash
from pydantic import Field

from sftforge.schemas.records import SCHEMAS
from sftforge.schemas.steps import register_step
from sftforge.tasks.base.outcome import Rejected
from sftforge.tasks.base.shards import table_records
from sftforge.tasks.base.step_protocol import FilterPass, FilterPassStep, StepContext


def group_of(record: dict[str, Any], by: str) -> str:
    meta = record.get("meta") or {}
    value = meta.get(by[5:]) if by.startswith("meta.") else record.get(by)
    return "" if value is None else str(value)


def priority(record: dict[str, Any], seed: int) -> int:
    text = record.get("instruction") or record.get("id", "")
    return xxhash.xxh3_64_intdigest(f"{seed}\x1f{record['id']}\x1f{text}".encode())


class GroupSampler:
    def __init__(self, by: str, max_per_group: int, datasets: list[str] | None, seed: int) -> None:
        self.by, self.max, self.seed = by, max_per_group, seed
        self.datasets = set(datasets) if datasets is not None else None
        self.cutoff: dict[str, int] = {}  # groups over the cap: highest priority kept

    @property
    def prepare_columns(self) -> list[str]:
        """What the first pass reads: the group, and what the priority is made of."""
        return ["id", "dataset", "source", "instruction", "meta"]

    def _applies(self, record: dict[str, Any]) -> bool:
        return self.datasets is None or record.get("dataset") in self.datasets

    def offer(self, heaps: dict[str, list[int]], group: str, value: int) -> None:
        """One record's priority into its group's heap of the `max` lowest priorities."""
        heap = heaps.setdefault(group, [])
        if len(heap) < self.max:
            heapq.heappush(heap, -value)  # negated: a max-heap
        elif -value > heap[0]:
            heapq.heapreplace(heap, -value)

    def finish(self, heaps: dict[str, list[int]]) -> None:
        """The cut-offs of the groups over the cap, once every record was offered."""
        self.cutoff = {group: -heap[0] for group, heap in heaps.items() if len(heap) >= self.max}

    def scan_row(self, record: dict[str, Any]) -> tuple[str, int] | None:
        """What `offer` needs of a record (its group and priority), or None if not capped."""
        if not self._applies(record):
            return None
        return group_of(record, self.by), priority(record, self.seed)

    def __call__(self, record: dict[str, Any]) -> dict[str, Any] | Rejected:
        if not self._applies(record):
            return record
        group = group_of(record, self.by)
        cutoff = self.cutoff.get(group)
        if cutoff is not None and priority(record, self.seed) > cutoff:
            return Rejected("over_group_cap", f"{self.by}={group!r}: more than {self.max}")
        return record


class SamplePass(FilterPass):
    """Each group's cut-off from every shard's priorities; rows are judged when applied."""

    def __init__(self, sampler: GroupSampler, kind: str) -> None:
        self.sampler = sampler
        self.columns = sampler_columns(sampler, SCHEMAS[kind].names)
        self.heaps: dict[str, list[int]] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "heaps": {}}  # workers only scan and judge

    def scan(self, table: pa.Table) -> list[tuple[int, str, int]]:
        rows, records = capped_records(table, self.sampler)
        found = ((row, self.sampler.scan_row(r)) for row, r in zip(rows, records, strict=True))
        return [(row, *value) for row, value in found if value is not None]

    def decide(self, shard: int, scan: list[tuple[int, str, int]], alive: list[int]) -> None:
        living = set(alive)
        for row, group, value in scan:
            if row in living:
                self.sampler.offer(self.heaps, group, value)
        return None  # a sample needs every shard before it can decide

    def finish(self, verdicts: list[Any], ids_of: Callable[[int], list[str]]) -> list[Any]:
        self.sampler.finish(self.heaps)
        self.heaps = {}
        return [self.sampler] * len(verdicts)

    def judge(self, table: pa.Table, verdict: GroupSampler) -> dict[int, Rejected]:
        rows, records = capped_records(table, verdict)
        found = ((row, verdict(r)) for row, r in zip(rows, records, strict=True))
        return {row: result for row, result in found if isinstance(result, Rejected)}


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


@register_step
class SamplePerGroupStep(FilterPassStep):
    """Keep at most `max` records per group, a seeded sample (FLAN: ten per task)."""

    step: Literal["sample_per_group"]
    by: str = "dataset"  # `dataset`, `source`, or `meta.<field>`
    max: int = Field(ge=1)
    # Only records of these datasets are sampled; the others pass. None: all records.
    datasets: list[str] | None = None

    def make_pass(self, context: StepContext, kind: str) -> SamplePass:
        return SamplePass(GroupSampler(self.by, self.max, self.datasets, context.seed), kind)
