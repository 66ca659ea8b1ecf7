"""The project's tokenizer and the loading of any HF tokenizer (issue 5 §1)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from training_support import EOT, REPO, TOKENIZER_DIR

from sftforge.schemas.training import TokenizerConfig
from sftforge.tasks.outputs.tokenizer import TokenizerError, load_tokenizer, resolve_bos


def test_shipped_tokenizer_loads_with_the_real_loading_code() -> None:
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(str(TOKENIZER_DIR))
    assert hf.is_fast
    specials = (hf.bos_token, hf.eos_token, hf.unk_token, hf.pad_token)
    assert specials == ("<s>", "</s>", "<unk>", "<pad>")
    assert [hf.unk_token_id, hf.bos_token_id, hf.eos_token_id, hf.pad_token_id] == [0, 1, 2, 3]
    # like LLaMA's tokenizer: <s> in front when called with add_special_tokens (the default)
    assert hf("Hello")["input_ids"][0] == hf.bos_token_id
    size = sum(p.stat().st_size for p in TOKENIZER_DIR.iterdir())
    assert size < 2_000_000
    config = json.loads((TOKENIZER_DIR / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "PreTrainedTokenizerFast"  # loads in transformers 4 too


def test_recipe_special_tokens_extend_the_vocabulary(tok_config, plain_tok_config) -> None:
    plain = load_tokenizer(plain_tok_config)
    tok = load_tokenizer(tok_config)
    assert plain.vocab_size == 1550 and plain.added_special_tokens == []
    assert tok.vocab_size == 1551  # the new vocabulary size the manifest reports
    assert tok.added_special_tokens == [EOT]
    assert tok.special_id(EOT) == 1550
    assert tok.adds_bos and resolve_bos(tok, "auto") == 1 and resolve_bos(tok, False) is None
    # a token the vocabulary already has keeps its id and is not reported as new
    again = load_tokenizer(TokenizerConfig(path=str(TOKENIZER_DIR), special_tokens=["</s>"]))
    assert again.added_special_tokens == [] and again.vocab_size == 1550


@pytest.mark.parametrize(
    "text",
    [
        "a user typing <|end_of_turn|> in the middle",
        "</s> at the start, <s> later, <unk> and <pad> too",
        "<|end_of_turn|></s><s>",
    ],
)
def test_special_token_spellings_in_text_are_text(tok, text) -> None:
    (encoded,) = tok.encode([text])
    assert not set(encoded) & tok.special_ids
    assert tok.decode(encoded) == text  # byte-level: decode is the exact inverse


def test_our_encoding_does_not_change_the_shared_hf_tokenizer(tok) -> None:
    # transformers 5 implements split_special_tokens=True by flipping a flag on the shared
    # backend; we encode with our own copy, so neither side changes the other.
    assert tok.hf("</s>", add_special_tokens=False)["input_ids"] == [2]
    tok.hf("x", split_special_tokens=True)  # flips the shared backend, not ours
    tok.hf.backend_tokenizer.encode_special_tokens = False  # put it back for other tests
    assert tok.encode(["</s>"])[0] != [2]


def test_special_id_needs_a_special_token(tok) -> None:
    with pytest.raises(TokenizerError, match="special_tokens"):
        tok.special_id("Human")
    with pytest.raises(TokenizerError, match="not a special token"):
        tok.special_id("<|im_end|>")


def test_missing_tokenizer_is_one_clear_error(tmp_path) -> None:
    with pytest.raises(TokenizerError, match="cannot load tokenizer"):
        load_tokenizer(TokenizerConfig(path=str(tmp_path / "nowhere")))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "tokenizer.json").write_text("{not json")
    with pytest.raises(TokenizerError, match="local directory"):
        load_tokenizer(TokenizerConfig(path=str(tmp_path / "broken")))


def test_make_tokenizer_reproduces_the_shipped_files() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "data" / "make_tokenizer.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
