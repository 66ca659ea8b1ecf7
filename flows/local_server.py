"""The local Prefect server sftforge runs share (started on first use, stopped when idle)."""

from __future__ import annotations


def server_command(action: str) -> int:
    raise NotImplementedError("sftforge server")


def ui_command() -> int:
    raise NotImplementedError("sftforge ui")
