"""Ids unique within a run, made in the read stage in input order (recipe order of the
sources, then their files, then their records).

The first record with an id keeps it; a later one gets `<id>#2`, `<id>#3`, … (the next
number not yet used by any id of the run, so a literal `x#2` in the input is never taken
twice). One exception: a record whose id came from the input with its content (a ShareGPT
conversation: messages and model) identical to an earlier record's with that id keeps the
id of that earlier record: it is the same record repeated, and `dedup_exact` rejects it as a
duplicate of it. Everything else repeated (a declared `id:` template, a fallback id, a
reject's id) is made unique.

The read stage re-reads its whole input whenever it is not complete (completed shards are
converted again, only not rewritten), so the same input always gets the same ids, and a
resumed read needs no stored state.

Memory: only 64-bit hashes are kept (xxh3-64 of the id; for records with content, also one
of the id and the content), in a sorted numpy array (8 bytes each), a bitmap over it (1-2
bytes each) and a Python set of the newest (at most 1 per 16 in the array; ~70 bytes each).
Measured over 3 million ids: 10.7 bytes per record held, 21.3 for a conversation (two
hashes), and up to 18 more for a moment while the set is merged into the array. The few ids
that did repeat also have a dict entry (~100 bytes each). Cost: about 3 µs a record (4 with
content, plus 4 µs to hash a ShareGPT conversation), some 5-8% of the read stage. Two
different ids share a hash with odds of about n²/2^65 (1 in 3,700 for 100 million ids); then
the later one gets a needless `#2`, still unique and deterministic.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xxhash

_MIN_PENDING = 1 << 16


def _hash(text: str) -> int:
    # surrogatepass: an id read from bad input may hold lone surrogates, and must still hash.
    return xxhash.xxh3_64_intdigest(text.encode("utf-8", "surrogatepass"))


def content_key(record: dict[str, Any]) -> bytes:
    """A conversation's content as 16 bytes: its messages exactly as read, and its model
    (not its id, source or meta). Separators keep ("ab", "c") apart from ("a", "bc")."""
    h = xxhash.xxh3_128()
    h.update((record.get("model") or "").encode("utf-8", "surrogatepass"))
    h.update(b"\x1d")
    for message in record["messages"]:
        h.update(str(message["role"]).encode("utf-8", "surrogatepass"))
        h.update(b"\x1f")
        h.update(message["content"].encode("utf-8", "surrogatepass"))
        h.update(b"\x1e")
    return h.digest()


class HashSet64:
    """A set of 64-bit hashes: a sorted uint64 array, and the newest in a small Python set
    that is merged into the array when it reaches 1/16 of it (so each hash is copied some 16
    times over a run, in numpy: nanoseconds).

    Most lookups are of ids not seen yet: a bitmap of the array's leading bits (8 to 16 bits
    per hash, 1 to 2 bytes) answers most of them without a binary search in the array, which
    from Python costs some 3 µs a lookup; with it a lookup costs about 1 µs.
    """

    def __init__(self) -> None:
        self.sorted = np.empty(0, dtype=np.uint64)
        self.pending: set[int] = set()
        self.limit = _MIN_PENDING  # pending hashes that make a merge
        self.bitmap = b""  # bit (key >> shift) set: some hash in `sorted` has those bits
        self.shift = 64

    def __len__(self) -> int:
        return len(self.sorted) + len(self.pending)

    def __contains__(self, key: int) -> bool:
        if key in self.pending:
            return True
        bit = key >> self.shift
        if not self.bitmap or not self.bitmap[bit >> 3] >> (bit & 7) & 1:
            return False
        # np.uint64, not int: a Python int above 2**63 would make numpy compare as objects.
        at = int(self.sorted.searchsorted(np.uint64(key)))
        return at < len(self.sorted) and int(self.sorted[at]) == key

    def add(self, key: int) -> None:
        self.pending.add(key)
        if len(self.pending) >= self.limit:
            self._merge()

    def _merge(self) -> None:
        new = np.fromiter(self.pending, dtype=np.uint64, count=len(self.pending))
        merged = np.concatenate((self.sorted, new))
        merged.sort(kind="stable")  # two sorted runs: a linear merge
        self.sorted, self.pending = merged, set()
        self.limit = max(_MIN_PENDING, len(merged) >> 4)
        bits = max(16, (len(merged) * 8 - 1).bit_length())  # 2**bits >= 8 per hash
        self.shift = 64 - bits
        flags = np.zeros(1 << bits, dtype=bool)  # for a moment, a byte per bit
        flags[merged >> np.uint64(self.shift)] = True
        self.bitmap = np.packbits(flags, bitorder="little").tobytes()


class RunIds:
    """Every id of one read, made unique in the order `unique` is called."""

    def __init__(self) -> None:
        self.ids = HashSet64()  # every id given out, suffixed ones too
        self.pairs = HashSet64()  # (id, content) of the records that have content
        self.last_suffix: dict[int, int] = {}  # id -> the last n of `id#n` given out
        self.suffix_of: dict[int, int] = {}  # (id, content) -> n, when the record got `#n`

    def unique(self, record_id: str, content: bytes | None = None) -> str:
        """The id this record gets: `record_id` itself, or `record_id#n`.

        `content` (from `content_key`) only for records whose id came from the input with
        them: one identical to an earlier record with that id gets that record's id again.
        """
        key = _hash(record_id)
        # The content's hash seeded with the id's: one hash of the pair, without the id's text.
        pair = None if content is None else xxhash.xxh3_64_intdigest(content, seed=key)
        if key not in self.ids:
            self.ids.add(key)
            if pair is not None:
                self.pairs.add(pair)
            return record_id
        if pair is not None and pair in self.pairs:
            n = self.suffix_of.get(pair, 1)
            return record_id if n == 1 else f"{record_id}#{n}"
        n = self.last_suffix.get(key, 1)
        while True:
            n += 1
            candidate = f"{record_id}#{n}"
            taken = _hash(candidate)
            if taken not in self.ids:
                break
        self.last_suffix[key] = n
        self.ids.add(taken)
        if pair is not None:
            self.pairs.add(pair)
            self.suffix_of[pair] = n
        return candidate
