"""Rendered prompt/target segments as token ids and a supervision mask, boundaries exact.

The whole text is tokenized as one string (what the model sees at inference) and masked by
character offsets; a record whose boundary falls inside a token is tokenized segment by
segment instead (see tasks/outputs/instruction_tokens.py for why).
"""

from __future__ import annotations

from collections.abc import Sequence

from tokenizers import Encoding

from sftforge.tasks.outputs.prompt_templates import Segment
from sftforge.tasks.outputs.tokenizer import LoadedTokenizer


def _spans(segments: Sequence[Segment]) -> list[tuple[int, int]]:
    """Character spans of the supervised text (adjacent supervised segments merged)."""
    spans: list[tuple[int, int]] = []
    at = 0
    for text, supervised in segments:
        end = at + len(text)
        if supervised and text:
            if spans and spans[-1][1] == at:
                spans[-1] = (spans[-1][0], end)
            else:
                spans.append((at, end))
        at = end
    return spans


def mask_by_chars(
    encoding: Encoding, spans: Sequence[tuple[int, int]], length: int
) -> list[bool] | None:
    """Supervision per token from character spans; None if a token straddles a span edge.

    Only the tokens at the span edges are looked up (Encoding.char_to_token, in Rust): converting
    every token's offsets to Python would cost more than the rest of the example.
    """
    n = len(encoding.ids)
    mask = [False] * n

    def first_token_at(char: int) -> int | None:
        """The index of the token that starts exactly at `char` (n at the end of the text)."""
        if char >= length:
            return n
        index = encoding.char_to_token(char)
        if index is None or encoding.token_to_chars(index)[0] != char:
            return None  # the token holding `char` began earlier: it holds both sides
        return index

    for a, b in spans:
        i, j = first_token_at(a), first_token_at(b)
        if i is None or j is None:
            return None
        mask[i:j] = [True] * (j - i)
    return mask


def tokenize_segments(
    tok: LoadedTokenizer, batch: Sequence[Sequence[Segment]]
) -> list[tuple[list[int], list[bool], bool]]:
    """(ids, mask, retokenized) per record: whole text, or segment by segment if it must."""
    texts = ["".join(text for text, _ in segs) for segs in batch]
    return assemble_segments(tok, batch, texts, tok.encode_raw(texts))


def assemble_segments(
    tok: LoadedTokenizer,
    batch: Sequence[Sequence[Segment]],
    texts: Sequence[str],
    encodings: Sequence[Encoding],
) -> list[tuple[list[int], list[bool], bool]]:
    results = []
    for segments, text, encoding in zip(batch, texts, encodings, strict=True):
        mask = mask_by_chars(encoding, _spans(segments), len(text))
        if mask is not None:
            results.append((encoding.ids, mask, False))
            continue
        parts = tok.encode([text for text, _ in segments])
        ids: list[int] = []
        mask = []
        for (_, supervised), part in zip(segments, parts, strict=True):
            ids += part
            mask += [supervised] * len(part)
        results.append((ids, mask, True))
    return results


def expected_runs(segments: Sequence[Segment], eos_text: str | None, eos_joins: bool) -> list[str]:
    """The text each supervised run should decode to; EOS extends the last run or is its own."""
    full = "".join(text for text, _ in segments)
    runs = [full[a:b] for a, b in _spans(segments)]
    if eos_text is not None:
        if eos_joins and runs:
            runs[-1] += eos_text
        else:
            runs.append(eos_text)
    return runs


def build_example(
    ids: list[int],
    mask: list[bool],
    *,
    bos_id: int | None,
    eos_id: int | None,
    cutoff_len: int,
) -> tuple[list[int], list[bool], bool, bool]:
    """BOS, truncation, EOS-if-it-fits: (ids, mask, truncated, eos_added)."""
    if bos_id is not None:
        # BOS is never a target: nothing predicts position 0.
        ids, mask = [bos_id, *ids], [False, *mask]
    truncated = len(ids) > cutoff_len
    if truncated:
        ids, mask = ids[:cutoff_len], mask[:cutoff_len]
    eos_added = eos_id is not None and len(ids) < cutoff_len
    if eos_added:
        ids, mask = [*ids, eos_id], [*mask, True]
    return ids, mask, truncated, eos_added
