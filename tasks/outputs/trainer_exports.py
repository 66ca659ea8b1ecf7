"""Exports other trainers read as they are: TRL, axolotl, LLaMA-Factory.

Field names are the consumers' documented ones (checked against their docs, 2026-11):
- TRL (docs "Dataset formats and types"): conversational language modeling
  {"messages": [{"role", "content"}]}; prompt-completion {"prompt", "completion"}, as message
  lists (conversational) or strings (standard).
- axolotl (docs/dataset-formats/conversation.qmd): `type: chat_template`, `field_messages`,
  `message_property_mappings: {role: role, content: content}`, `roles_to_train: [assistant]`.
- LLaMA-Factory (data/README.md): alpaca rows {instruction, input, output, system, history} and
  sharegpt rows {conversations: [{from: human|gpt, value}], system}, each registered in
  dataset_info.json with `formatting`, `columns` and (sharegpt) `tags`.

Each `*_row` builds one row from a record; the `messages_from_*` readers do what the consumer
does with a row (used to check that every export round-trips to our records).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sftforge.schemas.training import AxolotlOutput, LlamaFactoryOutput, TrlOutput
from sftforge.tasks.outputs.file_writers import dumps, write_json_atomic, write_text_atomic
from sftforge.tasks.outputs.prompt_templates import Skip, record_messages
from sftforge.tasks.outputs.split_files import FileSpec, Layout, SplitFiles, files_entry

Message = dict[str, str]


def _plain(messages: list[dict[str, Any]]) -> list[Message]:
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def _user_text(record: dict[str, Any]) -> str:
    return record["instruction"] + (f"\n{record['input']}" if record.get("input") else "")


# --- TRL -----------------------------------------------------------------------------------


def trl_row(record: dict[str, Any], config: TrlOutput) -> dict[str, Any] | Skip:
    messages = _plain(record_messages(record))
    if config.style == "messages":
        row: dict[str, Any] = {"messages": messages}
    else:
        last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=-1)
        if last < 1 or last != len(messages) - 1:
            return Skip("no_final_answer")  # a completion is the conversation's last reply
        if config.conversational:
            row = {"prompt": messages[:last], "completion": [messages[last]]}
        elif "messages" in record:
            if [m["role"] for m in messages] != ["user", "assistant"]:
                return Skip("multi_turn")  # plain strings cannot hold roles
            row = {"prompt": messages[0]["content"], "completion": messages[1]["content"]}
        else:
            row = {"prompt": _user_text(record), "completion": record.get("output") or ""}
    if config.keep_id:
        row = {"id": record["id"], **row}
    return row


def messages_from_trl(row: dict[str, Any]) -> list[Message]:
    """What SFTTrainer feeds the chat template: messages, or prompt + completion joined."""
    if "messages" in row:
        return _plain(row["messages"])
    if isinstance(row["prompt"], list):
        return _plain(row["prompt"] + row["completion"])
    return [
        {"role": "user", "content": row["prompt"]},
        {"role": "assistant", "content": row["completion"]},
    ]


# --- axolotl -------------------------------------------------------------------------------


def axolotl_row(record: dict[str, Any], config: AxolotlOutput) -> dict[str, Any]:
    row: dict[str, Any] = {config.field_messages: _plain(record_messages(record))}
    return {"id": record["id"], **row} if config.keep_id else row


def axolotl_yaml(files: dict[str, str], config: AxolotlOutput) -> str:
    """The `datasets:` (and `test_datasets:`) entries for an axolotl config."""

    def entry(file_name: str) -> str:
        return (
            f"  - path: {file_name}\n"
            "    ds_type: json\n"
            "    split: train\n"  # a local JSON file loads as one "train" split
            "    type: chat_template\n"
            f"    field_messages: {config.field_messages}\n"
            "    message_property_mappings:\n"
            "      role: role\n"
            "      content: content\n"
            "    roles_to_train: [assistant]\n"
            "    train_on_eos: turn\n"
        )

    text = (
        "# axolotl dataset entries written by sftforge; paths are relative to this folder\n"
        "# (run axolotl from here, or make them absolute).\n"
        "datasets:\n" + entry(files["train"])
    )
    if "eval" in files:
        text += "test_datasets:\n" + entry(files["eval"])
    return text


# --- LLaMA-Factory -------------------------------------------------------------------------

LLAMA_FACTORY_COLUMNS = {
    "alpaca": {
        "prompt": "instruction",
        "query": "input",
        "response": "output",
        "system": "system",
        "history": "history",
    },
    "sharegpt": {"messages": "conversations", "system": "system"},
}
LLAMA_FACTORY_TAGS = {
    "role_tag": "from",
    "content_tag": "value",
    "user_tag": "human",
    "assistant_tag": "gpt",
    "system_tag": "system",
}


def system_and_pairs(messages: list[dict[str, Any]]) -> tuple[str, list[tuple[str, str]]] | None:
    """Leading system messages and strict user/assistant pairs, or None when the conversation
    is not one (LLaMA-Factory drops such rows with only a warning; we count them instead)."""
    i = 0
    systems = []
    while i < len(messages) and messages[i]["role"] == "system":
        systems.append(messages[i]["content"])
        i += 1
    rest = messages[i:]
    if not rest or len(rest) % 2:
        return None
    pairs = []
    for user, assistant in zip(rest[::2], rest[1::2], strict=True):
        if user["role"] != "user" or assistant["role"] != "assistant":
            return None
        pairs.append((user["content"], assistant["content"]))
    return "\n".join(systems), pairs


def llama_factory_row(record: dict[str, Any], style: str) -> dict[str, Any] | Skip:
    if style == "alpaca" and "messages" not in record:
        return {
            "instruction": record["instruction"],
            "input": record.get("input") or "",
            "output": record.get("output") or "",
            "system": "",
            "history": [],
        }
    parsed = system_and_pairs(record_messages(record))
    if parsed is None:
        return Skip("not_user_assistant_pairs")
    system, pairs = parsed
    if style == "alpaca":
        *history, (instruction, output) = pairs
        return {
            "instruction": instruction,
            "input": "",
            "output": output,
            "system": system,
            "history": [list(pair) for pair in history],
        }
    turns = []
    for user, assistant in pairs:
        turns.append({"from": "human", "value": user})
        turns.append({"from": "gpt", "value": assistant})
    return {"conversations": turns, "system": system}


def llama_factory_entry(file_name: str, style: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "file_name": file_name,
        "formatting": style,
        "columns": dict(LLAMA_FACTORY_COLUMNS[style]),
    }
    if style == "sharegpt":
        entry["tags"] = dict(LLAMA_FACTORY_TAGS)
    return entry


def messages_from_llama_factory(row: dict[str, Any], entry: dict[str, Any]) -> list[Message]:
    """LLaMA-Factory's converters, reduced to text: read through the entry's columns and tags."""
    columns = entry["columns"]
    out: list[Message] = []
    system = row.get(columns.get("system", ""), "") if "system" in columns else ""
    if system:
        out.append({"role": "system", "content": system})
    if entry.get("formatting", "alpaca") == "alpaca":
        for user, assistant in row.get(columns.get("history", "")) or []:
            out += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
        prompt = row[columns["prompt"]]
        query = row.get(columns.get("query", ""), "")
        out.append({"role": "user", "content": f"{prompt}\n{query}" if query else prompt})
        out.append({"role": "assistant", "content": row[columns["response"]]})
        return out
    tags = entry["tags"]
    roles = {tags["user_tag"]: "user", tags["assistant_tag"]: "assistant"}
    for turn in row[columns["messages"]]:
        out.append({"role": roles[turn[tags["role_tag"]]], "content": turn[tags["content_tag"]]})
    return out


def update_dataset_info(path: Path, set_entries: dict[str, Any], drop: list[str]) -> None:
    """Merge our entries into dataset_info.json (other outputs of the recipe may have theirs)."""
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(info, dict):
            info = {}
    except (FileNotFoundError, json.JSONDecodeError):
        info = {}
    for key in drop:
        info.pop(key, None)
    info.update(set_entries)
    write_json_atomic(path, info)


# --- writer --------------------------------------------------------------------------------

ExportConfig = TrlOutput | AxolotlOutput | LlamaFactoryOutput
_SUFFIX = {"trl": ".jsonl", "axolotl": ".jsonl", "llama_factory": ".json"}


def output_layout(folder: Path, config: ExportConfig) -> Layout:
    """`<name>.<split>.jsonl` (TRL, axolotl) or `.json` (LLaMA-Factory reads a JSON list)."""
    return Layout(folder, config.name or config.format, (FileSpec(_SUFFIX[config.format]),))


def write_export(
    out: Path,
    config: ExportConfig,
    records: Callable[[], Iterator[dict[str, Any]]],
    splitter: Callable[[dict[str, Any]], str],
) -> dict[str, Any]:
    folder = out / "export"
    counts: Counter[str] = Counter()

    def row_of(record: dict[str, Any]) -> dict[str, Any] | Skip:
        if isinstance(config, TrlOutput):
            return trl_row(record, config)
        if isinstance(config, AxolotlOutput):
            return axolotl_row(record, config)
        return llama_factory_row(record, config.style)

    with SplitFiles(output_layout(folder, config)) as files:
        files.open("train")
        for record in records():
            split = splitter(record)
            files.open(split)  # a split's file exists once a record goes there, rows or not
            row = row_of(record)
            if isinstance(row, Skip):
                counts[f"skipped_{row.reason}"] += 1
                continue
            files.write_json(split, dumps(row))
            counts[f"{split}_rows"] += 1
    files.remove_unwritten(files.layout.every_path(("train", "eval")))
    name = files.layout.name
    file_names = {split: files.layout.paths(split)[0].name for split in files.splits}
    result = files_entry(config, files, dict(sorted(counts.items())))
    if isinstance(config, AxolotlOutput):
        yaml_path = folder / f"{name}.yaml"
        write_text_atomic(yaml_path, axolotl_yaml(file_names, config))
        result["axolotl_config"] = str(yaml_path)
    if isinstance(config, LlamaFactoryOutput):
        entries = {name: llama_factory_entry(file_names["train"], config.style)}
        if "eval" in file_names:
            entries[f"{name}_eval"] = llama_factory_entry(file_names["eval"], config.style)
        info = folder / "dataset_info.json"
        update_dataset_info(info, entries, drop=[] if "eval" in file_names else [f"{name}_eval"])
        result["dataset_info"] = str(info)
        result["datasets"] = sorted(entries)
    return result
