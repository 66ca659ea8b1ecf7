"""Writers of the recipe's `outputs`, from the final stage's shards (streamed shard by shard).

The final records are split train/eval (when the recipe has `split:`) by a seeded hash of
their id, and an output may spread each split over N files, stratified by a field.
"""

from __future__ import annotations

import heapq
import json
from collections import Counter
from collections.abc import Callable, Iterator
from json.encoder import encode_basestring
from pathlib import Path
from typing import Any

import xxhash

from sftforge.schemas.recipe import OutputConfig, Recipe, SplitConfig
from sftforge.schemas.records import SCHEMAS
from sftforge.schemas.training import TRAINING_FORMATS
from sftforge.tasks.base.atomic import copy_file_atomic
from sftforge.tasks.base.shards import (
    part_name,
    read_records,
    records_table,
    remove_parts_from,
    stage_part,
    write_table_atomic,
)
from sftforge.tasks.outputs.training_io import FileSet, JsonListWriter, JsonlWriter
from sftforge.tasks.outputs.training_outputs import write_training_output
from sftforge.tasks.readers.converters import to_guanaco_text
from sftforge.tasks.readers.sharegpt import to_sharegpt
from sftforge.tasks.steps.sample_per_group import group_of

# Which output formats make sense for which record kind.
FORMATS_BY_KIND = {
    "conversation": {"parquet", "jsonl", "sharegpt_json", "guanaco_jsonl"},
    "instruction": {"parquet", "jsonl", "alpaca_json", "sharegpt_json", "guanaco_jsonl"},
    "augmented": {"parquet", "jsonl", "alpaca_json", "sharegpt_json", "guanaco_jsonl"},
}
_SUFFIX = {
    "jsonl": "jsonl",
    "guanaco_jsonl": "jsonl",
    "sharegpt_json": "json",
    "alpaca_json": "json",
}
_DEFAULT_NAME = {
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


def _row(fmt: str, record: dict[str, Any]) -> dict[str, Any] | str:
    if fmt == "alpaca_json":
        return _alpaca_text(record)
    if fmt == "sharegpt_json":
        return to_sharegpt(
            {"id": record["id"], "model": record.get("model"), "messages": _as_messages(record)}
        )
    if fmt == "guanaco_jsonl":
        return {"text": to_guanaco_text(_as_messages(record))}
    return record


def _split_key(record: dict[str, Any], seed: int) -> int:
    return xxhash.xxh3_64_intdigest(f"split\x1f{seed}\x1f{record['id']}".encode())


class Splitter:
    """Seeded train/eval assignment that does not depend on order or sharding."""

    def __init__(self, config: SplitConfig | None, seed: int) -> None:
        self.config, self.seed = config, seed
        self.threshold: int | None = None

    @property
    def needs_pass(self) -> bool:
        """An exact eval size needs a first pass over the ids to find the cut-off."""
        return self.config is not None and self.config.eval_size is not None

    def prepare(self, records: Iterator[dict[str, Any]]) -> None:
        if self.config is None:
            return
        if self.config.eval_fraction is not None:
            self.threshold = int(self.config.eval_fraction * 2**64) - 1
            return
        size = self.config.eval_size or 0
        heap: list[int] = []  # max-heap (negated) of the `size` lowest keys
        for record in records:
            key = -_split_key(record, self.seed)
            if len(heap) < size:
                heapq.heappush(heap, key)
            elif key > heap[0]:
                heapq.heapreplace(heap, key)
        self.threshold = -heap[0] if heap else -1

    @property
    def names(self) -> list[str]:
        wants_eval = self.config is not None and bool(
            self.config.eval_fraction or self.config.eval_size
        )
        return ["train", "eval"] if wants_eval else ["train"]

    def __call__(self, record: dict[str, Any]) -> str:
        if self.threshold is None:
            return "train"
        return "eval" if _split_key(record, self.seed) <= self.threshold else "train"


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


def _json_paths(out: Path, output: OutputConfig, splits: list[str], split_used: bool) -> dict:
    name = output.name or _DEFAULT_NAME[output.format]
    suffix = _SUFFIX[output.format]
    count = output.shards.count if output.shards else None
    paths = {}
    for split in splits:
        stem = f"{name}-{split}" if split_used else name
        for i in range(count or 1):
            paths[(split, i)] = (
                out / "export" / (f"{stem}-{i}.{suffix}" if count else f"{stem}.{suffix}")
            )
    return paths


def write_outputs(
    out: Path, final_stage: str, kind: str, shards: int, recipe: Recipe
) -> dict[str, Any]:
    def records(columns: list[str] | None = None) -> Iterator[dict[str, Any]]:
        for shard in range(shards):
            yield from read_records(stage_part(out, final_stage, shard), kind, columns)

    splitter = Splitter(recipe.split, recipe.seed)
    splitter.prepare(records(["id"]) if splitter.needs_pass else iter(()))
    split_used = recipe.split is not None
    written: dict[str, Any] = {}
    for output in recipe.outputs:
        if output.format in TRAINING_FORMATS:
            # The whole entry (paths, counts, vocabulary size) goes to the manifest.
            entry = write_training_output(out, output, records, kind, recipe.seed, splitter)
            written[output.name or output.format] = entry  # type: ignore[union-attr]
            continue
        if output.format == "parquet":
            written["parquet"] = str(_write_parquet(out, final_stage, kind, shards, splitter))
            continue
        paths = _json_paths(out, output, splitter.names, split_used)
        shard_of = _shard_of(output, recipe.seed)
        writer = JsonListWriter if _SUFFIX[output.format] == "json" else JsonlWriter
        files = FileSet()
        writers = {key: files.add(writer(path)) for key, path in paths.items()}
        try:
            for record in records(_alpaca_columns(output, recipe, kind)):
                if output.datasets is not None and record.get("dataset") not in output.datasets:
                    continue
                split = splitter(record)
                row = _row(output.format, record)
                text = row if isinstance(row, str) else _ENCODE(row)
                writers[split, shard_of(record, split)].write_json(text)
        except BaseException:
            files.abort()
            raise
        files.commit()
        key = output.name or output.format
        written[key] = str(out / "export" / (output.name or _DEFAULT_NAME[output.format]))
    return written


def _alpaca_columns(output: OutputConfig, recipe: Recipe, kind: str) -> list[str] | None:
    """What an Alpaca export reads: its three fields and what places a row (the split's id,
    the dataset filter, the stratum); an augmented record's chain is the bulk, unread."""
    if output.format != "alpaca_json":
        return None
    wanted = list(_ALPACA)
    if recipe.split is not None:
        wanted.append("id")
    if output.datasets is not None:
        wanted.append("dataset")
    if output.shards is not None and output.shards.stratify_by:
        by = output.shards.stratify_by
        wanted.append("meta" if by.startswith("meta.") else by)
    names = SCHEMAS[kind].names
    return [c for c in dict.fromkeys(wanted) if c in names]


def _write_parquet(out: Path, stage: str, kind: str, shards: int, splitter: Splitter) -> Path:
    folder = out / "dataset"
    for shard in range(shards):
        if splitter.config is None:  # the final stage's parts, as they are
            copy_file_atomic(stage_part(out, stage, shard), folder / part_name(shard))
            continue
        records = read_records(stage_part(out, stage, shard), kind)
        for split in splitter.names:
            part = [r for r in records if splitter(r) == split]
            write_table_atomic(records_table(part, kind), folder / split / part_name(shard))
    for sub in [folder, *(folder / s for s in splitter.names)]:
        remove_parts_from(sub, shards)
    return folder
