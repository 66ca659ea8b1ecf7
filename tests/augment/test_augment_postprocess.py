"""SelFee's clean-ups of answers, revisions and feedback."""

from __future__ import annotations

from sftforge.tasks.steps.augment.postprocess import (
    clean_feedback,
    clean_revision,
    drop_leading_apology,
    drop_trailing_revision_sentence,
    normalize_verdict,
)


def test_drop_trailing_revision_sentence() -> None:
    code = "```python\nx = sorted(a)\n```"
    assert drop_trailing_revision_sentence(code + "\n\nThis revision uses sorted().") == code
    assert drop_trailing_revision_sentence("Use sorted. The revision is shorter.") == "Use sorted."
    # Only the last sentence, and only when it mentions "revision ".
    kept = "I hope this revision helps. Let me know."
    assert drop_trailing_revision_sentence(kept) == kept
    assert drop_trailing_revision_sentence("No revisions were made here. Done.") == (
        "No revisions were made here. Done."
    )
    # Never the whole text.
    assert drop_trailing_revision_sentence("My revision is below") == "My revision is below"


def test_drop_leading_apology() -> None:
    assert drop_leading_apology("I apologize for the confusion. Use `sorted(a)`.") == (
        "Use `sorted(a)`."
    )
    assert drop_leading_apology("I apologize, my mistake!\nprint(1)") == "print(1)"
    assert drop_leading_apology("Sorry. I apologize.") == "Sorry. I apologize."
    assert drop_leading_apology("I apologize") == "I apologize"


def test_normalize_verdict() -> None:
    text = "You are close to the solution, but revision is needed. Please fix the loop."
    assert normalize_verdict(text) == (
        "You are close to the solution. Revision is needed. Please fix the loop."
    )
    assert normalize_verdict("Good overall but Revision is not needed.") == (
        "Good overall. Revision is not needed."
    )
    plain = "Score: 8\n\nRevision is needed."
    assert normalize_verdict(plain) == plain


def test_cleaners_compose() -> None:
    raw = "I apologize for the mistake. Here it is:\nsorted(a)\nThis revision is correct."
    assert clean_revision(raw) == "Here it is:\nsorted(a)"
    assert clean_feedback("  Nice, but revision is needed.  ") == "Nice. Revision is needed."


def test_cleaners_keep_selfee_verdicts(selfee_records: list[dict]) -> None:
    """SelFee's released feedback is already clean: normalising never flips a stop decision."""
    from sftforge.tasks.steps.augment.presets import needs_revision

    for record in selfee_records:
        for pair in record["outputs"]:
            feedback = pair["feedback"]
            assert needs_revision(clean_feedback(feedback)) == needs_revision(feedback)
