"""Is OUT a finished run? Its manifest read, checked for shape, and held against its files.

`sftforge report` and `push` describe and publish what the manifest says. A manifest beside
parts it does not describe (a run of another input or recipe that failed, from an sftforge
that did not yet invalidate the old manifest first; files copied or deleted by hand) would
make them report one run and publish another. The check is cheap: row counts come from the
parquet footers, no data is read. Each problem is a ConfigError, one line, exit 2.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from sftforge.schemas.loading import ConfigError
from sftforge.tasks.base.shards import part_name
from sftforge.tasks.pipeline.manifest import ConservationError, check_conservation
from sftforge.tasks.pipeline.out_lock import live_holder, lock_path

MANIFEST = "manifest.json"
_RERUN = "rerun the recipe"
# A stage name is a folder of OUT: a plain name, never a path that leaves OUT.
_STAGE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


# What `report` and `push` read besides the stages, and the type each must have.
_REQUIRED: dict[str, type | tuple[type, ...]] = {"recipe": str, "kind": str, "config_hash": str}
_OPTIONAL: dict[str, type | tuple[type, ...]] = {
    "output_dir": str,
    "outputs": dict,
    "versions": dict,
    "wall_seconds": (int, float),
}


def _stage_problem(stage: Any) -> str | None:
    """What is wrong with one manifest stage entry, or None."""
    if not isinstance(stage, dict):
        return "a stage entry is not an object"
    name = stage.get("name")
    if not isinstance(name, str) or not _STAGE_NAME.match(name):
        return f"stage name {name!r} is not a folder name"
    for key in ("in", "out"):
        if not _count(stage.get(key)):
            return f"stage {name}: {key!r} is not a count"
    if not _number(stage.get("seconds")):
        return f"stage {name}: 'seconds' is not a number"
    rejected = stage.get("rejected")
    if not isinstance(rejected, dict) or not all(
        isinstance(k, str) and _count(v) for k, v in rejected.items()
    ):
        return f"stage {name}: 'rejected' is not an object of counts"
    return None


def read_manifest(out: Path) -> dict[str, Any]:
    """OUT's manifest, if it is one (ConfigError naming the file otherwise)."""
    path = out / MANIFEST
    if not path.is_file():
        raise ConfigError(f"{out}: no {MANIFEST} (is this a finished run's output directory?)")
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not a readable manifest ({exc}); {_RERUN}") from None
    problem = _manifest_problem(body)
    if problem is not None:
        raise ConfigError(f"{path}: not a valid manifest ({problem}); {_RERUN}")
    return body


def _manifest_problem(body: Any) -> str | None:
    """What is wrong with a manifest's shape or its counts (in == out + rejected), or None."""
    if not isinstance(body, dict):
        return "not a JSON object"
    for key, kind in _REQUIRED.items():
        if not isinstance(body.get(key), kind):
            return f"{key!r} is missing or not a {_type_name(kind)}"
    for key, kind in _OPTIONAL.items():
        value = body.get(key)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            return f"{key!r} is not a {_type_name(kind)}"
    limited, limit = body.get("limited", False), body.get("limit")
    if not isinstance(limited, bool):
        return "'limited' is not true or false"
    if limited and not (_count(limit) and limit >= 1):
        return "'limit' of a limited run is not a count of 1 or more"
    if not _count(body.get("shards")) or body["shards"] < 1:
        return "'shards' is not a count of 1 or more"
    if not isinstance(body.get("stages"), list) or not body["stages"]:
        return "'stages' is not a list of stages"
    problem = next(filter(None, map(_stage_problem, body["stages"])), None)
    if problem is None:
        try:
            check_conservation(body["stages"])
        except ConservationError as exc:
            problem = str(exc)
    return problem


def _type_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "string", dict: "JSON object", int: "number", float: "number"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return names[kinds[0]]


def _rows(folder: Path, out: Path) -> tuple[list[str], int]:
    """The part files in `folder` and their rows, from the footers alone."""
    parts = sorted(p for p in folder.glob("part-*.parquet")) if folder.is_dir() else []
    rows = 0
    for part in parts:
        try:
            rows += pq.ParquetFile(part).metadata.num_rows
        except Exception as exc:  # truncated, not parquet: pyarrow's own error types
            raise ConfigError(
                f"{out}: {MANIFEST} does not match the files ({part} is unreadable: "
                f"{type(exc).__name__}); {_RERUN}"
            ) from None
    return [p.name for p in parts], rows


def limited_note(out: Path, body: dict[str, Any]) -> str | None:
    """What to say of a limited run (`sftforge run --limit N`), None for a full one."""
    if not body.get("limited"):
        return None
    n = body.get("limit")
    return (
        f"{out} is a limited run (--limit {n}: at most the first {n} records of each source); "
        "rerun without --limit for the whole dataset"
    )


def check_out(out: Path, *, publishing: bool = False) -> dict[str, Any]:
    """The manifest of the finished run in OUT, after checking that OUT's stage parts are the
    ones it counts: per stage, one part per shard, holding `out` records, and rejects parts
    holding the rejected ones; and that no run is writing OUT now. ConfigError (one line)
    otherwise. `publishing` (push) also refuses a limited run: a sample of each source is
    not the dataset the recipe describes, and once on the Hub it would pass for it."""
    holder = live_holder(out)
    if holder is not None:  # its parts are changing under us (and its manifest is gone)
        raise ConfigError(
            f"{out}: a run is writing it (pid {holder['pid']} on host {holder['host']} since "
            f"{holder.get('started', '?')}); wait for it to finish, or remove "
            f"{lock_path(out)} if that run is gone"
        )
    body = read_manifest(out)
    note = limited_note(out, body)
    if publishing and note is not None:
        raise ConfigError(f"{note} before pushing it")
    shards = body["shards"]
    expected = [part_name(shard) for shard in range(shards)]

    def mismatch(detail: str) -> ConfigError:
        return ConfigError(f"{out}: {MANIFEST} does not match the files ({detail}); {_RERUN}")

    for stage in body["stages"]:
        name = stage["name"]
        parts, kept = _rows(out / name, out)
        if parts != expected:
            raise mismatch(
                f"stage {name}: manifest says {shards} shards, {out / name} holds "
                f"{len(parts)} parts"
            )
        if kept != stage["out"]:
            raise mismatch(f"stage {name}: manifest says {stage['out']} kept, parts hold {kept}")
        reject_parts, rejected = _rows(out / "rejects" / name, out)
        if not set(reject_parts) <= set(expected):
            raise mismatch(f"stage {name}: rejects parts beyond the manifest's {shards} shards")
        said = sum(stage["rejected"].values())
        if rejected != said:
            raise mismatch(f"stage {name}: manifest says {said} rejected, parts hold {rejected}")
    return body
