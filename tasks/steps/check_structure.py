"""Structure checks: FastChat's trimming rules, as a step that rejects instead of dying."""

from __future__ import annotations

from functools import partial
from typing import Any, ClassVar, Literal

from pydantic import Field

from sftforge.schemas.steps import CONVERSATION, register_step
from sftforge.tasks.base.outcome import Rejected
from sftforge.tasks.base.step_protocol import RecordFn, RecordStep, StepContext

_ROLES = ("user", "assistant", "system")


def check_structure(
    record: dict[str, Any], min_messages: int = 2, min_chars: int = 16, max_chars: int | None = None
) -> dict[str, Any] | Rejected:
    """Trim to a clean user/assistant alternation, or reject.

    - leading system messages are kept; then a leading assistant message is dropped
      (conversations shared from the middle) and a trailing user message is dropped
      (a question nobody answered);
    - an empty message ends the conversation there: the pairs before it are kept;
    - roles must alternate user/assistant after the system prompt (`wrong_format`);
    - fewer than `min_messages` messages or `min_chars` characters in all: `too_short`.
    """
    messages = record["messages"]
    for i, message in enumerate(messages):
        if message["role"] not in _ROLES:
            return Rejected("wrong_format", f"message {i}: unknown role {message['role']!r}")

    start = 0
    while start < len(messages) and messages[start]["role"] == "system":
        start += 1
    system, turns = messages[:start], messages[start:]
    if turns and turns[0]["role"] == "assistant":
        turns = turns[1:]
    if turns and turns[-1]["role"] == "user":
        turns = turns[:-1]

    kept: list[dict[str, Any]] = []
    for i, message in enumerate(turns):
        expected = "user" if i % 2 == 0 else "assistant"
        if message["role"] != expected:
            return Rejected(
                "wrong_format", f"turn {i} is {message['role']!r}, expected {expected!r}"
            )
        content = message["content"]
        if not content or not content[0].isprintable():
            break  # FastChat: an empty answer (a failed generation) ends the conversation
        kept.append(message)
    kept = kept[: len(kept) // 2 * 2]

    chars = sum(len(m["content"]) for m in kept)
    if len(kept) < min_messages or chars < min_chars:
        return Rejected("too_short", f"{len(kept)} messages, {chars} characters after trimming")
    if max_chars is not None and chars > max_chars:
        return Rejected("too_long", f"{chars} characters > {max_chars}")
    return {**record, "messages": system + kept}


@register_step
class CheckStructureStep(RecordStep):
    """FastChat's structure checks: alternating roles, trimmed ends, length limits."""

    kinds: ClassVar[tuple[str, ...]] = CONVERSATION
    step: Literal["check_structure"]
    min_messages: int = Field(default=2, ge=1)
    min_chars: int = Field(default=16, ge=0)
    # Reject conversations longer than this many characters in all (None: no limit).
    max_chars: int | None = Field(default=None, ge=1)

    def make(self, context: StepContext) -> RecordFn:
        return partial(
            check_structure,
            min_messages=self.min_messages,
            min_chars=self.min_chars,
            max_chars=self.max_chars,
        )
