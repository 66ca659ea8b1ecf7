"""Helpers shared by the training-file tests (imported by name, like tests/augment's support)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
TOKENIZER_DIR = REPO / "data" / "tokenizer"
SELFEE_DATA = REPO.parent / "shared" / "data" / "selfee_conala_feedback.jsonl"
EOT = "<|end_of_turn|>"


def records_fn(records: list[dict[str, Any]]) -> Callable[[], Iterator[dict[str, Any]]]:
    return lambda: iter(records)


def conv(*turns: tuple[str, str], id: str = "c1") -> dict[str, Any]:
    return {
        "id": id,
        "source": "test",
        "model": None,
        "messages": [{"role": r, "content": c} for r, c in turns],
        "meta": {},
    }


def instruction(
    instruction: str, input: str = "", output: str = "", id: str = "i1", **extra: Any
) -> dict[str, Any]:
    return {
        "id": id,
        "source": "test",
        "dataset": "test",
        "instruction": instruction,
        "input": input,
        "output": output,
        "meta": {},
        **extra,
    }


def all_train(record: dict[str, Any]) -> str:
    return "train"


def every_third_eval(record: dict[str, Any]) -> str:
    """A deterministic split by the id's trailing number (c0, c1, …)."""
    return "eval" if int(record["id"].lstrip("abcdefghijklmnopqrstuvwxyz-")) % 3 == 0 else "train"


def digest(folder: Path) -> dict[str, str]:
    """File name -> sha256 of every file in `folder` (temporaries included: none may be left)."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }
