"""What a reader yields for each input record: the parsed value, or the text it could not
parse and why (the read stage turns the second kind into a reject that keeps the text)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class RawItem:
    where: str  # "file.jsonl:12" — names the record for humans and for fallback ids
    value: Any = None  # the parsed record
    text: str | None = None  # the original text, when it could not be parsed
    error: str | None = None  # why it could not be parsed
    reason: str = "invalid_json"  # the reject reason when it could not be parsed
    index: int | None = None  # its position among the file's records, when `where` is a line
