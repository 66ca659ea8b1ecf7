"""Wrong input fails loudly (#14 §3): per source, how many records the read stage rejects
and why — from a sample read through the real readers and mapping (`sftforge validate`), or
from a finished read stage's shards in OUT (`sftforge run`) — and the sources whose share
of rejects is more than the recipe allows (`read_check:` in the recipe).

A source whose every record is rejected is always a failure: an Alpaca file given to a
ShareGPT source is not a dataset with defects but the wrong input. A source with no records
at all (an empty file) is not: it is reported as empty and the run goes on.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from sftforge.schemas.recipe import READ_STAGE, Recipe, SourceConfig
from sftforge.tasks.base.shards import reject_part, stage_part
from sftforge.tasks.pipeline.read_stage import SourceConverter
from sftforge.tasks.readers.sources import iter_source

_TOP_REASONS = 3  # reasons named in a message; the rest are counted as "…"
_DETAIL_CHARS = 120  # an example detail, cut: the message stays one readable line
_FIELDS_SHOWN = 8


@dataclass
class SourceReads:
    """One source's records at read: how many, and the rejects by reason."""

    name: str
    records: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)  # reason -> its first detail
    complete: bool = True  # every record of the source was counted (not a sample's head)
    fields: list[str] | None = None  # the first record's fields, when it is an object

    @property
    def n_rejected(self) -> int:
        return sum(self.rejected.values())

    @property
    def share(self) -> float:
        return self.n_rejected / self.records if self.records else 0.0

    def add_reject(self, reason: str, detail: str, count: int = 1) -> None:
        self.rejected[reason] += count
        self.examples.setdefault(reason, detail)


def allowed_share(recipe: Recipe, source: str) -> float:
    check = recipe.read_check
    return check.per_source.get(source, check.max_rejected_share)


def too_many_rejected(reads: SourceReads, limit: float) -> bool:
    """Every record rejected, or a larger share than `limit`; an empty source is neither."""
    if not reads.records:
        return False
    return reads.n_rejected == reads.records or reads.share > limit


def percent(share: float) -> str:
    # 99.96 % is not "100%": only all is all.
    text = f"{share:.0%}"
    if text == "100%" and share < 1:
        return ">99%"
    return "<1%" if text == "0%" and share > 0 else text


def reasons_text(reads: SourceReads) -> str:
    """`invalid_record 52 (alpaca.json#0: …), missing_field 3, …`: the top reasons with
    their counts, the first one with an example detail."""
    top = reads.rejected.most_common()
    parts = []
    for i, (reason, count) in enumerate(top[:_TOP_REASONS]):
        part = f"{reason} {count}"
        if i == 0 and reads.examples.get(reason):
            detail = " ".join(reads.examples[reason].split())
            if len(detail) > _DETAIL_CHARS:
                detail = detail[: _DETAIL_CHARS - 1] + "…"
            part += f" ({detail})"
        parts.append(part)
    if len(top) > _TOP_REASONS:
        parts.append(f"{len(top) - _TOP_REASONS} more reasons")
    return ", ".join(parts)


def counts_text(reads: SourceReads) -> str:
    """`52 of 52 records rejected at read (100%)`; a sample says "of the first"."""
    first = "" if reads.complete else "the first "
    return (
        f"{reads.n_rejected} of {first}{reads.records} records rejected at read "
        f"({percent(reads.share)})"
    )


def failure_text(reads: SourceReads, limit: float) -> str:
    """One source's failure, for the run's one line and validate's."""
    allowed = "" if reads.n_rejected == reads.records else f", more than the {limit:g} allowed"
    text = f"source {reads.name}: {counts_text(reads)}{allowed}: {reasons_text(reads)}"
    if reads.fields is not None and reads.n_rejected == reads.records:
        shown = ", ".join(reads.fields[:_FIELDS_SHOWN])
        more = ", …" if len(reads.fields) > _FIELDS_SHOWN else ""
        text += f"; its records have the fields {shown}{more}" if shown else ""
    return text


# --------------------------------------------------------------------- validate: a sample


def sample_source(source: SourceConfig, files: list[Path] | None, sample: int) -> SourceReads:
    """The first `sample` records of a source through the read stage's own converter (its
    reader, mapping, converter and preprocess steps), counted; the source is not read on."""
    reads = SourceReads(source.name)
    convert = SourceConverter(source)
    items = iter_source(source, files)
    try:
        for item in items:
            if reads.fields is None and isinstance(item.value, dict):
                reads.fields = [str(key) for key in item.value]
            for _record, reject in convert(item):
                if reads.records >= sample:
                    reads.complete = False
                    return reads
                reads.records += 1
                if reject is not None:
                    reads.add_reject(reject["reason"], reject["detail"])
            if reads.records >= sample:
                # Whether more follow: one more item, not the rest of the input.
                reads.complete = next(items, None) is None
                return reads
    finally:
        close = getattr(items, "close", None)
        if close is not None:
            close()  # the reader's files, now rather than when the generator is collected
    return reads


def sample_sources(recipe: Recipe, files: dict[str, list[Path]], sample: int) -> list[SourceReads]:
    return [sample_source(s, files.get(s.name), sample) for s in recipe.sources]


# ----------------------------------------------------------------------- run: OUT's shards


def out_reads(recipe: Recipe, out: Path, shards: int) -> list[SourceReads]:
    """Per source, the read stage's records and rejects as its `shards` parts in OUT hold
    them (only the `source`, `reason` and `detail` columns are read)."""
    reads = {s.name: SourceReads(s.name) for s in recipe.sources}
    for shard in range(shards):
        kept = stage_part(out, READ_STAGE, shard)
        if kept.exists():
            table = pq.read_table(kept, columns=["source"])
            for row in table.group_by("source").aggregate([("source", "count")]).to_pylist():
                _source(reads, row["source"]).records += row["source_count"]
        rejected = reject_part(out, READ_STAGE, shard)
        if rejected.exists():
            table = pq.read_table(rejected, columns=["source", "reason", "detail"])
            # Without threads: "first" is then the first in input order.
            grouped = table.group_by(["source", "reason"], use_threads=False).aggregate(
                [("detail", "count"), ("detail", "first")]
            )
            for row in grouped.to_pylist():
                found = _source(reads, row["source"])
                found.records += row["detail_count"]
                found.add_reject(row["reason"], row["detail_first"] or "", row["detail_count"])
    return list(reads.values())


def _source(reads: dict[str, SourceReads], name: Any) -> SourceReads:
    name = str(name)
    if name not in reads:  # a converter that names another source: counted as its own
        reads[name] = SourceReads(name)
    return reads[name]


def read_failure(recipe: Recipe, out: Path, shards: int) -> str | None:
    """The run's read check: None, or one line naming each source with too many rejects,
    its share and its top reasons, and where the rejects are."""
    failing = [
        failure_text(reads, allowed_share(recipe, reads.name))
        for reads in out_reads(recipe, out, shards)
        if too_many_rejected(reads, allowed_share(recipe, reads.name))
    ]
    if not failing:
        return None
    return "; ".join(failing) + f" — rejects in {out / 'rejects' / READ_STAGE}"
