"""A batch of tokenized examples as flat arrays: what the checks, the JSON lines and parquet share.

Per token, Python is slow and numpy is not: the ids of a batch are concatenated once, and the
§6 checks (vocabulary range, lengths, special-token counts, supervised runs) run over the whole
batch as array operations. Only an example that fails is looked at on its own, by the
per-example checks of tasks/token_checks.py, so a failure reads the same either way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter

import numpy as np
import pyarrow as pa

from sftforge.tasks.outputs.token_checks import (
    TrainingFileError,
    check_ids_and_mask,
    check_special_tokens,
)


@dataclass
class TokenBatch:
    ids: np.ndarray  # every example's ids, concatenated (int32)
    mask: np.ndarray  # bool, aligned with ids
    offsets: np.ndarray  # int64; example i is [offsets[i], offsets[i + 1])

    @classmethod
    def of(cls, examples: Sequence[tuple[Sequence[int], Sequence[bool]]]) -> TokenBatch:
        lengths = [len(ids) for ids, _ in examples]
        for i, ((_, mask), n) in enumerate(zip(examples, lengths, strict=True)):
            if len(mask) != n:  # the flat arrays below assume it
                raise TrainingFileError(f"example {i}: {n} ids but {len(mask)} mask values")
        offsets = np.zeros(len(examples) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        total = int(offsets[-1])
        ids = np.fromiter(chain.from_iterable(e[0] for e in examples), np.int32, count=total)
        mask = np.fromiter(chain.from_iterable(e[1] for e in examples), np.bool_, count=total)
        return cls(ids, mask, offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def example(self, i: int) -> tuple[list[int], list[bool]]:
        at, end = self.offsets[i], self.offsets[i + 1]
        return self.ids[at:end].tolist(), self.mask[at:end].tolist()

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def count(self, flags: np.ndarray) -> np.ndarray:
        """Per example, how many of its positions are flagged."""
        total = np.concatenate(([0], np.cumsum(flags, dtype=np.int64)))
        return total[self.offsets[1:]] - total[self.offsets[:-1]]

    def runs(self) -> list[list[tuple[int, int]]]:
        """[start, end) of each supervised run, per example, relative to the example's start."""
        m = self.mask
        if not len(m):
            return [[] for _ in range(len(self))]
        first = np.zeros(len(m), dtype=bool)
        first[self.offsets[:-1][self.offsets[:-1] < len(m)]] = True
        last = np.zeros(len(m), dtype=bool)
        last[self.offsets[1:][self.offsets[1:] > 0] - 1] = True
        prev = np.concatenate(([False], m[:-1]))
        following = np.concatenate((m[1:], [False]))
        starts = np.flatnonzero(m & (first | ~prev))
        ends = np.flatnonzero(m & (last | ~following)) + 1
        owner = np.searchsorted(self.offsets, starts, side="right") - 1
        runs: list[list[tuple[int, int]]] = [[] for _ in range(len(self))]
        base = self.offsets[owner]
        for i, a, b in zip(
            owner.tolist(), (starts - base).tolist(), (ends - base).tolist(), strict=True
        ):
            runs[i].append((a, b))
        return runs

    def arrow_lists(self) -> tuple[pa.Array, pa.Array]:
        """input_ids and supervise_mask as arrow list columns (no per-token Python)."""
        offsets = pa.array(self.offsets.astype(np.int32))
        return (
            pa.ListArray.from_arrays(offsets, pa.array(self.ids)),
            pa.ListArray.from_arrays(offsets, pa.array(self.mask)),
        )


def check_batch(
    batch: TokenBatch,
    *,
    vocab_size: int,
    max_length: int,
    expected: Mapping[int, np.ndarray],
    special_ids: frozenset[int],
    truncated: np.ndarray,
    where: Sequence[str],
) -> None:
    """§6 on a whole batch: ids in the vocabulary, no example longer than the context, each
    special id exactly as often as the template put it (`expected[id]`, one count per example;
    at most, where `truncated`). A failing example is re-checked alone to raise its error."""
    if not len(batch):
        return
    bad = batch.lengths() > max_length
    out_of_vocab = (batch.ids < 0) | (batch.ids >= vocab_size)
    if out_of_vocab.any():
        bad |= batch.count(out_of_vocab) > 0
    for token_id in special_ids:
        counts = batch.count(batch.ids == token_id)
        want = expected.get(token_id)
        if want is None:
            want = np.zeros(len(batch), dtype=np.int64)
        bad |= (counts > want) | ((counts < want) & ~truncated)
    for i in np.flatnonzero(bad).tolist():
        ids, mask = batch.example(i)
        check_ids_and_mask(ids, mask, vocab_size=vocab_size, max_length=max_length, where=where[i])
        check_special_tokens(
            ids,
            expected={t: int(c[i]) for t, c in expected.items()},
            special_ids=special_ids,
            truncated=bool(truncated[i]),
            where=where[i],
        )


class TokenJson:
    """`[[ids…],[mask…]]` lines as json.dumps writes them compactly, from string tables."""

    def __init__(self, vocab_size: int) -> None:
        self.strings = [str(i) for i in range(vocab_size)]

    def line(self, ids: Sequence[int], runs: Sequence[tuple[int, int]]) -> str:
        if len(ids) == 1:
            text = self.strings[ids[0]]
        else:
            text = ",".join(itemgetter(*ids)(self.strings)) if ids else ""
        return f"[[{text}],[{mask_json(len(ids), runs)}]]"


def mask_json(length: int, runs: Sequence[tuple[int, int]]) -> str:
    parts, at = [], 0
    for a, b in runs:
        parts.append(",false" * (a - at))
        parts.append(",true" * (b - a))
        at = b
    parts.append(",false" * (length - at))
    return "".join(parts)[1:]
