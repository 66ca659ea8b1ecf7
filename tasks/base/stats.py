"""Records in and out of a stage, for one shard (its completion marker) or a whole stage."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class StageStats:
    fingerprint: str
    n_in: int
    n_out: int
    rejected: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    # A batch step's own numbers for this shard (augment: calls, tokens, cost).
    summary: dict[str, Any] | None = None
    # The read stage: per source, the records whose id was taken and got a `#n` suffix.
    id_collisions: dict[str, int] = field(default_factory=dict)
    # Read back from a marker an earlier run wrote: this run did not process the shard. Not
    # stored in markers and not part of equality (the same counts, whoever made them).
    reused: bool = field(default=False, compare=False)

    @classmethod
    def of_shard(
        cls,
        fingerprint: str,
        n_in: int,
        n_out: int,
        reasons: Iterable[str],
        seconds: float,
        summary: dict[str, Any] | None = None,
        id_collisions: dict[str, int] | None = None,
    ) -> StageStats:
        counts = Counter(reasons)
        return cls(
            fingerprint,
            n_in,
            n_out,
            dict(sorted(counts.items())),
            round(seconds, 4),
            summary,
            _nonzero(id_collisions or {}),
        )

    @classmethod
    def merge(cls, shards: list[StageStats]) -> StageStats:
        """A whole stage: its shards' counts summed (the fingerprint is per shard: none)."""
        rejected: Counter[str] = Counter()
        collisions: Counter[str] = Counter()
        for stats in shards:
            rejected.update(stats.rejected)
            collisions.update(stats.id_collisions)
        return cls(
            fingerprint="",
            n_in=sum(s.n_in for s in shards),
            n_out=sum(s.n_out for s in shards),
            rejected=dict(sorted(rejected.items())),
            seconds=round(sum(s.seconds for s in shards), 3),
            id_collisions=_nonzero(collisions),
        )

    @property
    def n_rejected(self) -> int:
        return sum(self.rejected.values())

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "fingerprint": self.fingerprint,
            "in": self.n_in,
            "out": self.n_out,
            "rejected": self.rejected,
            "seconds": self.seconds,
        }
        if self.summary is not None:
            body["summary"] = self.summary
        if self.id_collisions:  # only where there were any: other markers stay as they were
            body["id_collisions"] = self.id_collisions
        return body

    @classmethod
    def from_json(cls, body: dict[str, Any], reused: bool = False) -> StageStats:
        """`reused`: the body is an earlier run's marker, loaded to skip its shard."""
        return cls(
            body["fingerprint"],
            body["in"],
            body["out"],
            body["rejected"],
            body["seconds"],
            body.get("summary"),
            body.get("id_collisions", {}),
            reused,
        )


def reused_shards(shards: list[StageStats]) -> int:
    return sum(1 for s in shards if s.reused)


def _nonzero(counts: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in sorted(counts.items()) if v}


def stage_totals(
    name: str,
    shards: list[StageStats],
    summary_key: str | None = None,
    combine: Callable[[list[dict[str, Any]]], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A stage's manifest entry: its shards summed, and the step's summary combined."""
    total = StageStats.merge(shards)
    entry: dict[str, Any] = {
        "name": name,
        "in": total.n_in,
        "out": total.n_out,
        "rejected": total.rejected,
        "seconds": total.seconds,
        # Shards an earlier run had finished, so this one skipped them (a rerun resumes).
        "reused_shards": reused_shards(shards),
    }
    parts = [s.summary for s in shards if s.summary is not None]
    if parts and summary_key and combine is not None:
        entry[summary_key] = combine(parts)
    return entry
