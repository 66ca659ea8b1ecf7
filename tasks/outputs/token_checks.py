"""The checks every written token file passes, example by example (issue 5 §6).

- every id is a token of the tokenizer (0 <= id < len(tokenizer), added tokens included);
- the mask is as long as the ids; no example is longer than the context;
- special tokens appear only where the template put them (so text that spells one was
  tokenized as text);
- the supervised tokens, decoded run by run, are exactly the text that should be learned
  (assistant contents + end-of-turn; a target + EOS). A truncated example's runs must be a
  prefix of it.

A failure raises: it means the writer or the tokenizer is wrong, and a trainer must not get
the file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

_RUN = re.compile(rb"\x01+")


class TrainingFileError(ValueError):
    """A training example that breaks an invariant of the file format."""


def check_ids_and_mask(
    ids: Sequence[int], mask: Sequence[bool], *, vocab_size: int, max_length: int, where: str
) -> None:
    if len(ids) != len(mask):
        raise TrainingFileError(f"{where}: {len(ids)} ids but {len(mask)} mask values")
    if len(ids) > max_length:
        raise TrainingFileError(f"{where}: {len(ids)} tokens, longer than the context {max_length}")
    check_ids_in_vocab(ids, vocab_size=vocab_size, where=where)


def check_ids_in_vocab(ids: Sequence[int], *, vocab_size: int, where: str) -> None:
    if ids and (min(ids) < 0 or max(ids) >= vocab_size):
        raise TrainingFileError(
            f"{where}: token id out of range [0, {vocab_size}): {min(ids)}..{max(ids)}"
        )


def check_special_tokens(
    ids: Sequence[int],
    *,
    expected: Mapping[int, int],
    special_ids: frozenset[int],
    truncated: bool,
    where: str,
) -> None:
    """Each special id occurs as often as the template inserted it (at most, when truncated)."""
    for token_id in special_ids:
        count = ids.count(token_id) if hasattr(ids, "count") else list(ids).count(token_id)
        want = expected.get(token_id, 0)
        if count > want or (count < want and not truncated):
            raise TrainingFileError(
                f"{where}: special token id {token_id} occurs {count} times, the template put "
                f"{want} (text that spells a special token must be tokenized as text)"
            )


def supervised_runs(mask: Sequence[bool]) -> list[tuple[int, int]]:
    """[start, end) of each run of supervised positions."""
    return [m.span() for m in _RUN.finditer(bytes(mask))]


def check_supervised_text(
    decoded: Sequence[str], expected: Sequence[str], *, truncated: bool, where: str
) -> None:
    """The decoded supervised runs against the text that should be learned, run by run.

    Two allowances for real tokenizers, neither of which hides a wrong mask: a SentencePiece
    decoder drops the space it reads at the start of a sequence (so a run may lack one leading
    space), and a truncated run may end inside a multi-byte character (U+FFFD at its end).
    """
    if len(decoded) == len(expected) or (truncated and len(decoded) < len(expected)):
        for i, (got, want) in enumerate(zip(decoded, expected, strict=False)):
            last = truncated and i == len(decoded) - 1
            if _same(got, want, prefix=last):
                continue
            raise TrainingFileError(
                f"{where}: supervised run {i} decodes to {_clip(got)}, expected {_clip(want)}"
            )
        return
    got, want = "".join(decoded), "".join(expected)
    if not _same(got, want, prefix=truncated):
        raise TrainingFileError(
            f"{where}: {len(decoded)} supervised runs decode to {_clip(got)}, "
            f"expected {len(expected)}: {_clip(want)}"
        )


def _same(got: str, want: str, *, prefix: bool) -> bool:
    candidates = [want]
    if want.startswith(" "):
        candidates.append(want[1:])
    if prefix:
        got = got.rstrip("\ufffd")
        return any(w.startswith(got) for w in candidates)
    return got in candidates


def _clip(text: str, limit: int = 80) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")
