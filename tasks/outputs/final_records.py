"""What every output reads: the final stage's records, streamed shard by shard, and their
seeded train/eval split (when the recipe has `split:`)."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xxhash

from sftforge.schemas.recipe import SplitConfig
from sftforge.tasks.base.shards import read_records, stage_part


def _split_key(record: dict[str, Any], seed: int) -> int:
    return xxhash.xxh3_64_intdigest(f"split\x1f{seed}\x1f{record['id']}".encode())


class Splitter:
    """Seeded train/eval assignment that does not depend on order or sharding."""

    def __init__(self, config: SplitConfig | None, seed: int) -> None:
        self.config, self.seed = config, seed
        self.threshold: int | None = None

    @property
    def needs_pass(self) -> bool:
        """An exact eval size needs a first pass over the ids to find the cut-off."""
        return self.config is not None and self.config.eval_size is not None

    def prepare(self, records: Iterator[dict[str, Any]]) -> None:
        if self.config is None:
            return
        if self.config.eval_fraction is not None:
            self.threshold = int(self.config.eval_fraction * 2**64) - 1
            return
        size = self.config.eval_size or 0
        heap: list[int] = []  # max-heap (negated) of the `size` lowest keys
        for record in records:
            key = -_split_key(record, self.seed)
            if len(heap) < size:
                heapq.heappush(heap, key)
            elif key > heap[0]:
                heapq.heapreplace(heap, key)
        self.threshold = -heap[0] if heap else -1

    @property
    def names(self) -> list[str]:
        wants_eval = self.config is not None and bool(
            self.config.eval_fraction or self.config.eval_size
        )
        return ["train", "eval"] if wants_eval else ["train"]

    def __call__(self, record: dict[str, Any]) -> str:
        if self.threshold is None:
            return "train"
        return "eval" if _split_key(record, self.seed) <= self.threshold else "train"


Reader = Callable[[list[str] | None], Iterator[dict[str, Any]]]


@dataclass(frozen=True)
class FinalRecords:
    """The final records of a run as the output writers see them."""

    out: Path
    kind: str
    seed: int
    splitter: Splitter
    split_used: bool  # the recipe has `split:` (JSON exports then name their files per split)
    read: Reader  # columns (None: all) -> a fresh pass over the records, in input order
    stage: str = ""  # the stage whose part files hold them (parquet copies those), and
    shards: int = 0  # how many there are

    def records(self, columns: list[str] | None = None) -> Iterator[dict[str, Any]]:
        return self.read(columns)

    @classmethod
    def of_stage(
        cls, out: Path, stage: str, kind: str, shards: int, split: SplitConfig | None, seed: int
    ) -> FinalRecords:
        """A run's final stage, with its splitter prepared (an exact eval size reads every id
        once first)."""

        def read(columns: list[str] | None = None) -> Iterator[dict[str, Any]]:
            for shard in range(shards):
                yield from read_records(stage_part(out, stage, shard), kind, columns)

        splitter = Splitter(split, seed)
        splitter.prepare(read(["id"]) if splitter.needs_pass else iter(()))
        return cls(out, kind, seed, splitter, split is not None, read, stage, shards)

    @classmethod
    def of_records(
        cls,
        out: Path,
        kind: str,
        seed: int,
        splitter: Splitter | Callable[[dict[str, Any]], str],
        records: Callable[[], Iterator[dict[str, Any]]],
    ) -> FinalRecords:
        """Records from anywhere (a test's list), all columns every pass, no part files: what
        the training formats need (they take a plain train/eval function for a splitter)."""

        def read(columns: list[str] | None = None) -> Iterator[dict[str, Any]]:
            return records()

        return cls(out, kind, seed, splitter, False, read)  # type: ignore[arg-type]
