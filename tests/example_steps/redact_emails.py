"""A step written outside sftforge (README: "Write your own step"): e-mail addresses in
messages become `<email>`; a record that is nothing but addresses is rejected."""

from __future__ import annotations

import re
from typing import ClassVar, Literal

from sftforge.schemas.steps import CONVERSATION, register_step
from sftforge.tasks.base.outcome import Rejected
from sftforge.tasks.base.step_protocol import Record, RecordFn, RecordStep, StepContext

EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")


@register_step
class RedactEmailsStep(RecordStep):
    kinds: ClassVar[tuple[str, ...]] = CONVERSATION
    step: Literal["redact_emails"]
    replacement: str = "<email>"

    def make(self, context: StepContext) -> RecordFn:
        def redact(record: Record) -> Record | Rejected:
            messages = [
                {**m, "content": EMAIL.sub(self.replacement, m["content"])}
                for m in record["messages"]
            ]
            if all(not EMAIL.sub("", m["content"]).strip() for m in record["messages"]):
                return Rejected("only_emails", f"{len(messages)} messages")
            return {**record, "messages": messages}

        return redact
