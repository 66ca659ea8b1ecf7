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

Slower than minhash.sign (a Python call per shingle for xxh64 over its string, and a
modulo per permutation), and still vectorised everywhere else.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from sftforge.tasks.steps.minhash import Signatures, _family, band_keys

_MERSENNE = np.uint64((1 << 61) - 1)
_NUMBER = r"\p{Nd}+([.,،٫⎖⎗⎘]\p{Nd}+)?"
# What datatrove turns into spaces: its list is ASCII punctuation and symbols, control
# characters and the common punctuation of other scripts (，。「」…); non-ASCII symbols
# (emoji, ©, →) stay inside words. Unicode punctuation (category P) stands for its list.
_SEPARATOR = r"[\s\p{Cc}\p{P}!-/:-@\[-`{-~]+"


@lru_cache(maxsize=8)
def _permutations(seed: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    generator = np.random.RandomState(seed)
    a = generator.randint(1, _MERSENNE, dtype=np.uint64, size=count)
    b = generator.randint(0, _MERSENNE, dtype=np.uint64, size=count)
    return a, b


def simplified_words(texts: pa.Array) -> pa.ListArray:
    """Each text's words after datatrove's simplification (see the module's docstring)."""
    text = pc.utf8_lower(pc.fill_null(texts, ""))
    text = pc.replace_substring_regex(text, _NUMBER, "0")
    # In datatrove's order: punctuation before NFD (≠ decomposes to "=" and a mark).
    text = pc.replace_substring_regex(text, _SEPARATOR, " ")
    text = pc.utf8_normalize(text, "NFD")
    text = pc.replace_substring_regex(text, r"\p{Mn}", "")
    return pc.utf8_split_whitespace(pc.utf8_trim_whitespace(text))


def shingle_hashes(texts: pa.Array, k: int) -> tuple[np.ndarray, np.ndarray]:
    """xxh64 of every run of `k` words inside one text (joined by a space), and its text."""
    split = simplified_words(texts)
    flat = pc.list_flatten(split)
    owner = pc.list_parent_indices(split).to_numpy()
    present = pc.greater(pc.utf8_length(flat), 0).to_numpy(zero_copy_only=False)
    flat, owner = flat.filter(pa.array(present)), owner[present]
    n = len(owner)
    if n < k:
        return np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.int64)
    starts = np.flatnonzero(owner[: n - k + 1] == owner[k - 1 :])  # k words of one text
    parts = [flat.take(pa.array(starts + j)) for j in range(k)]
    joined = pc.binary_join_element_wise(*parts, " ")
    encoded = pc.dictionary_encode(joined)  # a repeated shingle is hashed once
    distinct = encoded.dictionary.to_pylist()
    table = np.fromiter(
        (xxhash.xxh64_intdigest(s.encode()) for s in distinct), dtype=np.uint64, count=len(distinct)
    )
    return table[encoded.indices.to_numpy()], owner[starts].astype(np.int64)


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
    with np.errstate(over="ignore"):
        for i in range(permutations):
            hashed = (values * a[i] + b[i]) % _MERSENNE
            minima[i] = np.minimum.reduceat(hashed, starts) if len(starts) else hashed[:0]
    signatures = np.zeros((len(texts), permutations), dtype=np.uint64)
    signatures[signed] = minima.T
    band_position = _family(seed, permutations, k, rows)[3]
    return Signatures(signatures, band_keys(signatures, bands, rows, band_position), signed)
