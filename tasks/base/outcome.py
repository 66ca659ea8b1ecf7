"""What a step returns for a record it does not keep, and the reject row that keeps it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Rejected:
    """A step's verdict on one record: dropped, with a named reason and a human detail."""

    reason: str
    detail: str = ""


def reject_row(record: dict[str, Any], rejected: Rejected, original: str) -> dict[str, Any]:
    """OUT/rejects/<stage>/ row: `original` is the record as it entered the stage (JSON text)."""
    return {
        "id": record.get("id"),
        "source": record.get("source", ""),
        "reason": rejected.reason,
        "detail": rejected.detail,
        "record": original,
    }
