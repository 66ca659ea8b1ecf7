"""SelFee's stop rule, cap and prompts -- checked against SelFee's own data where it exists."""

from __future__ import annotations

import pytest
from augment_support import fast_config

from sftforge.tasks.steps.augment.presets import (
    CRITIQUE,
    SELFEE_STOP_PHRASES,
    answer_messages,
    feedback_chat,
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


def test_selfee_prompts_are_selfees() -> None:
    """Word for word SelFee's Alpaca/ShareGPT script: the question with a line break after it,
    then one chat -- critique request, critique, request to revise, revision, ... -- that
    starts afresh at each critique from the third answer on, whose request drops "Write as if
    the revised answer is the first try"."""
    preset = resolve_preset(fast_config())
    record = {"instruction": "Sort a list", "input": "[3, 1, 2]", "output": ""}
    (answer,) = answer_messages(preset, record)
    assert answer == {"role": "user", "content": "Sort a list\n[3, 1, 2]\n"}
    assert answer_messages(preset, {**record, "input": ""})[0]["content"] == "Sort a list\n"
    (feedback,) = feedback_messages(preset, record, "sorted(x)")
    assert feedback["content"] == (
        "Sort a list\n[3, 1, 2]\nHere is a proposed answer:\nsorted(x)\n\n" + CRITIQUE
    )
    assert CRITIQUE.startswith("Are there any comments or critiques for the above answer?")
    assert "under 100 words" in CRITIQUE and "scale of 1-10" in CRITIQUE
    assert CRITIQUE.endswith("score of less than 9 should be revised.\n\nCritique:")

    def critique(answer: str) -> dict:
        return feedback_messages(preset, record, answer)[0]

    first, late = preset.revision[0][1], preset.revision_late[0][1]
    assert first == late.replace(
        "\nRevision:", " Write as if the revised answer is the first try.\nRevision:"
    )
    assert "within 500 words" in first and "apology for the past mistake" in first
    head, rounds = revision_chat(preset, record, ["a0", "a1"], ["f0", "f1"])
    assert head == [critique("a0")]
    assert rounds == [
        [
            {"role": "assistant", "content": "f0"},
            {"role": "user", "content": first},
            {"role": "assistant", "content": "a1"},
            critique("a1"),
        ],
        [{"role": "assistant", "content": "f1"}, {"role": "user", "content": first}],
    ]
    # The third answer's critique starts a fresh chat, and so does every later one.
    head, rounds = feedback_chat(preset, record, ["a0", "a1", "a2"], ["f0", "f1"])
    assert head == [critique("a2")] and rounds == []
    head, rounds = revision_chat(preset, record, ["a0", "a1", "a2"], ["f0", "f1", "f2"])
    assert head == [critique("a2")]
    assert rounds == [[{"role": "assistant", "content": "f2"}, {"role": "user", "content": late}]]


def test_teacher_prompts_are_selfees() -> None:
    """SelFee's teacher script: the student's chat holds the question (input folded in, no
    trailing line break), its answers, the critiques and the requests to revise; the
    teacher's holds its role, the question, the gold answer, every answer and critique."""
    preset = resolve_preset(fast_config(preset="selfee_teacher"))
    assert preset.needs_gold and not preset.use_existing_output and preset.fold_input
    record = {"instruction": "Reverse s", "input": "s = 'abc'", "output": "s[::-1]"}
    assert answer_messages(preset, record) == [{"role": "user", "content": "Reverse s\ns = 'abc'"}]
    role, question, gold, initial = feedback_messages(preset, record, "reversed(s)")
    assert role["content"].startswith("You are given a role as a teaching assistant.")
    assert "without directly mentioning it" in role["content"]
    assert question["content"] == "Here is the instruction:\nReverse s\ns = 'abc'\n"
    assert gold["content"] == "Here is the answer:\ns[::-1]\n"
    assert initial["content"] == "Here is my initial answer:\nreversed(s)\n\n" + CRITIQUE
    # The critic of the third answer still sees everything before it.
    head, rounds = feedback_chat(preset, record, ["a0", "a1", "a2"], ["f0", "f1"])
    assert head == [role, question, gold]
    assert rounds[0] == [
        {"role": "user", "content": "Here is my initial answer:\na0\n\n" + CRITIQUE}
    ]
    assert rounds[2] == [
        {"role": "assistant", "content": "f1"},
        {"role": "user", "content": "a2"},
        {"role": "user", "content": "Here is a revised proposed answer:\na2\n\n" + CRITIQUE},
    ]
    head, rounds = revision_chat(preset, record, ["a0", "a1"], ["Close. Revision is needed.", "f1"])
    assert head == answer_messages(preset, record)
    revise = rounds[0][2]["content"]
    assert "minimal edits" in revise and revise.endswith("the first try.\nRevision:")
    assert rounds[0][:2] == [
        {"role": "assistant", "content": "a0"},
        {"role": "user", "content": "Close. Revision is needed."},
    ]
    assert [m["content"] for m in rounds[1]] == ["a1", "f1", revise]


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
    _, rounds = revision_chat(preset, record, ["a"], ["bad"])
    assert rounds[0][1] == {"role": "user", "content": "Fix it: bad"}
    # A `revision` of its own is meant for every round, the restarted chat's too.
    assert preset.revision_late == preset.revision == (("user", "Fix it: {feedback}"),)
    teacher = resolve_preset(
        fast_config(
            preset="selfee_teacher",
            prompts={
                "critic": [{"role": "system", "content": "Gold: {gold}"}],
                "feedback_revision": [{"role": "user", "content": "Again: {answer}"}],
            },
        )
    )
    gold = {"instruction": "Q", "input": "", "output": "42"}
    head, rounds = feedback_chat(teacher, gold, ["41", "43"], ["f"])
    assert head == [{"role": "system", "content": "Gold: 42"}]
    assert rounds[1] == [
        {"role": "assistant", "content": "f"},
        {"role": "user", "content": "Again: 43"},
    ]
    with pytest.raises(ValueError, match="unknown placeholder"):
        fast_config(prompts={"answer": "{question}"})
    with pytest.raises(ValueError, match="unknown placeholder"):
        fast_config(prompts={"revision": [{"role": "user", "content": "{nope}"}]})
