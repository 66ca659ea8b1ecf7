"""Long conversations: OpenChat's truncation and FastChat-style splitting, without its bugs."""

from __future__ import annotations

import random

from sftforge.tasks.outputs.chat_templates import (
    BUILTIN_TEMPLATES,
    ConversationEncoder,
    EncodedConversation,
    Unit,
)
from sftforge.tasks.outputs.long_conversations import split, truncate


def _units(*lengths: int, header: int = 1) -> EncodedConversation:
    """A conversation of turns with the given token counts (ids = the turn's number)."""
    turns = [
        Unit([i + 10] * n, [True] * n, start=2 * i + 1, end=2 * i + 3)
        for i, n in enumerate(lengths)
    ]
    return EncodedConversation(Unit([1] * header, [False] * header, 0, 1), turns)


def _fastchat_split(lengths: list[int], max_length: int) -> list[tuple[int, int]]:
    """FastChat's split_one_sample loop (fastchat/data/split_long_conversation.py), on pairs."""
    pieces, start, cur = [], 0, 0
    for i, n in enumerate(lengths):
        if cur + n > max_length:
            pieces.append((start, i))
            start, cur = i, 0
        elif i == len(lengths) - 1:
            pieces.append((start, i + 1))
        cur += n
    return pieces


def test_fastchat_drops_the_last_pair_when_it_overflows_and_we_do_not() -> None:
    lengths = [40, 40, 40]  # the third pair overflows a 100-token piece
    assert _fastchat_split(lengths, 100) == [(0, 2)]  # FastChat: pair 3 is gone
    pieces = split(_units(*lengths, header=0), 100)
    assert [(p.start, p.end) for p in pieces] == [(1, 5), (5, 7)]  # all three pairs kept
    assert all(len(p.ids) <= 100 for p in pieces)


def test_a_single_turn_longer_than_the_limit_is_its_own_truncated_piece() -> None:
    # FastChat: an empty piece, a piece of 150 tokens for a 100-token model, and the last
    # pair dropped
    assert _fastchat_split([150, 20], 100) == [(0, 0), (0, 1)]
    pieces = split(_units(150, 20), 100)
    assert [(p.start, p.end, len(p.ids), p.truncated) for p in pieces] == [
        (1, 3, 100, True),
        (3, 5, 21, False),
    ]


def test_every_piece_repeats_the_header_and_fits() -> None:
    pieces = split(_units(30, 30, 30, 30, header=5), 70)
    assert [len(p.ids) for p in pieces] == [65, 65]
    assert all(p.ids[:5] == [1] * 5 and p.header_end == 1 for p in pieces)


def test_truncate_is_openchats_cut() -> None:
    (piece,) = truncate(_units(30, 30, 30), 50)
    assert len(piece.ids) == 50 and piece.truncated and (piece.start, piece.end) == (1, 7)
    (whole,) = truncate(_units(10, 10), 50)
    assert len(whole.ids) == 21 and not whole.truncated


def test_split_covers_every_turn_once_and_never_exceeds_the_limit_on_random_input() -> None:
    rng = random.Random(5)
    for _ in range(300):
        lengths = [rng.randint(1, 120) for _ in range(rng.randint(1, 12))]
        header = rng.randint(0, 20)
        max_length = rng.randint(header + 1, 300)
        conv = _units(*lengths, header=header)
        pieces = split(conv, max_length)
        assert all(len(p.ids) == len(p.mask) <= max_length for p in pieces)
        covered = [t for p in pieces for t in range(p.start, p.end, 2)]
        assert covered == [u.start for u in conv.turns]  # in order, none dropped, none twice
        for p in pieces:  # only a piece holding one oversized turn is cut
            turn_tokens = sum(len(u.ids) for u in conv.turns if p.start <= u.start < p.end)
            assert p.truncated == (header + turn_tokens > max_length)
            assert not p.truncated or p.end - p.start == 2


def test_split_on_a_real_template(tok) -> None:
    messages = []
    for i in range(6):
        messages += [
            {"role": "user", "content": f"Question {i}?"},
            {"role": "assistant", "content": "Answer. " * (5 + i)},
        ]
    encoder = ConversationEncoder(tok, BUILTIN_TEMPLATES["openchat"])
    (conv,) = encoder.encode([messages])
    pieces = split(conv, 60)
    assert len(pieces) > 1 and all(len(p.ids) <= 60 for p in pieces)
    assert all(p.ids[0] == tok.bos_id for p in pieces)  # each piece starts like a conversation
    assert pieces[0].start == 0 and pieces[-1].end == len(messages)
