"""SelFee's clean-ups of answers, revisions and feedback -- its rules exactly, whitespace and all
(data_augmentation/call_openai_multiprocessing_*.py: delete_revision_word_from_last, the
"i apologize" cut, the "but" rule)."""

from __future__ import annotations

from sftforge.tasks.steps.augment.postprocess import (
    clean_answer,
    clean_feedback,
    clean_revision,
    drop_leading_apology,
    drop_revision_remarks,
    drop_trailing_revision_sentence,
    normalize_verdict,
)


def test_drop_trailing_revision_sentence() -> None:
    code = "```python\nx = sorted(a)\n```"
    # One pass drops the sentence and leaves its line break; the passes after it drop the
    # blank lines, until nothing changes (SelFee's while loop).
    once = drop_trailing_revision_sentence(code + "\n\nThis revision uses sorted().")
    assert once == code + "\n\n"
    assert drop_revision_remarks(code + "\n\nThis revision uses sorted().") == code
    # The line's other sentences stay, joined with nothing between them, after a line break.
    assert drop_revision_remarks("Use sorted. The revision is shorter.") == "\nUse sorted."
    assert drop_revision_remarks("A is 1. B is 2. This revision fixes B.") == "\nA is 1.B is 2."
    # Only a last sentence that says "revision " -- lower case, with the space.
    kept = "I hope this revision helps. Let me know."
    assert drop_revision_remarks(kept) == kept
    for text in ("No revisions were made here. Done.", "Fixed.\nRevision is below."):
        assert drop_revision_remarks(text) == text
    # Blank last lines go even without a remark; a text that is one remark goes whole.
    assert drop_revision_remarks("x = 1\n\n") == "x = 1"
    assert drop_revision_remarks("My revision is below") == ""


def test_drop_leading_apology() -> None:
    # Up to the first "." goes; the space after it stays.
    assert drop_leading_apology("I apologize for the confusion. Use `sorted(a)`.") == (
        " Use `sorted(a)`."
    )
    # "i apologize" anywhere in that piece, in any case.
    assert drop_leading_apology("Sorry, I APOLOGIZE for that. x = 1") == " x = 1"
    assert drop_leading_apology("Sorry. I apologize.") == "Sorry. I apologize."
    # No "." at all: the whole text is the first piece, and goes.
    assert drop_leading_apology("I apologize, my mistake!\nprint(1)") == ""
    assert drop_leading_apology("I apologize") == ""


def test_normalize_verdict() -> None:
    # Only the piece after the last ".": a feedback ending in "." is never changed.
    for text in (
        "You are close to the solution, but revision is needed. Please fix the loop.",
        "Good overall but Revision is not needed.",
        "Score: 8\n\nRevision is needed.",
    ):
        assert normalize_verdict(text) == text
    assert normalize_verdict("Score: 8. Good overall, but revision is not needed") == (
        "Score: 8.Revision is not needed"
    )
    assert normalize_verdict("Score 6. Close, but Revision is needed\n") == (
        "Score 6.Revision is needed"
    )
    # "but" inside a word counts; "revision is needed" wins over "... not needed".
    assert normalize_verdict("No bugs. Revision is needed to attribute it") == (
        "No bugs.Revision is needed"
    )
    assert normalize_verdict("Ok. But revision is needed (revision is not needed?)") == (
        "Ok.Revision is needed"
    )


def test_cleaners_compose() -> None:
    raw = "I apologize for the mistake. Here it is:\nsorted(a)\nThis revision is correct."
    assert clean_revision(raw) == " Here it is:\nsorted(a)"
    # The first answer: as written (selfee), remarks dropped but no apology cut (teacher).
    first = "I apologize. x = 1\nThis revision is final."
    assert clean_answer(first, teacher=False) == first
    assert clean_answer(first, teacher=True) == "I apologize. x = 1"
    # The first critique is kept as written; the "but" rule is for critiques of revisions.
    fb = "Fine. Close, but revision is needed  "
    assert clean_feedback(fb, of_revision=False) == fb
    assert clean_feedback(fb, of_revision=True) == "Fine.Revision is needed"
    assert clean_feedback("  Nice. Revision is needed.  ", of_revision=True) == (
        "  Nice. Revision is needed.  "
    )


def test_selfee_records_are_fixed_points(selfee_records: list[dict]) -> None:
    """SelFee's released chains went through these rules: applied again, they change nothing
    -- not a character of the 2,777 chains' answers and critiques."""
    for record in selfee_records:
        pairs = record["outputs"]
        assert clean_answer(pairs[0]["output"], teacher=True) == pairs[0]["output"]
        assert clean_feedback(pairs[0]["feedback"], of_revision=False) == pairs[0]["feedback"]
        for pair in pairs[1:]:
            assert clean_revision(pair["output"]) == pair["output"]
            assert clean_feedback(pair["feedback"], of_revision=True) == pair["feedback"]
