"""Token counting offline and deterministic truncation to the context window."""

from __future__ import annotations

import pytest

from sftforge.tasks.steps.augment.tokens import (
    TRUNCATION_MARK,
    Counter,
    count_messages,
    estimate_tokens,
    fit_messages,
    make_counter,
)

ESTIMATE = Counter("estimate", estimate_tokens)


def test_auto_falls_back_to_the_estimate_offline(tmp_path, monkeypatch) -> None:
    # No BPE file in the cache: "auto" must not try to download it (no network here).
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    assert make_counter("gpt-3.5-turbo", "auto").name == "estimate"
    assert make_counter("gpt-3.5-turbo", "estimate").name == "estimate"


def test_estimate_errs_high_against_a_chars_over_4_count(selfee_records) -> None:
    """OpenAI's rule of thumb is ~4 characters a token for English (code packs fewer); the
    estimate must not count less than that on SelFee's text, or requests could overflow."""
    for record in selfee_records[:500]:
        for pair in record["outputs"]:
            for text in (pair["output"], pair["feedback"], record["instruction"]):
                assert estimate_tokens(text) >= len(text) / 4 - 1


def test_estimate_basics() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("the") == 1
    # Longer words are charged a token per 4 letters beyond the first: real BPEs merge most
    # English words into one token, so this errs high (~1.3x chars/4 on SelFee's code-heavy
    # text; cl100k is expected nearer 1.1-1.2x there -- not checkable offline).
    assert estimate_tokens(" internationalization") == 5
    # Every character is counted: nothing falls between the pieces.
    assert estimate_tokens("a_b") >= 2
    # CJK costs more than one token a character less often than not; count 1.5.
    assert estimate_tokens("你好世界") == 6
    long = "word " * 1000
    assert 1000 <= estimate_tokens(long) <= 1100


def msg(role: str, content: str) -> dict[str, str]:
    return {"role": role, "content": content}


def test_fit_keeps_a_short_chat_untouched() -> None:
    head = [msg("user", "short question")]
    rounds = [[msg("assistant", "a0"), msg("user", "revise")]]
    messages, truncated = fit_messages(ESTIMATE, head, rounds, 100)
    assert messages == head + rounds[0] and truncated is False


def test_fit_drops_the_oldest_rounds_first() -> None:
    head = [msg("user", "question")]
    rounds = [
        [msg("assistant", f"answer {i} " + "word " * 50), msg("user", f"revise {i}")]
        for i in range(4)
    ]
    full = count_messages(ESTIMATE, head + [m for r in rounds for m in r])
    budget = full - 60  # one round too many
    messages, truncated = fit_messages(ESTIMATE, head, rounds, budget)
    assert truncated
    assert messages == head + rounds[1] + rounds[2] + rounds[3]
    # The last round is never dropped, even if that means cutting text.
    messages, _ = fit_messages(ESTIMATE, head, rounds, 80)
    assert messages[-1] == rounds[3][-1] and messages[0]["content"] == "question"
    assert count_messages(ESTIMATE, messages) <= 80


def test_fit_cuts_the_middle_of_the_longest_message_deterministically() -> None:
    text = " ".join(f"w{i}" for i in range(3000))
    head = [msg("system", "be brief"), msg("user", text + " END")]
    first, truncated = fit_messages(ESTIMATE, head, [], 500)
    again, _ = fit_messages(ESTIMATE, head, [], 500)
    assert truncated and first == again
    assert count_messages(ESTIMATE, first) <= 500
    content = first[1]["content"]
    assert TRUNCATION_MARK in content
    assert content.startswith("w0 w1 w2") and content.endswith("END")
    assert first[0]["content"] == "be brief"
    assert count_messages(ESTIMATE, first) > 400  # cut what was needed, not much more


def test_fit_reports_the_impossible() -> None:
    with pytest.raises(ValueError, match="cannot fit"):
        fit_messages(ESTIMATE, [msg("user", "x")] * 10, [], 5)
