"""Drop conversations that mention a blocked word.

OpenChat v1 blocked "openai"; FastChat blocked "openai" and "chatgpt".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Literal

from pydantic import Field

from sftforge.schemas.steps import register_step
from sftforge.tasks.base.outcome import Rejected
from sftforge.tasks.base.step_protocol import RecordFn, RecordStep, StepContext


def make_blocked_words_filter(words: list[str]) -> Callable[[dict[str, Any]], Any]:
    """Case-insensitive substring match, as both projects did (so "OpenAI's" matches)."""
    pattern = re.compile("|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)), re.I)

    def filter_blocked_words(record: dict[str, Any]) -> dict[str, Any] | Rejected:
        for i, message in enumerate(record["messages"]):
            hit = pattern.search(message["content"])
            if hit:
                return Rejected("blocked_word", f"{hit.group(0).lower()!r} in message {i}")
        return record

    return filter_blocked_words


@register_step
class FilterBlockedWordsStep(RecordStep):
    """Drop records that mention a blocked word (case-insensitive substring)."""

    step: Literal["filter_blocked_words"]
    words: list[str] = Field(min_length=1)

    def make(self, context: StepContext) -> RecordFn:
        return make_blocked_words_filter(self.words)
