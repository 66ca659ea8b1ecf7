"""Statistics of a finished run's records, for its report and its dataset card.

"Before" is what the read stage produced (every parsed input record), "after" is the final
stage. Large runs are measured on a deterministic sample (a hash of the id decides), so a
report of a 1 GB dump reads every shard once but counts tokens for at most `cap` records.
"""

from __future__ import annotations

import json
import sqlite3
import statistics
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import xxhash

from sftforge.schemas.steps import step_class
from sftforge.tasks.steps.augment.tokens import make_counter
from sftforge.tasks.steps.filter_language import detect_language, prose, scope_text

DEFAULT_CAP = 20_000
# The count the card and report quote: the tokens of gpt-3.5-turbo's encoding when it is
# on disk (offline machines have no tiktoken file), else the project's estimate of them.
TOKEN_MODEL = "gpt-3.5-turbo"


@dataclass
class Side:
    """Measurements of one set of records (before or after the steps)."""

    total: int = 0  # records in the set
    sampled: int = 0  # records measured
    turns: list[int] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    languages: Counter[str] = field(default_factory=Counter)
    models: Counter[str] = field(default_factory=Counter)
    datasets: Counter[str] = field(default_factory=Counter)
    sources: Counter[str] = field(default_factory=Counter)  # every record, not a sample
    # Instruction records: tokens of the prompt (instruction and input) and of the output.
    instruction_tokens: list[int] = field(default_factory=list)
    output_tokens: list[int] = field(default_factory=list)


@dataclass
class Augmentation:
    model: str | None
    records: int = 0
    iterations: Counter[int] = field(default_factory=Counter)
    stop_reasons: Counter[str] = field(default_factory=Counter)
    context_cut: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    # (seconds since the first call, cumulative dollars), from the call journals; or by
    # record when no journal is found.
    cost_timeline: list[tuple[float, float]] = field(default_factory=list)
    timeline_unit: str = "seconds"


@dataclass
class RunStats:
    manifest: dict[str, Any]
    kind: str
    token_counter: str
    before_stage: str  # the stage measured as "before"
    before: Side
    after: Side
    augmentation: Augmentation | None = None


def stage_parts(out: Path, stage: str) -> list[Path]:
    return sorted((out / stage).glob("part-*.parquet"))


def iter_rows(paths: list[Path], columns: list[str] | None = None) -> Iterator[dict[str, Any]]:
    for path in paths:
        table = pq.read_table(path)
        if columns is not None:
            table = table.select([c for c in columns if c in table.column_names])
        yield from table.to_pylist()


def _keep(record_id: str | None, rate: float) -> bool:
    if rate >= 1.0:
        return True
    key = xxhash.xxh3_64_intdigest((record_id or "").encode("utf-8"))
    return key < rate * 2**64


def messages_of(record: dict[str, Any]) -> list[dict[str, str]]:
    if record.get("messages") is not None:
        return record["messages"]
    prompt = record.get("instruction") or ""
    if record.get("input"):
        prompt += "\n" + record["input"]
    return [
        {"role": "user", "content": prompt},
        {"role": "assistant", "content": record.get("output") or ""},
    ]


def measure(paths: list[Path], total: int, cap: int, count_tokens: Any) -> Side:
    side = Side(total=total)
    rate = min(1.0, cap / total) if total else 1.0
    for path in paths:
        table = pq.read_table(path)
        for item in table.column("source").value_counts().to_pylist():
            side.sources[item["values"] or "?"] += item["counts"]
        if rate < 1.0:  # only the sampled rows become Python objects
            ids = table.column("id").to_pylist()
            table = table.filter(pa.array([_keep(i, rate) for i in ids], pa.bool_()))
        for record in table.to_pylist():
            side.sampled += 1
            messages = messages_of(record)
            side.turns.append(len(messages))
            side.tokens.append(sum(count_tokens(m["content"] or "") for m in messages))
            text = prose(scope_text({**record, "messages": messages}, "all"), 2000)
            side.languages[detect_language(text)[0]] += 1
            if "messages" in record:
                side.models[record.get("model") or "unknown"] += 1
            if record.get("dataset") is not None:
                side.datasets[record["dataset"]] += 1
            if "instruction" in record:  # messages_of made the user turn of these two
                side.instruction_tokens.append(count_tokens(messages[0]["content"]))
                side.output_tokens.append(count_tokens(messages[1]["content"]))
    return side


def _stop_reason(record: dict[str, Any]) -> str:
    if record.get("status") == "failed":
        return "failed"
    if record.get("iteration_truncated"):
        return "max iterations"
    return "no revision needed"


def journals(out: Path) -> list[Path]:
    """SQLite call journals of the augment step anywhere under OUT."""
    found = []
    for path in sorted(out.rglob("*")):
        if path.suffix not in (".sqlite", ".db") or not path.is_file():
            continue
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
                db.execute("SELECT updated, cost FROM calls LIMIT 1")
        except sqlite3.Error:
            continue
        found.append(path)
    return found


def _journal_timeline(paths: list[Path]) -> list[tuple[float, float]]:
    calls: list[tuple[float, float]] = []
    for path in paths:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            calls += db.execute(
                "SELECT updated, cost FROM calls WHERE status = 'done' ORDER BY updated"
            ).fetchall()
    calls.sort()
    timeline, spent = [], 0.0
    for when, cost in calls:
        spent += cost or 0.0
        timeline.append((when - calls[0][0], spent))
    return timeline


def augmentation(out: Path, final_parts: list[Path], model: str | None) -> Augmentation:
    aug = Augmentation(model=model)
    by_record: list[tuple[float, float]] = []
    columns = ["id", "iteration", "iteration_truncated", "truncated", "usage", "status"]
    for record in iter_rows(final_parts, columns):
        aug.records += 1
        aug.iterations[int(record.get("iteration") or 0)] += 1
        aug.stop_reasons[_stop_reason(record)] += 1
        aug.context_cut += bool(record.get("truncated"))
        usage = record.get("usage") or {}
        aug.prompt_tokens += int(usage.get("prompt_tokens") or 0)
        aug.completion_tokens += int(usage.get("completion_tokens") or 0)
        aug.cost += float(usage.get("cost") or 0.0)
        by_record.append((float(aug.records), aug.cost))
    timeline = _journal_timeline(journals(out))
    if timeline:
        aug.cost_timeline = timeline
        aug.cost = max(aug.cost, timeline[-1][1])
    else:
        aug.cost_timeline, aug.timeline_unit = by_record, "records"
    return aug


def _augment_model(recipe: dict[str, Any] | None) -> str | None:
    """The model(s) of the recipe's augment steps (a teacher pass may use another one)."""
    models = [
        step.get("model", "gpt-3.5-turbo")
        for step in (recipe or {}).get("steps") or []
        if step.get("step") == "augment"
    ]
    return ", ".join(dict.fromkeys(models)) or None


def before_stage(manifest: dict[str, Any], recipe: dict[str, Any] | None) -> dict[str, Any]:
    """The stage whose output is "before filtering": read, or the conversion steps that
    directly follow it (ShareGPT's HTML is not what anyone trains on, nor is it filtered)."""
    stages = {s["name"]: s for s in manifest["stages"]}
    chosen = manifest["stages"][0]
    for step in (recipe or {}).get("steps") or []:
        name = step.get("name") or step.get("step")
        step_type = step_class(step.get("step", ""))
        if step_type is None or not step_type.converts_text or name not in stages:
            break
        chosen = stages[name]
    return chosen


def collect(out: Path, recipe: dict[str, Any] | None = None, cap: int = DEFAULT_CAP) -> RunStats:
    manifest = json.loads((out / "manifest.json").read_text())
    counter = make_counter(TOKEN_MODEL, "auto")
    first, final = before_stage(manifest, recipe), manifest["stages"][-1]
    final_parts = stage_parts(out, final["name"])
    before = measure(stage_parts(out, first["name"]), first["out"], cap, counter.count)
    after = measure(final_parts, final["out"], cap, counter.count)
    kind = manifest.get("kind", "conversation")
    aug = None
    if kind == "augmented":
        aug = augmentation(out, final_parts, _augment_model(recipe))
    return RunStats(manifest, kind, counter.name, first["name"], before, after, aug)


def summary(values: list[int]) -> dict[str, float]:
    """mean, median, p95, max of a list of counts (zeros for an empty list)."""
    if not values:
        return {"mean": 0.0, "median": 0.0, "p95": 0.0, "max": 0.0}
    ordered = sorted(values)
    return {
        "mean": round(statistics.fmean(ordered), 1),
        "median": float(statistics.median(ordered)),
        "p95": float(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]),
        "max": float(ordered[-1]),
    }
