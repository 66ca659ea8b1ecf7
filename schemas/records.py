"""Record schemas: pydantic models for validation and docs, pyarrow schemas for storage.

Between steps a record travels as a plain dict with the same keys (cheaper than models);
`meta` is a dict in memory and JSON text on disk.
"""

from __future__ import annotations

from typing import Any, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict

Role = Literal["system", "user", "assistant"]


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

REJECT_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("source", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("record", pa.string()),
    ]
)
