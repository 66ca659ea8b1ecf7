"""Small builders shared by the unit tests."""

from __future__ import annotations

from typing import Any


def conv(
    *turns: tuple[str, str], id: str = "c1", model: str | None = "Model: GPT-4"
) -> dict[str, Any]:
    return {
        "id": id,
        "source": "test",
        "model": model,
        "messages": [{"role": r, "content": c} for r, c in turns],
        "meta": {},
    }
