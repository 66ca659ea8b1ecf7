"""Guanaco examples are what QLoRA's collator builds for `--dataset oasst1 --target_max_len 512`.

QLoRA (artidoro/qlora, qlora.py, DataCollatorForCausalLM) tokenizes the source as
`bos_token + input` (input is empty for oasst1) and the target as `text + eos_token`, each with
add_special_tokens=False, the target cut at target_max_len; the source is masked. So an example
is BOS + 512 tokens at most, and EOS is there only when the text left room for it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from training_support import REPO, all_train, records_fn

from sftforge.schemas.training import InstructionTokensOutput
from sftforge.tasks.outputs.instruction_tokens import IGNORE_INDEX, write_instruction_tokens
from sftforge.tasks.outputs.prompt_templates import selfee_target
from sftforge.tasks.outputs.tokenizer import load_tokenizer
from sftforge.tasks.readers.converters import guanaco_text

SAMPLE = REPO / "data" / "instructions" / "openassistant_guanaco.jsonl"
TARGET_MAX_LEN = 512  # scripts/finetune_guanaco_*.sh
SOURCE_MAX_LEN = 16


def qlora_example(hf, text: str) -> tuple[list[int], list[int]]:
    """(input_ids, labels) as QLoRA's collator makes them for one oasst1 row (no padding)."""
    source = hf(hf.bos_token, max_length=SOURCE_MAX_LEN, truncation=True, add_special_tokens=False)
    target = hf(
        text + hf.eos_token, max_length=TARGET_MAX_LEN, truncation=True, add_special_tokens=False
    )
    ids = source["input_ids"] + target["input_ids"]
    return ids, [IGNORE_INDEX] * len(source["input_ids"]) + target["input_ids"]


def _rows(tmp_path: Path, config, records: list[dict], **options) -> tuple[dict, list[dict]]:
    output = InstructionTokensOutput(
        format="instruction_tokens", template="guanaco", tokenizer=config, **options
    )
    result = write_instruction_tokens(tmp_path, output, records_fn(records), all_train)
    path = tmp_path / "export" / "guanaco.train.jsonl"
    return result, [json.loads(line) for line in path.read_text().splitlines()]


def _record(text: str, i: int = 0) -> dict:
    record = guanaco_text({"text": text}, "oasst1", f"oasst1-{i}")
    assert isinstance(record, dict), record
    return record


def _sample_texts() -> list[str]:
    return [json.loads(line)["text"] for line in SAMPLE.read_text().splitlines()]


def test_default_cutoff_gives_qloras_512_token_target(tmp_path, plain_tok_config) -> None:
    """A dialogue longer than 512 tokens: BOS + its first 512 tokens, no EOS (it did not fit).
    (cutoff_len 512 counted BOS in it, and the examples were one token short.)"""
    hf = load_tokenizer(plain_tok_config).hf
    long_text = "".join(_sample_texts())  # every sample row, one long multi-turn dialogue
    short_text = _sample_texts()[1]
    result, rows = _rows(tmp_path, plain_tok_config, [_record(long_text), _record(short_text, 1)])
    assert len(hf(long_text, add_special_tokens=False)["input_ids"]) > TARGET_MAX_LEN
    for row, text in zip(rows, [long_text, short_text], strict=True):
        ids, labels = qlora_example(hf, text)
        assert row["input_ids"] == ids and row["labels"] == labels
    assert len(rows[0]["input_ids"]) == 1 + TARGET_MAX_LEN
    assert result["cutoff_len"] == 1 + TARGET_MAX_LEN and result["counts"]["truncated"] == 1


def test_every_sample_row_is_qloras_example(tmp_path, plain_tok_config) -> None:
    hf = load_tokenizer(plain_tok_config).hf
    texts = _sample_texts()
    _, rows = _rows(tmp_path, plain_tok_config, [_record(t, i) for i, t in enumerate(texts)])
    assert [(r["input_ids"], r["labels"]) for r in rows] == [qlora_example(hf, t) for t in texts]


def test_the_text_is_trained_on_as_written(tmp_path, plain_tok_config) -> None:
    """QLoRA trains on the row's text itself: the space and newlines around turns are kept
    (the parsed messages are stripped, the whitespace comes back from meta.text)."""
    hf = load_tokenizer(plain_tok_config).hf
    text = "### Human: Hi there \n### Assistant: Hello!\n"
    _, (row,) = _rows(tmp_path, plain_tok_config, [_record(text)])
    assert (row["input_ids"], row["labels"]) == qlora_example(hf, text)


def test_mask_human_keeps_the_written_replies(tmp_path, plain_tok_config) -> None:
    tok = load_tokenizer(plain_tok_config)
    text = "### Human: Hi there \n### Assistant: Hello!\n### Human: More?### Assistant:  Yes."
    _, (row,) = _rows(tmp_path, plain_tok_config, [_record(text)], mask_human=True)
    assert tok.decode(row["input_ids"]) == "<s>" + text + "</s>"
    supervised = [t for t in row["labels"] if t != IGNORE_INDEX]
    assert tok.decode(supervised) == " Hello!\n  Yes.</s>"


def test_real_selfee_chains_as_guanaco_text(tmp_path, plain_tok_config, selfee_records) -> None:
    """2,777 real answer → feedback → revision chains written as Guanaco dialogues: every one
    is QLoRA's example, the long ones cut at 512 target tokens (skips without ../shared)."""
    hf = load_tokenizer(plain_tok_config).hf
    texts = [
        f"### Human: {r['instruction']}### Assistant: {selfee_target(r['outputs'])}"
        for r in selfee_records
    ]
    records = [_record(text, i) for i, text in enumerate(texts)]
    result, rows = _rows(tmp_path, plain_tok_config, records)
    assert len(rows) == len(texts) == 2777
    expected = [qlora_example(hf, text) for text in texts]
    assert [(r["input_ids"], r["labels"]) for r in rows] == expected
    cut = sum(len(ids) == 1 + TARGET_MAX_LEN for ids, _ in expected)
    assert cut > 0 and result["counts"]["truncated"] <= cut


@pytest.mark.parametrize("cutoff_len", [64, 513])
def test_an_explicit_cutoff_len_still_counts_bos(tmp_path, plain_tok_config, cutoff_len) -> None:
    _, (row,) = _rows(
        tmp_path, plain_tok_config, [_record("".join(_sample_texts()))], cutoff_len=cutoff_len
    )
    assert len(row["input_ids"]) == cutoff_len
