"""Writers of the recipe's `outputs`, from the final stage's shards (streamed shard by shard)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from schemas.recipe import OutputConfig
from tasks.shards import part_name, read_conversations, remove_parts_from, stage_part
from tasks.sharegpt_records import to_sharegpt


def _copy_atomic(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def _write_json_stream(path: Path, rows: Any, as_list: bool) -> int:
    """Write rows as a JSON list or JSON Lines, to a temporary name first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    count = 0
    with tmp.open("w", encoding="utf-8") as fh:
        if as_list:
            fh.write("[")
        for row in rows:
            text = json.dumps(row, ensure_ascii=False)
            if as_list:
                fh.write(("\n" if count == 0 else ",\n") + text)
            else:
                fh.write(text + "\n")
            count += 1
        if as_list:
            fh.write("\n]\n")
    os.replace(tmp, path)
    return count


def _records(out: Path, stage: str, shards: int) -> Any:
    for shard in range(shards):
        yield from read_conversations(stage_part(out, stage, shard))


def write_outputs(
    out: Path, final_stage: str, shards: int, outputs: list[OutputConfig]
) -> dict[str, str]:
    written: dict[str, str] = {}
    for output in outputs:
        if output.format == "parquet":
            folder = out / "dataset"
            for shard in range(shards):
                _copy_atomic(stage_part(out, final_stage, shard), folder / part_name(shard))
            remove_parts_from(folder, shards)
            written["parquet"] = str(folder)
        elif output.format == "sharegpt_json":
            path = out / "export" / "sharegpt.json"
            rows = (to_sharegpt(r) for r in _records(out, final_stage, shards))
            _write_json_stream(path, rows, as_list=True)
            written["sharegpt_json"] = str(path)
        elif output.format == "jsonl":
            path = out / "export" / "conversations.jsonl"
            _write_json_stream(path, _records(out, final_stage, shards), as_list=False)
            written["jsonl"] = str(path)
    return written
