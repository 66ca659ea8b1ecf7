"""Backfill partitions: a recipe's input files grouped by a field of their path.

`partitions: {source: sharegpt, pattern: "dumps/{date}/*.json"}` — the one `{field}` in the
pattern names the partition. `{date}` matches a YYYY-MM-DD date (and date ranges select
by calendar); any other `{name}` matches one path segment's worth of characters (and
selects by name). The rest of the pattern is a glob.

A partition runs as its own flow run with the source's path narrowed to the partition's
files, into OUT/partitions/<key>/. It is *done* when that folder has a manifest whose
config hash is the hash of the partition's recipe (same steps, same inputs' paths).
"""

from __future__ import annotations

import datetime as dt
import glob
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from sftforge.schemas.loading import ConfigError, recipe_hash
from sftforge.schemas.recipe import Recipe
from sftforge.tasks.base.shards import STATE_DIR
from sftforge.tasks.pipeline.request import RunRequest

_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_DATE = r"\d{4}-\d{2}-\d{2}"
_DATE_GLOB = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]"
PARTITIONS_DIR = "partitions"


@dataclass(frozen=True)
class Pattern:
    text: str
    field: str

    @property
    def is_date(self) -> bool:
        return self.field == "date"

    def glob_for(self, key: str | None = None) -> str:
        """The glob of one partition's files (key given) or of every partition's."""
        fill = key if key is not None else (_DATE_GLOB if self.is_date else "*")
        return self.text.replace("{" + self.field + "}", glob.escape(fill) if key else fill)

    def key_of(self, path: str) -> str | None:
        head, _, tail = self.text.partition("{" + self.field + "}")
        group = f"(?P<key>{_DATE})" if self.is_date else "(?P<key>[^/]+?)"
        regex = _glob_regex(head) + group + _glob_regex(tail)
        match = re.fullmatch(regex, Path(path).as_posix())
        return match.group("key") if match else None


def _glob_regex(text: str) -> str:
    """A glob fragment as a regular expression (`**` crosses folders, `*` and `?` do not)."""
    out = []
    i = 0
    while i < len(text):
        if text.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif text.startswith("**", i):
            out.append(".*")
            i += 2
        elif text[i] == "*":
            out.append("[^/]*")
            i += 1
        elif text[i] == "?":
            out.append("[^/]")
            i += 1
        elif text[i] == "[":
            end = text.find("]", i + 1)
            if end == -1:
                out.append(re.escape(text[i]))
                i += 1
            else:
                body = text[i + 1 : end].replace("\\", "\\\\")
                out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
                i = end + 1
        else:
            out.append(re.escape(text[i]))
            i += 1
    return "".join(out)


def parse_pattern(text: str, where: str) -> Pattern:
    fields = _FIELD.findall(text)
    if len(fields) != 1:
        raise ConfigError(
            f"{where}: partitions.pattern: needs exactly one {{field}}, e.g. dumps/{{date}}/*.json"
        )
    return Pattern(text, fields[0])


def discover(pattern: Pattern) -> dict[str, list[Path]]:
    """Every partition on disk: key -> its files, sorted (the order the recipe reads them)."""
    found: dict[str, list[Path]] = {}
    for name in glob.glob(pattern.glob_for(), recursive=True):
        path = Path(name)
        key = pattern.key_of(name)
        if key is None or not path.is_file():
            continue
        if pattern.is_date and not _valid_date(key):
            continue
        found.setdefault(key, []).append(path)
    return {key: sorted(files) for key, files in sorted(found.items())}


def _valid_date(text: str) -> bool:
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def select(spec: str, pattern: Pattern, found: dict[str, list[Path]]) -> list[str]:
    """The partition keys a `--partitions` SPEC names, in order.

    `A..B` (inclusive; for dates, every calendar day, whether or not it has files),
    `a,b,c`, one key, or `all` (every partition found).
    """
    spec = spec.strip()
    if spec in ("all", "*"):
        return list(found)
    if ".." in spec:
        first, _, last = spec.partition("..")
        first, last = first.strip(), last.strip()
        if pattern.is_date:
            try:
                start, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
            except ValueError:
                raise ConfigError(f"--partitions {spec}: expected YYYY-MM-DD..YYYY-MM-DD") from None
            if end < start:
                raise ConfigError(f"--partitions {spec}: the range ends before it starts")
            return [
                (start + dt.timedelta(days=i)).isoformat() for i in range((end - start).days + 1)
            ]
        return [key for key in found if first <= key <= last]
    keys = [key.strip() for key in spec.split(",") if key.strip()]
    if not keys:
        raise ConfigError("--partitions: expected A..B, a list a,b,c, or all")
    if pattern.is_date:
        bad = [key for key in keys if not _valid_date(key)]
        if bad:
            raise ConfigError(f"--partitions {spec}: {bad[0]!r} is not a YYYY-MM-DD date")
    return keys


@dataclass(frozen=True)
class PartitionRun:
    """One partition's run: its request (the source narrowed to its files, its own output
    folder), its recipe (loaded once, for the hash, and run as it is) and that hash."""

    key: str
    files: tuple[Path, ...]
    request: RunRequest
    recipe: Recipe | None  # None when the partition has no input files
    config_hash: str | None

    @property
    def has_input(self) -> bool:
        return bool(self.files)

    @property
    def out(self) -> str:
        assert self.request.out is not None  # every partition has its own folder
        return self.request.out


class PartitionPlan(NamedTuple):
    recipe: Recipe
    runs: tuple[PartitionRun, ...]


def plan_partitions(request: RunRequest, spec: str) -> PartitionPlan:
    """The recipe and one PartitionRun per key the spec selects (ConfigError on misuse)."""
    recipe = request.recipe()
    where = request.recipe_path
    if recipe.partitions is None:
        raise ConfigError(
            f"{where}: partitions: the recipe declares no partitions "
            "(add partitions: {source: NAME, pattern: 'dumps/{date}/*.json'})"
        )
    source = recipe.partitions.source
    if source not in {s.name for s in recipe.sources}:
        raise ConfigError(f"{where}: partitions.source: no source named {source!r}")
    if source in request.input_map:
        raise ConfigError(f"--input {source}: the partitions choose this source's files")
    pattern = parse_pattern(recipe.partitions.pattern, where)
    found = discover(pattern)
    keys = select(spec, pattern, found)
    if not any(key in found for key in keys):
        raise ConfigError(
            f"{where}: partitions.pattern: no files for --partitions {spec} "
            f"({pattern.glob_for()!r} matches {len(found)} partitions)"
        )
    runs = []
    for key in keys:
        part = request.narrowed(
            {source: pattern.glob_for(key)}, str(Path(recipe.output_dir) / PARTITIONS_DIR / key)
        )
        files = tuple(found.get(key, ()))
        part_recipe = part.recipe() if files else None
        config_hash = recipe_hash(part_recipe) if part_recipe is not None else None
        runs.append(PartitionRun(key, files, part, part_recipe, config_hash))
    return PartitionPlan(recipe, tuple(runs))


def completed_manifest(run: PartitionRun) -> dict | None:
    """The partition's manifest when it completed with the same recipe hash, else None."""
    try:
        manifest = json.loads((Path(run.out) / "manifest.json").read_text())
    except (OSError, json.JSONDecodeError):  # not there, or its folder is not a folder
        return None
    return manifest if manifest.get("config_hash") == run.config_hash else None


def counts(manifest: dict) -> dict[str, int]:
    stages = manifest.get("stages") or []
    if not stages:
        return {}
    n_in, n_out = stages[0]["in"], stages[-1]["out"]
    return {"in": n_in, "out": n_out, "rejected": n_in - n_out}


def forget(run: PartitionRun) -> None:
    """--force: drop the partition's manifest and shard markers, so every stage runs again."""
    try:
        (Path(run.out) / "manifest.json").unlink(missing_ok=True)
    except NotADirectoryError:
        return  # the partition's run will fail and say why
    shutil.rmtree(Path(run.out) / STATE_DIR, ignore_errors=True)
