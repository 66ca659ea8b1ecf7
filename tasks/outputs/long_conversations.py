"""Conversations longer than the model's context: truncated (OpenChat) or split (FastChat).

FastChat's split_long_conversation.py estimated each message as its tokens + 6, cut before the
pair that overflowed, and only emitted the tail when the *last* pair did not overflow — so a
conversation whose last pair overflowed lost that pair, and a single pair longer than the limit
became a piece longer than the limit. Here lengths are the template's exact token counts, every
turn lands in exactly one piece, and a turn that alone exceeds the limit becomes its own piece,
truncated to the limit (OpenChat's rule) — no piece is ever longer than `max_length`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sftforge.tasks.outputs.chat_templates import EncodedConversation, Unit


@dataclass
class Piece:
    """One training example: tokens of messages [start, end) after the header's messages."""

    ids: list[int]
    mask: list[bool]
    header_end: int  # messages [0, header_end) are the header (system messages)
    start: int
    end: int
    truncated: bool


def _piece(header: Unit, units: list[Unit], max_length: int) -> Piece:
    ids, mask = list(header.ids), list(header.mask)
    for unit in units:
        ids += unit.ids
        mask += unit.mask
    start = units[0].start if units else header.end
    end = units[-1].end if units else header.end
    truncated = len(ids) > max_length
    if truncated:
        del ids[max_length:], mask[max_length:]
    return Piece(ids, mask, header.end, start, end, truncated)


def truncate(conv: EncodedConversation, max_length: int) -> list[Piece]:
    """OpenChat: the whole conversation, cut at max_length tokens."""
    return [_piece(conv.header, conv.turns, max_length)]


def split(conv: EncodedConversation, max_length: int) -> list[Piece]:
    """Greedy pieces at turn boundaries, each with the header, none longer than max_length."""
    budget = max_length - len(conv.header.ids)
    if budget <= 0 or not conv.turns:
        return truncate(conv, max_length)
    pieces: list[Piece] = []
    group: list[Unit] = []
    used = 0
    for turn in conv.turns:
        if group and used + len(turn.ids) > budget:
            pieces.append(_piece(conv.header, group, max_length))
            group, used = [], 0
        group.append(turn)
        used += len(turn.ids)
    pieces.append(_piece(conv.header, group, max_length))  # the last turns are never dropped
    return pieces


def fit(conv: EncodedConversation, max_length: int, mode: str) -> list[Piece]:
    return split(conv, max_length) if mode == "split" else truncate(conv, max_length)
