"""Benchmarks as a recipe declares them, and their items (prompt texts) loaded.

A benchmark is a Hugging Face dataset (`dataset:` an id, with `subset`/`split`/`data_files`,
loaded with `datasets.load_dataset`) or a local JSON, JSON Lines or parquet file (`path:`), and
a field mapping: which field holds the prompt (`text:`, one field or several joined; a field
holding a list, as MT-bench's two turns, gives one item per element) and the item's id (`id:`;
the row number without one). `optional: true` lets a run go on without a benchmark that cannot
be loaded (offline, a dataset taken down), saying so on stderr and in the manifest.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sftforge.tasks.steps.benchmark_index import Item

# `datasets`' packaged builders: with local data files they need no Hub.
_BUILDERS = {"json", "csv", "parquet", "arrow", "text"}
_HUB_TIMEOUT = 3.0  # seconds to reach the Hub before it counts as unreachable


class Benchmark(BaseModel):
    """One benchmark: where its items are and which fields hold them."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    dataset: str | None = None  # an HF dataset id (or a builder: json, parquet, …)
    subset: str | None = None  # the dataset's config name (gsm8k: main)
    split: str = "test"
    data_files: str | list[str] | None = None  # for a builder: hf://datasets/… or local
    path: str | None = None  # a local .json, .jsonl or .parquet file instead
    text: str | list[str] = Field(min_length=1)
    id: str | None = None
    optional: bool = False

    @model_validator(mode="after")
    def _one_origin(self) -> Benchmark:
        if (self.dataset is None) == (self.path is None):
            raise ValueError("give a benchmark either `dataset` (an HF id) or `path`")
        if self.data_files is not None and self.dataset is None:
            raise ValueError("`data_files` goes with `dataset`")
        return self

    @property
    def fields(self) -> list[str]:
        return [self.text] if isinstance(self.text, str) else list(self.text)

    @property
    def origin(self) -> str:
        """Where the items come from, as the manifest and the dataset card say it."""
        if self.path is not None:
            return self.path
        files = self.data_files
        where = f" ({', '.join([files] if isinstance(files, str) else files)})" if files else ""
        subset = f"/{self.subset}" if self.subset else ""
        return f"{self.dataset}{subset}:{self.split}{where}"


class BenchmarkError(RuntimeError):
    """A benchmark that cannot be loaded or lacks its fields (one line, naming it)."""


@dataclass
class Loaded:
    items: list[Item] = field(default_factory=list)
    # name -> {"source": origin, "items": n}; name -> why it was skipped
    benchmarks: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def load_benchmarks(benchmarks: list[Benchmark]) -> Loaded:
    """Every benchmark's items, in recipe order; an optional one that cannot be loaded is
    skipped (and said why), any other failure is a BenchmarkError."""
    loaded = Loaded()
    hub: list[str | None] = []  # the Hub's reachability, probed once and only if needed
    for bench in benchmarks:
        try:
            if _needs_hub(bench):
                if not hub:
                    hub.append(hub_unreachable())
                if hub[0] is not None:
                    raise BenchmarkError(hub[0])
            items = list(benchmark_items(bench))
        except BenchmarkError as exc:
            if not bench.optional:
                raise BenchmarkError(f"benchmark {bench.name}: {exc}") from None
            loaded.skipped[bench.name] = f"{bench.origin}: {exc}"
            continue
        loaded.items.extend(items)
        loaded.benchmarks[bench.name] = {"source": bench.origin, "items": len(items)}
    return loaded


def _needs_hub(bench: Benchmark) -> bool:
    if bench.dataset is None or Path(bench.dataset).exists():
        return False
    if bench.dataset in _BUILDERS:
        files = [bench.data_files] if isinstance(bench.data_files, str) else bench.data_files
        return any("://" in f for f in files or [])
    return True


def hub_unreachable() -> str | None:
    """Why the Hub cannot be reached (None: it can, or offline mode lets `datasets` use its
    cache). One short connection attempt: `datasets` itself retries for ~25 s before giving
    up, per dataset, which an offline run should not wait for."""
    if os.environ.get("HF_HUB_OFFLINE") or os.environ.get("HF_DATASETS_OFFLINE"):
        return None
    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host, port = url.hostname or "huggingface.co", url.port or 443
    try:
        socket.create_connection((host, port), timeout=_HUB_TIMEOUT).close()
    except OSError as exc:
        return f"the Hub ({host}) is unreachable ({exc.strerror or type(exc).__name__})"
    return None


def benchmark_items(bench: Benchmark) -> list[Item]:
    """The benchmark's items, named `<id>` (or `<id>.<k>` for the k-th of a list field)."""
    items: list[Item] = []
    for index, row in enumerate(_rows(bench)):
        missing = [f for f in bench.fields if f not in row]
        if missing:
            have = ", ".join(sorted(row)) or "none"
            raise BenchmarkError(
                f"{bench.origin}: row {index} has no field {missing[0]!r} ({have})"
            )
        if bench.id is not None and bench.id not in row:
            raise BenchmarkError(f"{bench.origin}: row {index} has no id field {bench.id!r}")
        item_id = str(row[bench.id]) if bench.id is not None else str(index)
        values = [row[f] for f in bench.fields]
        if len(values) == 1 and isinstance(values[0], list):  # MT-bench: one item per turn
            texts = [(f"{item_id}.{k + 1}", str(v)) for k, v in enumerate(values[0]) if v]
        else:
            joined = "\n".join(str(v) for v in values if v not in (None, ""))
            texts = [(item_id, joined)] if joined.strip() else []
        items.extend(Item(bench.name, i, t) for i, t in texts)
    return items


def _rows(bench: Benchmark) -> list[dict[str, Any]]:
    if bench.path is not None:
        return _file_rows(Path(bench.path))
    import datasets  # slow to import: only when a benchmark comes from it

    try:
        ds = datasets.load_dataset(
            bench.dataset, name=bench.subset, split=bench.split, data_files=bench.data_files
        )
    except Exception as exc:
        first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), "")
        raise BenchmarkError(f"cannot be loaded: {type(exc).__name__}: {first[:300]}") from None
    return list(ds)


def _file_rows(path: Path) -> list[dict[str, Any]]:
    """A local file's rows: parquet, JSON Lines, or JSON (a list of objects, or an object
    whose one list value is the rows)."""
    try:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            return pq.read_table(path).to_pylist()
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise BenchmarkError(f"{path}: {exc}") from None
    try:
        rows: Any = _json_rows(text, lines=path.suffix == ".jsonl")
    except json.JSONDecodeError as exc:
        raise BenchmarkError(f"{path}: not JSON ({exc})") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise BenchmarkError(f"{path}: expected a list of objects")
    return rows


def _json_rows(text: str, lines: bool) -> Any:
    if not lines:
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            if exc.msg != "Extra data":  # else: JSON Lines named .json
                raise
        else:
            if isinstance(rows, dict):
                found = [v for v in rows.values() if isinstance(v, list)]
                return found[0] if len(found) == 1 else rows
            return rows
    return [json.loads(line) for line in text.splitlines() if line.strip()]
