"""What a step returns for a record it does not keep."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Rejected:
    """A step's verdict on one record: dropped, with a named reason and a human detail."""

    reason: str
    detail: str = ""
