"""Seeded per-group caps (FLAN: at most ten instances per task, as SelFee's blog says).

The sample does not depend on input order or sharding: every record gets a priority from
xxhash(seed, id, instruction), and each group keeps its `max` lowest priorities. A first
pass finds each group's cut-off with a bounded heap (memory O(groups × max)).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from typing import Any

import xxhash
from sftforge.tasks.base.outcome import Rejected


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

    def prepare(self, shards: Iterable[list[dict[str, Any]]]) -> None:
        heaps: dict[str, list[int]] = {}
        for records in shards:
            for record in records:
                if self._applies(record):
                    self.offer(heaps, group_of(record, self.by), priority(record, self.seed))
        self.finish(heaps)

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
