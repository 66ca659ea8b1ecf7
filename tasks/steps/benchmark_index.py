"""Benchmark items as an index of hashed word sequences, and the search of texts against it.

Both sides are normalised and hashed alike (word_windows.py). The index is a few sorted
arrays — every item's n-gram keys with the item each belongs to, every item's whole-sequence
key — written once per run to the stage's work folder and memory-mapped by each worker
process, never pickled per shard.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xxhash

from sftforge.tasks.steps.word_windows import Parts, word_hash, words_of

_VERSION = 1  # bump when the hashing changes (an old index folder is then not reused)


@dataclass(frozen=True)
class Item:
    benchmark: str
    item_id: str
    text: str


@dataclass(frozen=True)
class Hit:
    item: int  # index into the index's items
    test: str  # "exact" or "ngram"
    part: int  # which part of the record (the caller's numbering)
    overlap: int = 0  # n-grams shared (the n-gram test)
    total: int = 0  # distinct n-grams of the item


class BenchmarkIndex:
    """Sorted keys of every item's n-grams and of every item as a whole, and the options."""

    def __init__(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.a = arrays
        self.meta = meta
        self.ngram: int = meta["ngram"]
        self.min_item_words: int = meta["min_item_words"]
        self.exact_min_words: int = meta["exact_min_words"]
        self.threshold: float | None = meta["threshold"]
        self.vocab = dict(zip(meta["words"], arrays["word_hashes"].tolist(), strict=True))
        self.short_lengths = [int(n) for n in arrays["short_lengths"]]

    # -------------------------------------------------------------- building and storage

    @classmethod
    def build(
        cls,
        items: list[Item],
        ngram: int = 13,
        min_item_words: int = 13,
        exact_min_words: int = 4,
        threshold: float | None = None,
    ) -> BenchmarkIndex:
        item_words = [words_of(item.text) for item in items]
        words = sorted({w for ws in item_words for w in ws})
        vocab = {w: word_hash(w) for w in words}
        parts = Parts([[vocab[w] for w in ws] for ws in item_words])
        lengths = parts.lengths
        whole = parts.whole()
        order = np.lexsort((np.arange(len(items)), whole))  # by key, then item order
        keep = order[lengths[order] > 0]
        starts, keys = parts.windows(ngram)
        owners = parts.part_of[starts]
        # Distinct (key, item) pairs, sorted by key then item.
        pairs = np.unique(np.stack([keys, owners.astype(np.uint64)], axis=1), axis=0)
        ngram_items = pairs[:, 1].astype(np.int32)
        distinct = np.bincount(ngram_items, minlength=len(items)).astype(np.int32)
        short = np.unique(lengths[(lengths >= exact_min_words) & (lengths < ngram)])
        arrays = {
            "word_hashes": np.array([vocab[w] for w in words], dtype=np.uint64),
            "whole_keys": whole[keep],
            "whole_items": keep.astype(np.int32),
            "ngram_keys": pairs[:, 0].copy(),
            "ngram_items": ngram_items,
            "item_ngrams": distinct,
            "item_lengths": lengths.astype(np.int32),
            "item_keys": whole,
            "short_lengths": short.astype(np.int32),
        }
        meta = {
            "version": _VERSION,
            "ngram": ngram,
            "min_item_words": min_item_words,
            "exact_min_words": exact_min_words,
            "threshold": threshold,
            "words": words,
            "benchmarks": [item.benchmark for item in items],
            "ids": [item.item_id for item in items],
        }
        return cls(arrays, meta)

    def digest(self) -> str:
        h = xxhash.xxh3_128()
        options = {k: v for k, v in self.meta.items() if k not in ("words",)}
        h.update(json.dumps(options, sort_keys=True, ensure_ascii=False).encode())
        for name in sorted(self.a):
            h.update(name.encode())
            h.update(np.ascontiguousarray(self.a[name]).tobytes())
        return h.hexdigest()

    def save(self, folder: Path) -> Path:
        """Into `folder/index-<digest>` (kept if it is there: the same content), atomically:
        written to a temporary folder, then renamed."""
        final = folder / f"index-{self.digest()}"
        if (final / "meta.json").is_file():
            return final
        folder.mkdir(parents=True, exist_ok=True)
        temporary = Path(tempfile.mkdtemp(prefix=".index-", dir=folder))
        for name, array in self.a.items():
            np.save(temporary / f"{name}.npy", array)
        (temporary / "meta.json").write_text(json.dumps(self.meta, ensure_ascii=False))
        try:
            os.rename(temporary, final)
        except OSError:  # another process made it first: the same bytes
            shutil.rmtree(temporary, ignore_errors=True)
        return final

    @classmethod
    def load(cls, folder: Path) -> BenchmarkIndex:
        meta = json.loads((folder / "meta.json").read_text())
        arrays = {p.stem: _load_array(p) for p in folder.glob("*.npy")}
        return cls(arrays, meta)

    # -------------------------------------------------------------------------- search

    def __len__(self) -> int:
        return len(self.meta["ids"])

    def item(self, index: int) -> tuple[str, str]:
        """(benchmark, item id) of an item."""
        return self.meta["benchmarks"][index], self.meta["ids"][index]

    def search(self, texts: list[str]) -> dict[int, Hit]:
        """Per text (part) that holds a benchmark item: its hit, the exact test before the
        n-gram test. The caller groups parts into records."""
        vocab = self.vocab
        parts = Parts([[vocab.get(w, 0) for w in words_of(t)] for t in texts])
        shared = self._shared(parts)
        exact = self._exact(parts, shared)
        return {**self._ngram(shared, exact), **exact}

    @staticmethod
    def _lookup(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
        """Where each key is in `sorted_keys` (its first place), or -1."""
        if len(sorted_keys) == 0 or len(keys) == 0:
            return np.full(len(keys), -1, dtype=np.int64)
        at = np.searchsorted(sorted_keys, keys)
        inside = at < len(sorted_keys)
        found = np.zeros(len(keys), dtype=bool)
        found[inside] = sorted_keys[at[inside]] == keys[inside]
        return np.where(found, at, -1)

    def _shared(self, parts: Parts) -> dict[tuple[int, int], set[int]]:
        """Per (part, item): the distinct n-gram keys they share (few: most parts share none)."""
        table, items = self.a["ngram_keys"], self.a["ngram_items"]
        starts, keys = parts.windows(self.ngram)
        at = self._lookup(table, keys)
        hit = at >= 0
        starts, keys, first = starts[hit], keys[hit], at[hit]
        last = np.searchsorted(table, keys, side="right")
        shared: dict[tuple[int, int], set[int]] = defaultdict(set)
        for start, key, lo, hi in zip(
            parts.part_of[starts].tolist(),
            keys.tolist(),
            first.tolist(),
            last.tolist(),
            strict=True,
        ):
            for item in items[lo:hi].tolist():  # an n-gram several items have
                shared[(start, item)].add(key)
        return shared

    def _exact(self, parts: Parts, shared: dict[tuple[int, int], set[int]]) -> dict[int, Hit]:
        """Items found whole: a part equal to an item, an item shorter than n words inside a
        part, or a longer one inside a part that shares an n-gram with it."""
        found: dict[int, int] = {}  # part -> lowest item index

        def note(part: int, item: int) -> None:
            if item < found.get(part, len(self)):
                found[part] = item

        whole_keys, whole_items = self.a["whole_keys"], self.a["whole_items"]
        at = self._lookup(whole_keys, parts.whole())
        for part in np.flatnonzero(at >= 0).tolist():
            note(part, int(whole_items[at[part]]))
        for length in self.short_lengths:
            starts, keys = parts.windows(length)
            at = self._lookup(whole_keys, keys)
            for j in np.flatnonzero(at >= 0).tolist():
                note(int(parts.part_of[starts[j]]), int(whole_items[at[j]]))
        lengths, item_keys = self.a["item_lengths"], self.a["item_keys"]
        for part, item in shared:
            length = int(lengths[item])
            start, size = int(parts.starts[part]), int(parts.lengths[part])
            if length <= size and item < found.get(part, len(self)):
                keys = parts.hash_at(np.arange(start, start + size - length + 1), length)
                if np.any(keys == item_keys[item]):
                    note(part, item)
        return {part: Hit(item, "exact", part) for part, item in found.items()}

    def _ngram(
        self, shared: dict[tuple[int, int], set[int]], exact: dict[int, Hit]
    ) -> dict[int, Hit]:
        """Per part not found whole: the item it shares most n-grams with, if that item is
        long enough for this test and they share enough (one; or `threshold` of its n-grams)."""
        lengths, totals = self.a["item_lengths"], self.a["item_ngrams"]
        best: dict[int, Hit] = {}
        for (part, item), keys in sorted(shared.items()):
            if part in exact or int(lengths[item]) < self.min_item_words:
                continue
            total = int(totals[item])
            if self.threshold is not None and len(keys) < self.threshold * total:
                continue
            if part not in best or len(keys) > best[part].overlap:
                best[part] = Hit(item, "ngram", part, len(keys), total)
        return best


def _load_array(path: Path) -> np.ndarray:
    """Memory-mapped: every worker process of the machine shares the pages."""
    try:
        return np.load(path, mmap_mode="r")
    except ValueError:  # an empty array cannot be mapped
        return np.load(path)
