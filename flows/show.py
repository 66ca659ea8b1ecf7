"""`sftforge show OUT`: a run's records (or rejects) printed as a person reads them."""

from __future__ import annotations

from pathlib import Path


def show(
    out: Path,
    *,
    stage: str | None,
    rejects: bool,
    reason: str | None,
    record_id: str | None,
    limit: int,
) -> int:
    raise NotImplementedError("sftforge show")
