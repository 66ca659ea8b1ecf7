from __future__ import annotations

from sftforge.tasks.base.outcome import Rejected
from sftforge.tasks.steps.check_structure import check_structure
from tests.helpers import conv

Q = "How do I reverse a list in Python?"
A = "Use `my_list[::-1]` or `my_list.reverse()`."


def roles(record):
    return [m["role"] for m in record["messages"]]


def test_clean_conversation_passes_unchanged():
    record = conv(("user", Q), ("assistant", A))
    assert check_structure(record) == record


def test_leading_assistant_and_trailing_user_are_dropped():
    out = check_structure(
        conv(("assistant", "Hi!"), ("user", Q), ("assistant", A), ("user", "Thanks"))
    )
    assert roles(out) == ["user", "assistant"]


def test_system_prompt_is_kept():
    out = check_structure(conv(("system", "Be brief."), ("user", Q), ("assistant", A)))
    assert roles(out) == ["system", "user", "assistant"]


def test_empty_answer_ends_the_conversation_keeping_earlier_pairs():
    out = check_structure(
        conv(
            ("user", Q),
            ("assistant", A),
            ("user", "More?"),
            ("assistant", ""),
            ("user", "Hello?"),
            ("assistant", "Yes"),
        )
    )
    assert roles(out) == ["user", "assistant"]
    assert out["messages"][1]["content"] == A


def test_unprintable_first_character_counts_as_empty():
    out = check_structure(
        conv(("user", Q), ("assistant", A), ("user", "x" * 20), ("assistant", "\x00junk"))
    )
    assert len(out["messages"]) == 2


def test_not_alternating_is_wrong_format():
    out = check_structure(conv(("user", Q), ("user", Q), ("assistant", A)))
    assert isinstance(out, Rejected) and out.reason == "wrong_format"


def test_unknown_role_is_wrong_format_naming_it():
    out = check_structure(conv(("bot", "hi"), ("user", Q), ("assistant", A)))
    assert isinstance(out, Rejected) and out.reason == "wrong_format" and "'bot'" in out.detail


def test_too_short():
    assert check_structure(conv(("user", Q))).reason == "too_short"
    assert check_structure(conv(("user", "hi"), ("assistant", "yo"))).reason == "too_short"
    assert check_structure(conv()).reason == "too_short"
    assert check_structure(conv(("user", Q), ("assistant", ""))).reason == "too_short"


def test_max_chars():
    out = check_structure(conv(("user", Q), ("assistant", A * 100)), max_chars=1000)
    assert isinstance(out, Rejected) and out.reason == "too_long"
