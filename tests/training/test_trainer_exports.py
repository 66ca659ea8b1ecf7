"""Each export loaded the way its consumer loads it, with its documented field names, and
round-tripped back to our records."""

from __future__ import annotations

import json

import pytest
import yaml
from training_support import all_train, conv, every_third_eval, instruction, records_fn

from sftforge.schemas.training import AxolotlOutput, LlamaFactoryOutput, TrlOutput
from sftforge.tasks.outputs.prompt_templates import record_messages
from sftforge.tasks.outputs.trainer_exports import (
    messages_from_llama_factory,
    messages_from_trl,
    update_dataset_info,
    write_export,
)

CONVERSATIONS = [
    conv(("user", "Hello"), ("assistant", "Hi there."), id="c0"),
    conv(
        ("system", "Be brief."),
        ("user", "Plan a trip?"),
        ("assistant", "Where to?"),
        ("user", "Kyoto, 3 days."),
        ("assistant", "Day 1: temples. Day 2: markets. Day 3: gardens."),
        id="c1",
    ),
    conv(("user", "Code?"), ("assistant", "```python\nprint('hi')\n```"), id="c2"),
    conv(("user", "Bonjour <|end_of_turn|> </s>"), ("assistant", "Salut 你好 🙂"), id="c3"),
]
INSTRUCTIONS = [
    instruction("Add 2 and 3.", input="2 + 3", output="5", id="i0"),
    instruction("Name a colour.", output="Blue.", id="i1"),
    instruction("Translate.", input="chat", output="cat", id="i2"),
]


def _load(path, cache):
    """The consumers' reader: datasets.load_dataset("json", data_files=…)."""
    from datasets import load_dataset

    return load_dataset("json", data_files=str(path), split="train", cache_dir=str(cache))


def _plain(messages):
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def test_trl_messages(tmp_path) -> None:
    config = TrlOutput(format="trl")
    result = write_export(tmp_path, config, records_fn(CONVERSATIONS), all_train)
    data = _load(tmp_path / "export" / "trl.train.jsonl", tmp_path / "cache")
    assert data.column_names == ["messages"]  # TRL's conversational language-modeling column
    assert [messages_from_trl(row) for row in data] == [
        _plain(r["messages"]) for r in CONVERSATIONS
    ]
    assert set(data[0]["messages"][0]) == {"role", "content"}
    assert result["counts"] == {"train_rows": 4}


def test_trl_prompt_completion_conversational(tmp_path) -> None:
    config = TrlOutput(format="trl", style="prompt_completion", keep_id=True)
    write_export(tmp_path, config, records_fn(CONVERSATIONS + INSTRUCTIONS), all_train)
    data = _load(tmp_path / "export" / "trl.train.jsonl", tmp_path / "cache")
    assert data.column_names == ["id", "prompt", "completion"]
    row = data[1]
    assert [m["role"] for m in row["prompt"]] == ["system", "user", "assistant", "user"]
    assert row["completion"] == [
        {"role": "assistant", "content": CONVERSATIONS[1]["messages"][-1]["content"]}
    ]
    for record, row in zip(CONVERSATIONS + INSTRUCTIONS, data, strict=True):
        assert row["id"] == record["id"]
        assert messages_from_trl(row) == _plain(record_messages(record))


def test_trl_prompt_completion_standard(tmp_path) -> None:
    config = TrlOutput(format="trl", style="prompt_completion", conversational=False)
    result = write_export(tmp_path, config, records_fn(INSTRUCTIONS + CONVERSATIONS), all_train)
    data = _load(tmp_path / "export" / "trl.train.jsonl", tmp_path / "cache")
    assert data.column_names == ["prompt", "completion"]
    assert data[0] == {"prompt": "Add 2 and 3.\n2 + 3", "completion": "5"}
    assert result["counts"] == {"skipped_multi_turn": 1, "train_rows": 6}  # c1 has roles
    kept = INSTRUCTIONS + [c for c in CONVERSATIONS if c["id"] != "c1"]
    assert [messages_from_trl(row) for row in data] == [record_messages(r) for r in kept]


def test_axolotl_chat_template(tmp_path) -> None:
    config = AxolotlOutput(format="axolotl", field_messages="conversations")
    result = write_export(tmp_path, config, records_fn(CONVERSATIONS), every_third_eval)
    export = tmp_path / "export"
    entry = yaml.safe_load((export / "axolotl.yaml").read_text())
    (train,) = entry["datasets"]
    (test,) = entry["test_datasets"]
    assert train == {
        "path": "axolotl.train.jsonl",
        "ds_type": "json",
        "split": "train",
        "type": "chat_template",
        "field_messages": "conversations",
        "message_property_mappings": {"role": "role", "content": "content"},
        "roles_to_train": ["assistant"],
        "train_on_eos": "turn",
    }
    assert test["path"] == "axolotl.eval.jsonl"
    rows = []
    for item in (train, test):
        data = _load(export / item["path"], tmp_path / "cache")
        assert data.column_names == [item["field_messages"]]
        mapping = item["message_property_mappings"]
        rows += [
            [{"role": m[mapping["role"]], "content": m[mapping["content"]]} for m in row]
            for row in data[item["field_messages"]]
        ]
    want = [r for r in CONVERSATIONS if every_third_eval(r) == "train"]
    want += [r for r in CONVERSATIONS if every_third_eval(r) == "eval"]
    assert rows == [_plain(r["messages"]) for r in want]
    assert result["axolotl_config"].endswith("axolotl.yaml")


SHAREGPT_ENTRY = {
    "file_name": "llama_factory.train.json",
    "formatting": "sharegpt",
    "columns": {"messages": "conversations", "system": "system"},
    "tags": {
        "role_tag": "from",
        "content_tag": "value",
        "user_tag": "human",
        "assistant_tag": "gpt",
        "system_tag": "system",
    },
}


def test_llama_factory_sharegpt_and_dataset_info(tmp_path) -> None:
    broken = conv(("user", "a"), ("assistant", "b"), ("assistant", "c"), id="c9")
    records = CONVERSATIONS + INSTRUCTIONS + [broken]
    config = LlamaFactoryOutput(format="llama_factory")
    result = write_export(tmp_path, config, records_fn(records), all_train)
    export = tmp_path / "export"
    info = json.loads((export / "dataset_info.json").read_text())
    assert info == {"llama_factory": SHAREGPT_ENTRY}
    assert json.loads((export / "llama_factory.train.json").read_text())[0] == {
        "conversations": [
            {"from": "human", "value": "Hello"},
            {"from": "gpt", "value": "Hi there."},
        ],
        "system": "",
    }
    data = _load(export / info["llama_factory"]["file_name"], tmp_path / "cache")
    entry = info["llama_factory"]
    assert sorted(data.column_names) == sorted(entry["columns"].values())
    for row in data:  # LLaMA-Factory: human at odd positions, gpt at even
        roles = [t[entry["tags"]["role_tag"]] for t in row[entry["columns"]["messages"]]]
        assert roles == ["human", "gpt"] * (len(roles) // 2)
    assert [messages_from_llama_factory(row, entry) for row in data] == [
        _plain(record_messages(r)) for r in CONVERSATIONS + INSTRUCTIONS
    ]
    assert result["counts"] == {"skipped_not_user_assistant_pairs": 1, "train_rows": 7}


def test_llama_factory_alpaca(tmp_path) -> None:
    config = LlamaFactoryOutput(format="llama_factory", style="alpaca", name="lf")
    write_export(tmp_path, config, records_fn(INSTRUCTIONS + CONVERSATIONS), every_third_eval)
    export = tmp_path / "export"
    info = json.loads((export / "dataset_info.json").read_text())
    columns = {
        "prompt": "instruction",
        "query": "input",
        "response": "output",
        "system": "system",
        "history": "history",
    }
    assert info == {
        "lf": {"file_name": "lf.train.json", "formatting": "alpaca", "columns": columns},
        "lf_eval": {"file_name": "lf.eval.json", "formatting": "alpaca", "columns": columns},
    }
    rows, want = [], []
    for key in ("lf", "lf_eval"):
        data = _load(export / info[key]["file_name"], tmp_path / "cache")
        assert sorted(data.column_names) == sorted(columns.values())
        rows += [messages_from_llama_factory(row, info[key]) for row in data]
        split = "train" if key == "lf" else "eval"
        want += [r for r in INSTRUCTIONS + CONVERSATIONS if every_third_eval(r) == split]
    assert rows == [_plain(record_messages(r)) for r in want]
    first = json.loads((export / "lf.train.json").read_text())
    assert {k: first[0][k] for k in ("instruction", "input", "output")} == {
        "instruction": "Name a colour.",
        "input": "",
        "output": "Blue.",
    }
    multi = [r for r in json.loads((export / "lf.train.json").read_text()) if r["history"]]
    assert multi == [
        {
            "instruction": "Kyoto, 3 days.",
            "input": "",
            "output": "Day 1: temples. Day 2: markets. Day 3: gardens.",
            "system": "Be brief.",
            "history": [["Plan a trip?", "Where to?"]],
        }
    ]


def test_dataset_info_keeps_other_entries_and_drops_a_stale_eval(tmp_path) -> None:
    path = tmp_path / "dataset_info.json"
    path.write_text(json.dumps({"other": {"file_name": "x.json"}, "lf_eval": {"file_name": "y"}}))
    update_dataset_info(path, {"lf": {"file_name": "lf.train.json"}}, drop=["lf_eval"])
    assert json.loads(path.read_text()) == {
        "lf": {"file_name": "lf.train.json"},
        "other": {"file_name": "x.json"},
    }


@pytest.mark.parametrize("fmt", ["alpaca_json", "sharegpt_json"])
def test_existing_alpaca_and_sharegpt_exports_round_trip(tmp_path, fmt) -> None:
    """json_exports.py's alpaca_json (Alpaca-LoRA / SelFee) and sharegpt_json (FastChat/OpenChat)
    rows, read back with the consumers' field names."""
    from sftforge.tasks.outputs.json_exports import export_row as _row

    records = INSTRUCTIONS if fmt == "alpaca_json" else CONVERSATIONS
    path = tmp_path / "data.json"
    rows = [_row(fmt, r) for r in records]  # an Alpaca row comes as its JSON text already
    texts = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows]
    path.write_text("[" + ",".join(texts) + "]")
    data = _load(path, tmp_path / "cache")
    if fmt == "alpaca_json":
        assert [dict(row) for row in data] == [
            {k: r[k] for k in ("instruction", "input", "output")} for r in records
        ]
        return
    roles = {"human": "user", "gpt": "assistant", "system": "system"}
    back = [
        [{"role": roles[t["from"]], "content": t["value"]} for t in row["conversations"]]
        for row in data
    ]
    assert back == [_plain(r["messages"]) for r in records]
    assert data["id"] == [r["id"] for r in records]
