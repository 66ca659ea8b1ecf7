"""Record schemas: pydantic models for validation and docs, pyarrow schemas for storage.

Between steps a record travels as a plain dict with the same keys (cheaper than models);
`meta` is a dict in memory and JSON text on disk. A stage's records are all of one kind:
`conversation`, `instruction`, or `augmented` (an instruction after the augment step).
"""

from __future__ import annotations

from typing import Any, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict

Role = Literal["system", "user", "assistant"]
RecordKind = Literal["conversation", "instruction", "augmented"]


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role
    content: str


class Conversation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    source: str
    model: str | None = None
    messages: list[Message]
    meta: dict[str, Any] = {}


class Instruction(BaseModel):
    """SelFee / Alpaca's schema, plus where the record came from."""

    model_config = ConfigDict(extra="forbid")
    id: str
    source: str
    dataset: str  # SelFee's merge_data.py names: alpaca, flan, gsm8k, … , sharegpt
    instruction: str
    input: str = ""
    output: str = ""
    meta: dict[str, Any] = {}


class Revision(BaseModel):
    output: str
    feedback: str


class Augmented(Instruction):
    """After the augment step: SelFee's answer → feedback → revision chain."""

    outputs: list[Revision] = []
    iteration: int = 0
    iteration_truncated: bool = False
    truncated: bool = False
    usage: dict[str, float] = {}
    status: Literal["done", "failed"] = "done"
    error: str | None = None


class Reject(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str | None
    source: str
    reason: str
    detail: str
    record: str  # the record as it entered the rejecting stage, as JSON text


MESSAGE_TYPE = pa.struct([("role", pa.string()), ("content", pa.string())])

CONVERSATION_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("source", pa.string()),
        ("model", pa.string()),
        ("messages", pa.list_(MESSAGE_TYPE)),
        ("meta", pa.string()),
    ]
)

INSTRUCTION_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("source", pa.string()),
        ("dataset", pa.string()),
        ("instruction", pa.string()),
        ("input", pa.string()),
        ("output", pa.string()),
        ("meta", pa.string()),
    ]
)

AUGMENTED_SCHEMA = pa.schema(
    list(INSTRUCTION_SCHEMA)
    + [
        ("outputs", pa.list_(pa.struct([("output", pa.string()), ("feedback", pa.string())]))),
        ("iteration", pa.int32()),
        ("iteration_truncated", pa.bool_()),
        ("truncated", pa.bool_()),
        (
            "usage",
            pa.struct(
                [
                    ("prompt_tokens", pa.int64()),
                    ("completion_tokens", pa.int64()),
                    ("cost", pa.float64()),
                ]
            ),
        ),
        ("status", pa.string()),
        ("error", pa.string()),
    ]
)

SCHEMAS: dict[str, pa.Schema] = {
    "conversation": CONVERSATION_SCHEMA,
    "instruction": INSTRUCTION_SCHEMA,
    "augmented": AUGMENTED_SCHEMA,
}

# Free-form fields stored as JSON text (their shape differs from record to record).
JSON_FIELDS = frozenset({"meta"})

REJECT_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("source", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("record", pa.string()),
    ]
)
