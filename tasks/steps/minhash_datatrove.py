"""MinHash signatures as datatrove 0.10 computes them (`dedup_near` with `hashes: datatrove`).

LSH is random: two correct implementations with different hash functions find different
pairs near the threshold (a pair at Jaccard 0.8 is a 14 × 8 candidate with probability 0.92
under either), so on 1M generated conversations sftforge's own family agreed with datatrove
on 98.8 % of the pairs. With the same hash functions the pairs are datatrove's, which is
what a user moving a pipeline from datatrove needs to reproduce its decisions:

* words: datatrove's `simplify_text` — lower case, each number (digits with an optional
  decimal part) "0", punctuation a space, diacritics dropped (NFD, marks removed) — then
  whitespace words. Punctuation here is Unicode's (category P) and ASCII's; datatrove lists
  its characters, so a rare one (‘, ¿, ━) can split differently.
* shingles: xxh64 of the `k` words joined by a space; a text of fewer words has none (it
  takes no part, as in datatrove);
* permutations: `(shingle * a + b) mod (2^61 - 1)` in uint64 (the product wraps, as in
  datatrove), a and b from numpy's legacy `RandomState(seed)`, whose stream numpy keeps
  fixed; signatures are uint64.

Slower than minhash.sign (a Python call per shingle for xxh64 over its bytes, and the
modulo), and vectorised everywhere else.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from sftforge.tasks.steps.minhash import Signatures, _family, band_keys

_MERSENNE = np.uint64((1 << 61) - 1)
_SHIFT = np.uint64(61)
_CHUNK = 1 << 14  # shingles per pass of a permutation: their uint64s fit the L2 cache
_NUMBER = r"\p{Nd}+([.,،٫⎖⎗⎘]\p{Nd}+)?"
# What datatrove turns into spaces: its list is ASCII punctuation and symbols, control
# characters and the common punctuation of other scripts (，。「」…); non-ASCII symbols
# (emoji, ©, →) stay inside words. Unicode punctuation (category P) stands for its list.
_SEPARATOR = r"[\s\p{Z}\p{Cc}\p{P}!-/:-@\[-`{-~]+"


@lru_cache(maxsize=8)
def _permutations(seed: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    generator = np.random.RandomState(seed)
    a = generator.randint(1, _MERSENNE, dtype=np.uint64, size=count)
    b = generator.randint(0, _MERSENNE, dtype=np.uint64, size=count)
    return a, b


def simplified_text(texts: pa.Array) -> pa.StringArray:
    """Each text after datatrove's simplification (see the module's docstring), its words
    separated by exactly one space."""
    text = pc.utf8_lower(pc.fill_null(texts, ""))
    text = pc.replace_substring_regex(text, _NUMBER, "0")
    # In datatrove's order: punctuation before NFD (≠ decomposes to "=" and a mark).
    text = pc.replace_substring_regex(text, _SEPARATOR, " ")
    text = pc.utf8_normalize(text, "NFD")
    text = pc.replace_substring_regex(text, r"\p{Mn}", "")
    text = pc.utf8_trim(pc.replace_substring_regex(text, " {2,}", " "), " ")
    return text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text


def simplified_words(texts: pa.Array) -> pa.ListArray:
    """Each text's words, as datatrove's whitespace tokenizer gives them."""
    return pc.split_pattern(simplified_text(texts), " ")


def shingle_hashes(texts: pa.Array, k: int) -> tuple[np.ndarray, np.ndarray]:
    """xxh64 of every run of `k` words inside one text (joined by a space), and its text.

    A run of words is a slice of the simplified text (one space between words), so each
    shingle is hashed straight from Arrow's data buffer: no string is built per shingle."""
    text = simplified_text(texts)
    offsets = np.frombuffer(text.buffers()[1], dtype=np.int32)[text.offset :][: len(text) + 1]
    data = text.buffers()[2]
    if data is None or offsets[-1] == offsets[0]:
        return np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.int64)
    spaces = np.flatnonzero(np.frombuffer(data, dtype=np.uint8)[: offsets[-1]] == 32)
    spaces = spaces[spaces >= offsets[0]]
    filled = np.flatnonzero(offsets[1:] > offsets[:-1])  # texts with a word
    # A word starts where a text starts or after a space, and ends at a space or its text's end.
    starts = np.sort(np.r_[offsets[filled], spaces + 1])
    ends = np.sort(np.r_[offsets[filled + 1], spaces])
    owner = np.searchsorted(offsets, starts, side="right") - 1
    n = len(starts)
    if n < k:
        return np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.int64)
    first = np.flatnonzero(owner[: n - k + 1] == owner[k - 1 :])  # k words of one text
    view, hash64 = memoryview(data), xxhash.xxh64_intdigest
    spans = zip(starts[first].tolist(), ends[first + k - 1].tolist(), strict=True)
    values = np.fromiter((hash64(view[a:b]) for a, b in spans), dtype=np.uint64, count=len(first))
    return values, owner[first].astype(np.int64)


def sign(
    texts: pa.Array, seed: int, k: int, permutations: int, bands: int, rows: int
) -> Signatures:
    """Signatures (uint64) and band keys of every text that has a shingle."""
    values, of = shingle_hashes(texts, k)
    a, b = _permutations(seed, permutations)
    signed = np.zeros(len(texts), dtype=bool)
    signed[of] = True
    starts = np.flatnonzero(np.r_[True, of[1:] != of[:-1]]) if len(of) else np.empty(0, int)
    minima = np.empty((permutations, len(starts)), dtype=np.uint64)
    # Chunks of whole texts that stay in cache through every permutation (as minhash.sign).
    cuts = np.unique(np.r_[np.searchsorted(starts, np.arange(0, len(values), _CHUNK)), len(starts)])
    ends = np.r_[starts[1:], len(values)]
    for r0, r1 in zip(cuts[:-1], cuts[1:], strict=True):
        chunk = values[starts[r0] : ends[r1 - 1]]
        out, high = np.empty_like(chunk), np.empty_like(chunk)
        at = starts[r0:r1] - starts[r0]
        for i in range(permutations):
            np.multiply(chunk, a[i], out=out)  # wraps mod 2^64, as datatrove's does
            out += b[i]
            # out mod (2^61 - 1) without a division: 2^61 ≡ 1, so high·2^61 + low ≡ high + low.
            np.right_shift(out, _SHIFT, out=high)
            out &= _MERSENNE
            out += high
            np.subtract(out, _MERSENNE, out=out, where=out >= _MERSENNE)
            minima[i, r0:r1] = np.minimum.reduceat(out, at)
    signatures = np.zeros((len(texts), permutations), dtype=np.uint64)
    signatures[signed] = minima.T
    band_position = _family(seed, permutations, k, rows)[3]
    return Signatures(signatures, band_keys(signatures, bands, rows, band_position), signed)
