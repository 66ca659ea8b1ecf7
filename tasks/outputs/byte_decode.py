"""Decoding byte-level BPE ids (GPT-2, LLaMA-3, Qwen, our own tokenizer) with a lookup table.

The checks of issue 5 §6 decode every supervised run and every text file decodes every example:
through the `tokenizers` decoder that is a Rust call per batch but a string per token, and it
cost more than the encoding. A byte-level decoder is only a per-token byte table: an id's bytes
are its token's characters mapped back through GPT-2's byte↔unicode table (or, for an added
token with a character outside that table, its UTF-8 as it is — the Rust decoder's rule), then
the concatenation is read as UTF-8 with U+FFFD for broken sequences (`from_utf8_lossy`).

The table is built only for a tokenizer whose decoder is exactly `ByteLevel`, and it is checked
against the tokenizer's own decoder on every id and on random sequences before it is used; any
difference and the caller keeps the tokenizer's decoder.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from operator import itemgetter

from tokenizers import Tokenizer


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from the 256 bytes to printable characters."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    keep += range(ord("®"), ord("ÿ") + 1)
    chars = list(keep)
    extra = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(keep, chars, strict=True)}


_CHAR_BYTES = {c: bytes([b]) for b, c in _bytes_to_unicode().items()}


class ByteTableDecoder:
    def __init__(self, table: list[bytes]) -> None:
        self.table = table

    def decode(self, ids: Sequence[int]) -> str:
        if not ids:
            return ""
        if len(ids) == 1:
            return self.table[ids[0]].decode("utf-8", errors="replace")
        parts = itemgetter(*ids)(self.table)
        return b"".join(parts).decode("utf-8", errors="replace")

    def decode_batch(self, batch: Sequence[Sequence[int]]) -> list[str]:
        return [self.decode(ids) for ids in batch]


def _token_bytes(token: str) -> bytes:
    mapped = [_CHAR_BYTES.get(c) for c in token]
    if all(b is not None for b in mapped):
        return b"".join(mapped)  # type: ignore[arg-type]
    return token.encode("utf-8")


def byte_table_decoder(backend: Tokenizer, samples: int = 200) -> ByteTableDecoder | None:
    """A table decoder equal to `backend.decode(ids, skip_special_tokens=False)`, or None."""
    decoder = json.loads(backend.to_str()).get("decoder") or {}
    if decoder.get("type") != "ByteLevel":
        return None
    size = backend.get_vocab_size(with_added_tokens=True)
    tokens = [backend.id_to_token(i) for i in range(size)]
    if any(t is None for t in tokens):
        return None  # holes in the id space: leave it to the tokenizer
    fast = ByteTableDecoder([_token_bytes(t) for t in tokens])  # type: ignore[arg-type]
    singles = [[i] for i in range(size)]
    rng = random.Random(0)
    sequences = [[rng.randrange(size) for _ in range(rng.randint(2, 64))] for _ in range(samples)]
    for batch in (singles, sequences):
        if backend.decode_batch(batch, skip_special_tokens=False) != fast.decode_batch(batch):
            return None
    return fast
