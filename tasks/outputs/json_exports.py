"""sftforge's own output formats: the dataset as parquet, and JSON / JSON Lines exports.

    OUT/dataset/[<split>/]part-NNNNN.parquet   the final records (format: parquet)
    OUT/export/<name>[-<split>][-<i>].<json|jsonl>

An export may spread each split over N files (`shards:`), stratified by a field, and may keep
only some `datasets`. Rows go to the split files through tasks/outputs/split_files.py.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from json.encoder import encode_basestring
from pathlib import Path
from typing import Any

import xxhash

from sftforge.schemas.recipe import OutputConfig
from sftforge.schemas.records import SCHEMAS
from sftforge.tasks.base.atomic import copy_file_atomic
from sftforge.tasks.base.shards import (
    part_name,
    read_records,
    records_table,
    remove_parts_from,
    stage_part,
    write_table_atomic,
)
from sftforge.tasks.outputs.final_records import FinalRecords
from sftforge.tasks.outputs.split_files import FileSpec, Layout, SplitFiles
from sftforge.tasks.readers.converters import to_guanaco_text
from sftforge.tasks.readers.sharegpt import to_sharegpt
from sftforge.tasks.steps.sample_per_group import group_of

SUFFIX = {
    "jsonl": ".jsonl",
    "guanaco_jsonl": ".jsonl",
    "sharegpt_json": ".json",
    "alpaca_json": ".json",
}
DEFAULT_NAME = {
    "jsonl": "records",
    "guanaco_jsonl": "guanaco",
    "sharegpt_json": "sharegpt",
    "alpaca_json": "alpaca",
}


def _as_messages(record: dict[str, Any]) -> list[dict[str, str]]:
    if "messages" in record:
        return record["messages"]
    prompt = record["instruction"] + (f"\n{record['input']}" if record.get("input") else "")
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": record["output"]}]


# json.dumps(value, ensure_ascii=False) without building an encoder for every row.
_ENCODE = json.JSONEncoder(ensure_ascii=False).encode
_ALPACA = ("instruction", "input", "output")


def _alpaca_text(record: dict[str, Any]) -> str:
    """An Alpaca row's JSON text, the same as json.dumps makes it (field by field: a few
    times faster than encoding a dict per row)."""
    values = [record[k] for k in _ALPACA]
    if not all(isinstance(v, str) for v in values):
        return _ENCODE(dict(zip(_ALPACA, values, strict=True)))
    i, x, o = (encode_basestring(v) for v in values)
    return f'{{"instruction": {i}, "input": {x}, "output": {o}}}'


def export_row(fmt: str, record: dict[str, Any]) -> dict[str, Any] | str:
    """One record as a row of an export (an Alpaca row comes as its JSON text already)."""
    if fmt == "alpaca_json":
        return _alpaca_text(record)
    if fmt == "sharegpt_json":
        return to_sharegpt(
            {"id": record["id"], "model": record.get("model"), "messages": _as_messages(record)}
        )
    if fmt == "guanaco_jsonl":
        return {"text": to_guanaco_text(_as_messages(record), record.get("meta"))}
    return record


def _shard_of(output: OutputConfig, seed: int) -> Callable[[dict[str, Any], str], int]:
    """Round-robin within each stratum, from a seeded offset: every file gets its share of
    every value of `stratify_by` (DreamerGPT's firefly-train-0..4 by `kind`)."""
    shards = output.shards
    if shards is None:
        return lambda record, split: 0
    seen: Counter[tuple[str, str]] = Counter()

    def shard(record: dict[str, Any], split: str) -> int:
        stratum = group_of(record, shards.stratify_by) if shards.stratify_by else ""
        offset = xxhash.xxh3_64_intdigest(f"{seed}\x1f{stratum}".encode()) % shards.count
        index = (seen[split, stratum] + offset) % shards.count
        seen[split, stratum] += 1
        return index

    return shard


def export_name(output: OutputConfig) -> str:
    return output.name or DEFAULT_NAME[output.format]


def output_layout(folder: Path, output: OutputConfig, split_used: bool) -> Layout:
    """`<name>-<split>` when the recipe splits, else `<name>`; `-<i>` per shard file."""
    return Layout(
        folder,
        export_name(output),
        (FileSpec(SUFFIX[output.format]),),
        split_sep="-" if split_used else None,
        shards=output.shards.count if output.shards else None,
    )


def write_export(final: FinalRecords, output: OutputConfig) -> str:
    """Every split's files are made, even empty ones; returns OUT/export/<name>."""
    shard_of = _shard_of(output, final.seed)
    splitter = final.splitter
    with SplitFiles(output_layout(final.out / "export", output, final.split_used)) as files:
        # Every file opened up front; rows then go straight to its writer (the per-row path).
        writers = {
            (split, shard): files.open(split, shard).json[0]
            for split in splitter.names
            for shard in range(output.shards.count if output.shards else 1)
        }
        for record in final.records(_alpaca_columns(output, final)):
            if output.datasets is not None and record.get("dataset") not in output.datasets:
                continue
            split = splitter(record)
            row = export_row(output.format, record)
            text = row if isinstance(row, str) else _ENCODE(row)
            writers[split, shard_of(record, split)].write_json(text)
    return str(final.out / "export" / export_name(output))


def _alpaca_columns(output: OutputConfig, final: FinalRecords) -> list[str] | None:
    """What an Alpaca export reads: its three fields and what places a row (the split's id,
    the dataset filter, the stratum); an augmented record's chain is the bulk, unread."""
    if output.format != "alpaca_json":
        return None
    wanted = list(_ALPACA)
    if final.split_used:
        wanted.append("id")
    if output.datasets is not None:
        wanted.append("dataset")
    if output.shards is not None and output.shards.stratify_by:
        by = output.shards.stratify_by
        wanted.append("meta" if by.startswith("meta.") else by)
    names = SCHEMAS[final.kind].names
    return [c for c in dict.fromkeys(wanted) if c in names]


def write_parquet(final: FinalRecords, output: OutputConfig) -> str:
    """The final stage's parts as they are, or each part split into OUT/dataset/<split>/."""
    folder, splitter = final.out / "dataset", final.splitter
    for shard in range(final.shards):
        part_path = stage_part(final.out, final.stage, shard)
        if splitter.config is None:  # the final stage's parts, as they are
            copy_file_atomic(part_path, folder / part_name(shard))
            continue
        records = read_records(part_path, final.kind)
        for split in splitter.names:
            part = [r for r in records if splitter(r) == split]
            write_table_atomic(records_table(part, final.kind), folder / split / part_name(shard))
    for sub in [folder, *(folder / s for s in splitter.names)]:
        remove_parts_from(sub, final.shards)
    return str(folder)
