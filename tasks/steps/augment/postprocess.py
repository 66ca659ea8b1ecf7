"""SelFee's clean-ups of what the model wrote, each a pure str -> str function.

They run on the raw response stored in the journal, so changing one never re-sends a call.
"""

from __future__ import annotations

import re

# A sentence ends at . ! or ? followed by whitespace, or at a line break.
_BOUNDARY = re.compile(r"[.!?](?=\s)|\n")
_VERDICT_AFTER_BUT = re.compile(
    r",?\s+but\s+(revision\s+is\s+(?:not\s+)?needed)\b", flags=re.IGNORECASE
)


def drop_trailing_revision_sentence(text: str) -> str:
    """Drop a last sentence that talks about the revision ("This revision fixes ...").

    Models append such remarks to revisions; they are not part of the answer a student model
    should learn. Only the last sentence goes, and never the whole text.
    """
    body = text.rstrip()
    ends = [m.end() for m in _BOUNDARY.finditer(body)]
    # A boundary at the very end is the last sentence's own full stop.
    ends = [end for end in ends if end < len(body)]
    if not ends:
        return text
    cut = ends[-1]
    last = body[cut:].strip()
    if "revision " in last.lower() and body[:cut].strip():
        return body[:cut].rstrip()
    return text


def drop_leading_apology(text: str) -> str:
    """Drop a first sentence starting "I apologize ..." (a revision apologising for the answer)."""
    stripped = text.lstrip()
    if not stripped.lower().startswith("i apologize"):
        return text
    match = _BOUNDARY.search(stripped)
    if match is None:
        return text
    rest = stripped[match.end() :].lstrip()
    return rest if rest else text


def normalize_verdict(feedback: str) -> str:
    """ "..., but revision is needed." -> "... . Revision is needed." so the verdict stands alone.

    The critique before "but" is kept; only the verdict becomes its own sentence, the form
    every other feedback uses.
    """

    def bare(match: re.Match[str]) -> str:
        verdict = match.group(1)
        return ". " + verdict[0].upper() + verdict[1:].lower()

    return _VERDICT_AFTER_BUT.sub(bare, feedback)


def clean_answer(text: str) -> str:
    return drop_leading_apology(text).strip()


def clean_revision(text: str) -> str:
    return drop_trailing_revision_sentence(drop_leading_apology(text)).strip()


def clean_feedback(text: str) -> str:
    return normalize_verdict(text).strip()
