"""OUT/README.md: the output directory as a Hugging Face dataset folder.

Without it, `datasets.load_dataset(OUT)` globs every parquet file of every stage (and of the
exports) into one table and fails on their different schemas. Its YAML front matter, built
as the Hub push's card builds its own, names two configs: `default`, the final records
(split `train`, and `eval` when the recipe splits), and `rejects`, one split per stage that
rejected anything (a stage with no rejects has no rejects file, so no split). A split with
no rows at all is left out: `datasets` cannot load one.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from sftforge.tasks.base.atomic import write_bytes_atomic
from sftforge.tasks.publish.hub import HubError, dataset_splits

README = "README.md"
REJECTS_CONFIG = "rejects"
_SPLIT = re.compile(r"^\w+(\.\w+)*$")  # datasets' rule for a split name
# `datasets`' parquet reader reads in batches of a file's first row group's size unless
# told: a shard with no records (one row group of 0 rows) would fail it ("BatchSize must
# be greater than 0"). The shards' own row group size.
PARQUET_OPTIONS = {"batch_size": 10_000}


def final_splits(out: Path, final: str) -> dict[str, list[Path]]:
    """Split -> parts of the final records (`train` first: the split a reader expects
    first); {} when there are none. `final`: the last stage, for a run without parquet."""
    try:
        splits = dataset_splits(out, final=final)
    except HubError:  # no parquet records at all: nothing to load as the dataset
        return {}
    return dict(sorted(splits.items(), key=lambda item: item[0] != "train"))


def rejects_splits(out: Path, stages: list[str]) -> dict[str, list[Path]]:
    """Split -> rejects parts, for each stage that rejected anything. A stage name that
    `datasets` refuses as a split name (`-`, a stray `.`) has those characters as `_`."""
    splits: dict[str, list[Path]] = {}
    for stage in stages:
        parts = sorted((out / "rejects" / stage).glob("part-*.parquet"))
        if not parts:
            continue
        name = stage if _SPLIT.match(stage) else re.sub(r"\W", "_", stage)
        while name in splits:  # two stage names that became one
            name += "_"
        splits[name] = parts
    return splits


def has_rows(parts: list[Path]) -> bool:
    """From the parquet footers. `datasets` cannot make a split of files with no rows
    ("corresponds to no data"), so such a split is left out of the README."""
    return any(pq.read_metadata(part).num_rows for part in parts)


def readme_configs(out: Path, stages: list[str]) -> dict[str, dict[str, str]]:
    """Config -> split -> data files pattern (relative to OUT), for splits with rows.
    Every part of a split sits in one folder: a pattern, as in the Hub card."""
    configs = {
        "default": final_splits(out, stages[-1]),
        REJECTS_CONFIG: rejects_splits(out, stages),
    }
    patterns = {
        name: {
            split: f"{parts[0].parent.relative_to(out).as_posix()}/part-*.parquet"
            for split, parts in splits.items()
            if has_rows(parts)
        }
        for name, splits in configs.items()
    }
    return {name: splits for name, splits in patterns.items() if splits}


def render_readme(out: Path, body: dict[str, Any], description: str | None) -> str:
    from huggingface_hub import DatasetCardData

    from sftforge.tasks.publish.card import data_configs

    stages = [s["name"] for s in body["stages"]]
    meta = DatasetCardData(configs=data_configs(readme_configs(out, stages), PARQUET_OPTIONS))
    return f"""---
{meta.to_yaml()}
---
# {body["recipe"]}

{description or f"Records made by the `{body['recipe']}` recipe."}

Made by sftforge (config hash `{body["config_hash"]}`). `manifest.json` counts each stage's
records in, out and rejected by reason; `recipe.yaml` is the recipe as it ran.

```python
from datasets import load_dataset

dataset = load_dataset("path/to/this/folder")  # the final records: train (and eval)
rejects = load_dataset("path/to/this/folder", "rejects")  # one split per rejecting stage
```

or, with sftforge installed, `sftforge.load("path/to/this/folder", stage=..., rejects=...)`
for one stage's records or rejects.
"""


def write_dataset_readme(out: Path, body: dict[str, Any], description: str | None) -> Path:
    """Write OUT/README.md from a finished run's manifest body (atomically)."""
    path = out / README
    write_bytes_atomic(path, render_readme(out, body, description).encode("utf-8"))
    return path
