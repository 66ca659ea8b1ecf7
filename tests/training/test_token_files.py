"""OpenChat token files: format, split before splitting, reruns, independent re-tokenization."""

from __future__ import annotations

import json
import random

import pyarrow.parquet as pq
import pytest
from tokenizers import AddedToken
from training_support import (
    EOT,
    TOKENIZER_DIR,
    all_train,
    conv,
    digest,
    every_third_eval,
    instruction,
    records_fn,
)

import sftforge.tasks.outputs.token_files as token_files
from sftforge.schemas.training import OpenChatTokensOutput
from sftforge.tasks.outputs.long_conversations import Piece
from sftforge.tasks.outputs.token_checks import TrainingFileError
from sftforge.tasks.outputs.token_files import write_openchat_tokens


def _config(tok_config, **options) -> OpenChatTokensOutput:
    return OpenChatTokensOutput(format="openchat_tokens", tokenizer=tok_config, **options)


def test_files_are_openchats_format(tmp_path, tok_config, ids) -> None:
    records = [conv(("user", "Hello"), ("assistant", "Hi there."), id="c1")]
    result = write_openchat_tokens(tmp_path, _config(tok_config), records_fn(records), all_train)
    export = tmp_path / "export"
    assert sorted(p.name for p in export.iterdir()) == [
        "openchat.eval.json",  # always there, empty here: OpenChat's trainer opens it
        "openchat.eval.parquet",
        "openchat.eval.text.json",
        "openchat.train.json",
        "openchat.train.parquet",
        "openchat.train.text.json",
    ]
    ((token_ids, mask),) = json.loads((export / "openchat.train.json").read_text())
    expected = ids("<s>", "Human", ":", "Ġ", "H", "el", "lo", EOT)
    expected += ids("Assistant", ":", "Ġ", "H", "i", "Ġthe", "re", ".", EOT)
    assert token_ids == expected
    assert mask == [False] * 11 + [True] * 6  # OpenChat wrote Python booleans
    assert json.loads((export / "openchat.train.text.json").read_text()) == [
        "<s>Human: Hello<|end_of_turn|>Assistant: Hi there.<|end_of_turn|>"
    ]
    row = pq.read_table(export / "openchat.train.parquet").to_pylist()[0]
    assert row == {
        "id": "c1",
        "piece": 0,
        "input_ids": token_ids,
        "supervise_mask": mask,
        "length": 17,
        "truncated": False,
    }
    assert result["vocab_size"] == 1551 and result["added_special_tokens"] == [EOT]
    assert result["counts"]["train_examples"] == 1 and result["counts"]["train_tokens"] == 17
    assert result["counts"]["train_supervised_tokens"] == 6


def test_split_is_decided_per_conversation_before_splitting(tmp_path, tok_config) -> None:
    records = []
    for i in range(12):
        turns = []
        for t in range(4):
            turns += [("user", f"Question {t} of {i}?"), ("assistant", "Answer. " * (4 + t))]
        records.append(conv(*turns, id=f"c{i}"))
    config = _config(tok_config, long_conversations="split", max_length=48)
    result = write_openchat_tokens(tmp_path, config, records_fn(records), every_third_eval)
    export = tmp_path / "export"
    train = pq.read_table(export / "openchat.train.parquet").to_pylist()
    evals = pq.read_table(export / "openchat.eval.parquet").to_pylist()
    assert {r["id"] for r in train} & {r["id"] for r in evals} == set()
    assert {r["id"] for r in evals} == {f"c{i}" for i in range(0, 12, 3)}
    assert max(r["length"] for r in train + evals) <= 48
    assert result["counts"]["split_pieces"] > 0
    assert result["counts"]["eval_conversations"] == 4
    assert len(json.loads((export / "openchat.eval.json").read_text())) == len(evals)


def test_rerun_is_byte_identical_and_empties_a_stale_eval_split(tmp_path, tok_config) -> None:
    records = [conv(("user", f"q{i}"), ("assistant", f"a{i}"), id=f"c{i}") for i in range(9)]
    config = _config(tok_config)
    write_openchat_tokens(tmp_path, config, records_fn(records), every_third_eval)
    first = digest(tmp_path / "export")
    write_openchat_tokens(tmp_path, config, records_fn(records), every_third_eval)
    assert digest(tmp_path / "export") == first
    assert "openchat.eval.json" in first
    write_openchat_tokens(tmp_path, config, records_fn(records), all_train)  # no split now
    assert json.loads((tmp_path / "export" / "openchat.eval.json").read_text()) == []
    no_text = _config(tok_config, text_files=False)
    write_openchat_tokens(tmp_path, no_text, records_fn(records), all_train)
    assert sorted(digest(tmp_path / "export")) == [
        "openchat.eval.json",
        "openchat.eval.parquet",
        "openchat.train.json",
        "openchat.train.parquet",
    ]


def test_conversations_without_supervision_are_dropped_and_counted(tmp_path, tok_config) -> None:
    records = [
        conv(("user", "Hello"), ("assistant", "Hi"), id="c1"),
        conv(("system", "only a system prompt"), id="c2"),
        conv(("user", "x " * 200), ("assistant", "late"), id="c3"),  # the cut leaves no answer
    ]
    config = _config(tok_config, max_length=64)
    result = write_openchat_tokens(tmp_path, config, records_fn(records), all_train)
    assert result["counts"]["dropped_no_supervision"] == 2
    assert result["counts"]["train_examples"] == 1


def test_instruction_records_become_one_exchange(tmp_path, tok_config) -> None:
    records = [instruction("Add 2 and 3.", input="2 + 3", output="5")]
    write_openchat_tokens(tmp_path, _config(tok_config), records_fn(records), all_train)
    text = json.loads((tmp_path / "export" / "openchat.train.text.json").read_text())
    assert text == ["<s>Human: Add 2 and 3.\n2 + 3<|end_of_turn|>Assistant: 5<|end_of_turn|>"]


def test_a_failed_check_writes_nothing(tmp_path, tok_config, monkeypatch) -> None:
    records = [conv(("user", "Hello"), ("assistant", "Hi"), id="c1")]
    write_openchat_tokens(tmp_path, _config(tok_config), records_fn(records), all_train)
    before = digest(tmp_path / "export")

    def wrong_mask(encoded, max_length, mode):  # supervises the user's turn as well
        ids = encoded.header.ids + [t for u in encoded.turns for t in u.ids]
        return [Piece(ids, [True] * len(ids), 0, 0, 2, False)]

    monkeypatch.setattr(token_files, "fit", wrong_mask)
    with pytest.raises(TrainingFileError, match="supervised run"):
        write_openchat_tokens(tmp_path, _config(tok_config), records_fn(records), all_train)
    assert digest(tmp_path / "export") == before  # old files intact, no temporaries left
    assert not list((tmp_path / "export").glob(".*.tmp"))


ALPHABET = list("abcXYZ019 .,:;!?#") + ["  ", "\n", "\n\n", "\t", "é", "ß", "你好", "🙂", "\u0301"]
SPELLINGS = ["<|end_of_turn|>", "</s>", "<s>", "<unk>", "<pad>", "Human: ", "Assistant: "]


def _random_text(rng: random.Random) -> str:
    parts = [rng.choice(ALPHABET) for _ in range(rng.randint(0, 40))]
    if rng.random() < 0.4:
        parts.insert(rng.randint(0, len(parts)), rng.choice(SPELLINGS))
    return "".join(parts)


def _random_conversations(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        turns = [("system", _random_text(rng))] if rng.random() < 0.3 else []
        for _ in range(rng.randint(1, 4)):
            turns += [("user", _random_text(rng)), ("assistant", _random_text(rng))]
        out.append(conv(*turns, id=f"r{i}"))
    return out


@pytest.mark.parametrize("template", ["openchat", "opencoder"])
def test_independent_retokenization_of_random_conversations(tmp_path, tok_config, template) -> None:
    """Rebuild every example with transformers' own API on a fresh tokenizer instance."""
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(str(TOKENIZER_DIR))
    hf.add_tokens([AddedToken(EOT, special=True, normalized=False)], special_tokens=True)
    eot = hf.convert_tokens_to_ids(EOT)

    def text_ids(text: str) -> list[int]:
        return hf(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]

    records = _random_conversations(200, seed=11)
    config = _config(tok_config, template=template, max_length=8192)
    write_openchat_tokens(tmp_path, config, records_fn(records), all_train)
    examples = json.loads((tmp_path / "export" / f"{template}.train.json").read_text())
    texts = json.loads((tmp_path / "export" / f"{template}.train.text.json").read_text())
    prefixes = (
        {"system": "", "user": "Human: ", "assistant": "Assistant: "}
        if template == "openchat"
        else {"system": "", "user": "User:", "assistant": "Assistant:"}
    )
    assert len(examples) == len(records)
    for record, (got_ids, got_mask), got_text in zip(records, examples, texts, strict=True):
        want_ids = [hf.bos_token_id] if template == "openchat" else []
        want_mask = [False] * len(want_ids)
        want_text = "<s>" if template == "openchat" else ""
        for m in record["messages"]:
            prefix, content = text_ids(prefixes[m["role"]]), text_ids(m["content"])
            want_ids += prefix + content + [eot]
            want_mask += [False] * len(prefix) + [m["role"] == "assistant"] * (len(content) + 1)
            want_text += prefixes[m["role"]] + m["content"] + EOT
        assert got_ids == want_ids, record["id"]
        assert got_mask == want_mask, record["id"]
        assert got_text == want_text == hf.decode(got_ids)


def test_a_truncated_answer_keeps_its_supervised_prefix(tmp_path, tok_config) -> None:
    answer = "你好 world, " * 40  # multi-byte characters: the cut may fall inside one
    records = [conv(("user", "Hello"), ("assistant", answer), id="c1")]
    config = _config(tok_config, max_length=40)
    result = write_openchat_tokens(tmp_path, config, records_fn(records), all_train)
    (row,) = pq.read_table(tmp_path / "export" / "openchat.train.parquet").to_pylist()
    assert row["length"] == 40 and row["truncated"] and result["counts"]["truncated"] == 1
    assert row["supervise_mask"][:11] == [False] * 11 and all(row["supervise_mask"][11:])


def test_generated_demo_conversations_pass_every_check(tmp_path, tok_config) -> None:
    """The demo generator's conversations (Markdown answers with code, tables, math)."""
    import importlib.util

    from training_support import REPO

    from sftforge.tasks.steps.html_to_markdown import html_to_markdown

    spec = importlib.util.spec_from_file_location(
        "sample", REPO / "data" / "make_sharegpt_sample.py"
    )
    sample = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(sample)
    records = []
    for item in sample.generate(60, seed=3, code_heavy=True, flawed_share=0.0):
        turns = [
            ("user" if t["from"] == "human" else "assistant",
             html_to_markdown(t["value"]) if t["from"] == "gpt" else t["value"])
            for t in item["conversations"]
        ]  # fmt: skip
        records.append(conv(*turns, id=item["id"]))
    for mode in ("truncate", "split"):
        config = _config(tok_config, long_conversations=mode, max_length=200, name=mode)
        result = write_openchat_tokens(tmp_path, config, records_fn(records), every_third_eval)
        counts = result["counts"]
        assert counts["train_conversations"] + counts["eval_conversations"] == 60
        assert counts["truncated"] > 0 if mode == "truncate" else counts["split_pieces"] > 0
