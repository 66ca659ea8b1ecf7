"""Exact deduplication, global across shards and sources: the first occurrence in input order
survives. Conversations: the whole cleaned conversation. Instructions: the user query
(instruction + input), SelFee's user-query dedup.

As a filter pass: workers scan each shard for a 16-byte key per row, the flow's process decides
shard after shard in input order, workers write each shard's survivors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Literal

import numpy as np
import pyarrow as pa
import xxhash

from sftforge.schemas.steps import register_step
from sftforge.tasks.base.outcome import Rejected
from sftforge.tasks.base.shards import table_records
from sftforge.tasks.base.step_protocol import FilterPass, FilterPassStep, StepContext


def conversation_key(messages: list[dict[str, Any]]) -> bytes:
    """xxh3-128 over role and whitespace-normalised content, with separators.

    Stable across processes and machines (unlike Python's salted `hash()`, which let
    OpenChat v1's duplicates survive when they landed in different Ray workers).
    """
    h = xxhash.xxh3_128()
    for message in messages:
        h.update(message["role"].encode())
        h.update(b"\x1f")
        h.update(" ".join(message["content"].split()).encode())
        h.update(b"\x1e")
    return h.digest()


def query_key(record: dict[str, Any]) -> bytes:
    """SelFee's user-query dedup: the normalised instruction and input."""
    return query_key_of(record["instruction"], record.get("input", ""))


def query_key_of(instruction: str, input_text: str) -> bytes:
    # One digest of the joined bytes: the same value as feeding the parts one by one.
    joined = " ".join(instruction.split()) + "\x1f" + " ".join(input_text.split())
    return xxhash.xxh3_128_digest(joined.encode())


def record_key(record: dict[str, Any]) -> bytes:
    return conversation_key(record["messages"]) if "messages" in record else query_key(record)


_KEY = 16  # bytes of an xxh3-128 key


class DedupPass(FilterPass):
    """The keys seen are kept as a sorted array (16 bytes each, and 8 for where each was first
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
        # A worker gets the pass to scan with, never the keys seen: they stay in the flow's
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
            except Exception as exc:  # as a record step would: this record is a step error
                errors[row] = f"{type(exc).__name__}: {exc}"
                keys.append(bytes(_KEY))
        return b"".join(keys), errors

    def decide(
        self, shard: int, scan: tuple[bytes, dict[int, str]], alive: list[int]
    ) -> dict[int, Rejected | int]:
        """A Rejected, or for a duplicate where its survivor is (named in `finish`)."""
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

    def finish(
        self, verdicts: list[dict[int, Rejected | int]], ids_of: Callable[[int], list[str]]
    ) -> list[dict[int, Rejected | int]]:
        """Each duplicate's survivor location becomes its Rejected, naming the survivor's id
        (each shard's ids are read once, and only for shards that hold a survivor)."""
        self.seen, self.where = self.seen[:0], self.where[:0]  # the largest thing held here
        wanted = sorted({v for verdict in verdicts for v in verdict.values() if isinstance(v, int)})
        names: dict[int, str] = {}
        for shard in sorted({code >> 32 for code in wanted}):
            ids = ids_of(shard)
            names.update((code, ids[code & 0xFFFFFFFF]) for code in wanted if code >> 32 == shard)
        for verdict in verdicts:
            for position, value in verdict.items():
                if isinstance(value, int):
                    verdict[position] = Rejected("duplicate", names[value])
        return verdicts

    def judge(self, table: pa.Table, verdict: dict[int, Rejected]) -> dict[int, Rejected]:
        return verdict  # decided in order, in the flow's process


@register_step
class DedupExactStep(FilterPassStep):
    """Exact dedup, first occurrence in input order kept: conversations on the whole cleaned
    conversation, instructions on the user query (instruction + input, SelFee's)."""

    decides_per_shard: ClassVar[bool] = True
    step: Literal["dedup_exact"]

    def make_pass(self, context: StepContext, kind: str) -> DedupPass:
        return DedupPass(kind)
