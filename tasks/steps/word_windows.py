"""Word windows of texts as stable 64-bit hashes, every window of a batch of texts at once.

Texts are normalised (NFKC, case folded, every run of characters that are not letters or
digits one space) and split into words; each word is a 64-bit number (the caller's: an xxh3
of its UTF-8 bytes, or 0 for a word that cannot match). A run of words hashes to a polynomial
of its words' numbers modulo 2**64, mixed at the end; with prefix sums of w[j] * P**-j, any
window's hash is two lookups and a product, so every window of every text of a shard is hashed
in a few numpy operations, whatever the window length. All of it is uint64 arithmetic (no
Python `hash()`): the same in every process and on every machine.
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np
import xxhash

_P = 0x9E3779B97F4A7C15  # odd, so invertible modulo 2**64
_P_INV = pow(_P, -1, 1 << 64)
_LENGTH_SALT = np.uint64(0xD6E8FEB86659FD93)
_NON_WORD = re.compile(r"[\W_]+")


def words_of(text: str) -> list[str]:
    """The normalised words of a text: case, width, punctuation and spacing folded."""
    return _NON_WORD.sub(" ", unicodedata.normalize("NFKC", text).casefold()).split()


def word_hash(word: str) -> int:
    return xxhash.xxh3_64_intdigest(word.encode()) or 1  # 0 stands for "no benchmark has it"


class _Powers:
    """P**k and P**-k modulo 2**64, grown as longer shards come (cached per process)."""

    def __init__(self) -> None:
        self.up = np.ones(1, dtype=np.uint64)
        self.down = np.ones(1, dtype=np.uint64)

    def upto(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        if len(self.up) <= n:
            size = max(n + 1, 2 * len(self.up))
            self.up = np.cumprod(np.full(size, _P, dtype=np.uint64)) * np.uint64(_P_INV)
            self.down = np.cumprod(np.full(size, _P_INV, dtype=np.uint64)) * np.uint64(_P)
        return self.up, self.down


_powers = _Powers()


def _mix(h: np.ndarray, length: np.ndarray | int) -> np.ndarray:
    """splitmix64's finaliser, with the window length folded in (lengths never collide)."""
    x = h ^ (np.asarray(length, dtype=np.uint64) * _LENGTH_SALT)
    x = (x ^ (x >> np.uint64(33))) * np.uint64(0xFF51AFD7ED558CCD)
    x = (x ^ (x >> np.uint64(33))) * np.uint64(0xC4CEB9FE1A85EC53)
    return x ^ (x >> np.uint64(33))


class Parts:
    """Texts (parts) as one array of word hashes, with where each part starts and ends."""

    def __init__(self, word_lists: list[list[int]]) -> None:
        lengths = np.fromiter((len(w) for w in word_lists), dtype=np.int64, count=len(word_lists))
        self.starts = np.concatenate(([0], np.cumsum(lengths)))[:-1]
        self.lengths = lengths
        n = int(lengths.sum())
        flat = np.fromiter((h for words in word_lists for h in words), dtype=np.uint64, count=n)
        up, down = _powers.upto(n)
        self.up = up
        # prefix[k] = sum of w[j] * P**-j for j < k: a window's hash from two of them.
        self.prefix = np.concatenate(([np.uint64(0)], np.cumsum(flat * down[:n])))
        self.end_of = np.repeat(self.starts + lengths, lengths)  # per word: its part's end
        self.part_of = np.repeat(np.arange(len(word_lists)), lengths)

    def windows(self, length: int) -> tuple[np.ndarray, np.ndarray]:
        """Every window of `length` words inside one part: (start positions, hashes)."""
        n = len(self.end_of)
        if length <= 0 or n < length:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.uint64)
        starts = np.arange(n - length + 1)
        starts = starts[starts + length <= self.end_of[: n - length + 1]]
        return starts, self.hash_at(starts, length)

    def hash_at(self, starts: np.ndarray, length: int | np.ndarray) -> np.ndarray:
        ends = starts + length
        raw = self.up[ends - 1] * (self.prefix[ends] - self.prefix[starts])
        return _mix(raw, length)

    def whole(self) -> np.ndarray:
        """Each non-empty part's hash as one sequence (-> keys; empty parts: 0)."""
        keys = np.zeros(len(self.lengths), dtype=np.uint64)
        full = self.lengths > 0
        keys[full] = self.hash_at(self.starts[full], self.lengths[full])
        return keys
