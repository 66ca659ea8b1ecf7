"""Fixtures for the training-file tests: the project's own tokenizer, and token look-ups by
spelling (so expected ids are written down by hand as tokens, not computed by the encoder)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from training_support import EOT, SELFEE_DATA, TOKENIZER_DIR

from sftforge.schemas.training import TokenizerConfig
from sftforge.tasks.outputs.tokenizer import LoadedTokenizer, load_tokenizer


@pytest.fixture(scope="session")
def tok_config() -> TokenizerConfig:
    return TokenizerConfig(path=str(TOKENIZER_DIR), special_tokens=[EOT])


@pytest.fixture(scope="session")
def plain_tok_config() -> TokenizerConfig:
    return TokenizerConfig(path=str(TOKENIZER_DIR))


@pytest.fixture(scope="session")
def tok(tok_config: TokenizerConfig) -> LoadedTokenizer:
    return load_tokenizer(tok_config)


@pytest.fixture(scope="session")
def vocab() -> dict[str, int]:
    """The shipped vocabulary read straight from tokenizer.json (byte-level spellings: Ġ is a
    space, Ċ a newline), plus the special tokens."""
    data = json.loads((TOKENIZER_DIR / "tokenizer.json").read_text())
    table = dict(data["model"]["vocab"])
    table.update({t["content"]: t["id"] for t in data["added_tokens"]})
    return table


@pytest.fixture(scope="session")
def ids(vocab: dict[str, int], tok: LoadedTokenizer) -> Callable[..., list[int]]:
    """ids("Human", ":", "Ġ") -> their ids; the end-of-turn token by its spelling too."""

    def lookup(*tokens: str) -> list[int]:
        return [tok.special_id(EOT) if t == EOT else vocab[t] for t in tokens]

    return lookup


@pytest.fixture(scope="session")
def selfee_records() -> list[dict[str, Any]]:
    """The 2,777 real SelFee records as augmented records (skips without ../shared)."""
    if not SELFEE_DATA.exists():
        pytest.skip("../shared/data/selfee_conala_feedback.jsonl is not here")
    records = []
    with SELFEE_DATA.open(encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            row = json.loads(line)
            records.append(
                {
                    "id": f"conala-{i}",
                    "source": "selfee",
                    "dataset": "conala",
                    "meta": {},
                    "truncated": False,
                    "usage": {},
                    "status": "done",
                    "error": None,
                    **row,
                }
            )
    return records
