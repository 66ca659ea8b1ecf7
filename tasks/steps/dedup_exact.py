"""Exact deduplication on the cleaned conversation, global across shards and sources."""

from __future__ import annotations

from typing import Any

import xxhash
from sftforge.tasks.base.outcome import Rejected


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


class ExactDeduplicator:
    """Stateful: feed records in input order; the first occurrence survives."""

    def __init__(self) -> None:
        self.first_seen: dict[bytes, str] = {}

    def __call__(self, record: dict[str, Any]) -> dict[str, Any] | Rejected:
        key = record_key(record)
        survivor = self.first_seen.get(key)
        if survivor is not None:
            return Rejected("duplicate", survivor)
        self.first_seen[key] = record["id"]
        return record
