"""Writers and checks on a SentencePiece-style tokenizer (Metaspace, LLaMA-1/2's family): its
decoder drops the space a sequence starts with, and each separately tokenized segment gets a
"▁" in front — the checks must accept that without accepting wrong masks."""

from __future__ import annotations

import json

import pytest
from training_support import all_train, conv, instruction, records_fn

from sftforge.schemas.training import InstructionTokensOutput, OpenChatTokensOutput, TokenizerConfig
from sftforge.tasks.outputs.instruction_tokens import IGNORE_INDEX, write_instruction_tokens
from sftforge.tasks.outputs.token_files import write_openchat_tokens
from sftforge.tasks.outputs.tokenizer import load_tokenizer

TEXTS = [
    "Hello there, how are you today?",
    "I am fine. The answer is 5.",
    "Below is an instruction that describes a task. Write a response.",
    "### Instruction: Add 2 and 3. ### Response: 5",
    "### Human: Tell me a joke. ### Assistant: No.",
    "Human: Assistant: User:",
]


@pytest.fixture(scope="module")
def sp_tokenizer(tmp_path_factory) -> TokenizerConfig:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False
    )
    tok.train_from_iterator(TEXTS * 20 + [chr(c) for c in range(32, 127)] + ["\n"], trainer)
    folder = tmp_path_factory.mktemp("sp")
    PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    ).save_pretrained(str(folder))
    return TokenizerConfig(path=str(folder), special_tokens=["<|end_of_turn|>"])


def test_openchat_files_on_a_sentencepiece_style_tokenizer(tmp_path, sp_tokenizer) -> None:
    records = [
        conv(("user", "Hello there"), ("assistant", "I am fine."), id="c1"),
        conv(
            ("user", "how are you?"),
            ("assistant", "The answer is 5."),
            ("user", "No."),
            ("assistant", "Hello"),
            id="c2",
        ),  # fmt: skip
    ]
    config = OpenChatTokensOutput(format="openchat_tokens", tokenizer=sp_tokenizer)
    result = write_openchat_tokens(tmp_path, config, records_fn(records), all_train)
    assert result["counts"]["train_examples"] == 2  # every §6 check passed
    tok = load_tokenizer(sp_tokenizer)
    assert not tok.adds_bos  # no post-processor: bos: auto adds none for this model
    (first, _) = json.loads((tmp_path / "export" / "openchat.train.json").read_text())
    supervised = [t for t, m in zip(*first, strict=True) if m]
    assert tok.decode(supervised) == "I am fine.<|end_of_turn|>"


def test_instruction_targets_on_a_sentencepiece_style_tokenizer(tmp_path, sp_tokenizer) -> None:
    records = [instruction("Add 2 and 3.", output="The answer is 5.")]
    config = InstructionTokensOutput(
        format="instruction_tokens", template="alpaca_short", tokenizer=sp_tokenizer
    )
    write_instruction_tokens(tmp_path, config, records_fn(records), all_train)
    (row,) = [json.loads(x) for x in (tmp_path / "export" / "alpaca_short.train.jsonl").open()]
    tok = load_tokenizer(sp_tokenizer)
    supervised = [t for t in row["labels"] if t != IGNORE_INDEX]
    assert tok.decode(supervised) == "The answer is 5.</s>"
    guanaco = InstructionTokensOutput(
        format="instruction_tokens", template="guanaco", mask_human=True, tokenizer=sp_tokenizer
    )
    dialogue = conv(("user", "Tell me a joke."), ("assistant", "No."), id="g1")
    write_instruction_tokens(tmp_path, guanaco, records_fn([dialogue]), all_train)
    (row,) = [json.loads(x) for x in (tmp_path / "export" / "guanaco.train.jsonl").open()]
    supervised = [t for t in row["labels"] if t != IGNORE_INDEX]
    assert tok.decode(supervised).strip() == "No.</s>"
