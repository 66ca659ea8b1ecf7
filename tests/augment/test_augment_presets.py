"""SelFee's stop rule, cap and prompts -- checked against SelFee's own data where it exists."""

from __future__ import annotations

import pytest
from augment_support import fast_config

from sftforge.tasks.steps.augment.presets import (
    SELFEE_STOP_PHRASES,
    answer_messages,
    feedback_messages,
    needs_revision,
    resolve_preset,
    revision_chat,
)


@pytest.mark.parametrize(
    ("feedback", "expected"),
    [
        ("Score: 7\n\nRevision is needed.", True),
        ("Score: 9. Revision is not needed.", False),
        ("Great answer. No revision is needed.", False),
        ("There is NO NEED to change anything.", False),
        ("I have no critique. 10/10", False),
        ("The loop is wrong; fix the bounds. Score 4.", True),
        ("", True),
    ],
)
def test_stop_rule(feedback: str, expected: bool) -> None:
    assert needs_revision(feedback) is expected


def test_stop_rule_is_configurable() -> None:
    assert needs_revision("LGTM", ("lgtm",)) is False
    assert needs_revision("Revision is not needed.", ("lgtm",)) is True
    config = fast_config(stop_phrases=["LGTM", "  "])
    assert resolve_preset(config).stop_phrases == ("lgtm",)
    assert resolve_preset(fast_config()).stop_phrases == SELFEE_STOP_PHRASES


def selfee_decisions(feedbacks: list[str], cap: int = 5) -> tuple[int, bool]:
    """(iteration, iteration_truncated) that our loop reaches on this feedback sequence."""
    for n, feedback in enumerate(feedbacks, start=1):
        if not needs_revision(feedback):
            return n, False
        if n >= cap:
            return n, True
    raise AssertionError("the sequence ended while the rule still asked for a revision")


def test_stop_rule_agrees_with_every_selfee_record(selfee_records: list[dict]) -> None:
    """The property SelFee's data satisfies, record by record (2,777 of them):

    - iteration == len(outputs) <= 5;
    - the rule says "revise" on every feedback but the last;
    - on the last it says "stop" exactly when iteration_truncated is false, and "revise" only
      at the cap (iteration == 5, iteration_truncated true) -- so 5 pairs that ended on a
      "not needed" are *not* truncated.
    """
    assert len(selfee_records) == 2777
    at_cap_not_truncated = 0
    for record in selfee_records:
        feedbacks = [pair["feedback"] for pair in record["outputs"]]
        assert record["iteration"] == len(feedbacks) <= 5
        assert all(needs_revision(f) for f in feedbacks[:-1]), record["instruction"]
        assert needs_revision(feedbacks[-1]) is record["iteration_truncated"]
        if record["iteration_truncated"]:
            assert record["iteration"] == 5
        elif record["iteration"] == 5:
            at_cap_not_truncated += 1
        # Our loop, replayed on the same feedback, stops at the same point with the same flag.
        assert selfee_decisions(feedbacks) == (record["iteration"], record["iteration_truncated"])
    assert at_cap_not_truncated > 0  # the case that tells "cap reached" from "still revising"


def test_selfee_prompts_follow_the_paper() -> None:
    preset = resolve_preset(fast_config())
    record = {"instruction": "Sort a list", "input": "[3, 1, 2]", "output": ""}
    (answer,) = answer_messages(preset, record)
    assert answer == {"role": "user", "content": "Sort a list\n[3, 1, 2]"}
    (feedback,) = feedback_messages(preset, record, "sorted(x)")
    text = feedback["content"]
    assert text.startswith("Sort a list\n[3, 1, 2]\n\nHere is a proposed answer:\nsorted(x)")
    assert "under 100 words" in text and "1 to 10" in text
    assert '"Revision is needed"' in text and '"Revision is not needed"' in text
    head, rounds = revision_chat(preset, record, [("a0", "f0"), ("a1", "f1")])
    assert head == [answer]
    assert [m["role"] for m in rounds[0]] == ["assistant", "user", "assistant", "user"]
    assert rounds[1][0]["content"] == "a1" and rounds[1][2]["content"] == "f1"
    assert "500 words" in rounds[1][-1]["content"]


def test_teacher_prompts_use_the_gold_answer() -> None:
    preset = resolve_preset(fast_config(preset="selfee_teacher"))
    assert preset.needs_gold and not preset.use_existing_output
    record = {"instruction": "Reverse s", "input": "", "output": "s[::-1]"}
    (feedback,) = feedback_messages(preset, record, "reversed(s)")
    assert "teaching assistant" in feedback["content"]
    assert "s[::-1]" in feedback["content"] and "must not reveal" in feedback["content"]
    _, rounds = revision_chat(preset, record, [("reversed(s)", "Close. Revision is needed.")])
    assert "minimal edits" in rounds[0][-1]["content"]
    assert "Close. Revision is needed." in rounds[0][-1]["content"]


def test_prompt_overrides_and_template_checks() -> None:
    config = fast_config(
        prompts={
            "system": "You are terse.",
            "answer": "Q: {instruction}",
            "revision": [{"role": "user", "content": "Fix it: {feedback}"}],
        }
    )
    preset = resolve_preset(config)
    record = {"instruction": "Add {x}", "input": "", "output": ""}
    # Braces in the record are data, not placeholders.
    assert answer_messages(preset, record) == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Q: Add {x}"},
    ]
    _, rounds = revision_chat(preset, record, [("a", "bad")])
    assert rounds[0][1] == {"role": "user", "content": "Fix it: bad"}
    with pytest.raises(ValueError, match="unknown placeholder"):
        fast_config(prompts={"answer": "{question}"})
    with pytest.raises(ValueError, match="unknown placeholder"):
        fast_config(prompts={"revision": [{"role": "user", "content": "{nope}"}]})
