"""The read stage: every source streamed, in recipe order, into shards of `shard_size` input
records; each input item becomes records of the recipe's kind, or rejects.

Sources are read in recipe order, so "first occurrence" in later steps means recipe order.
Every id of the read is unique (pipeline/unique_ids.py); a repeated one gets `#2`, `#3`, …,
counted per source in the stage's `id_collisions`. A limited run (`--limit N`, `plan.limit`)
takes the first N input records of each source (as `read.in` counts them) and stops reading it.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from itertools import islice
from pathlib import Path
from typing import Any

from sftforge.schemas.recipe import InstructionMapping, Recipe, SourceConfig
from sftforge.tasks.base.atomic import write_bytes_atomic
from sftforge.tasks.base.canonical import dumps
from sftforge.tasks.base.memory import release_memory
from sftforge.tasks.base.outcome import Rejected, reject_row
from sftforge.tasks.base.shards import (
    STATE_DIR,
    load_marker,
    remove_parts_from,
    remove_stale_temporaries,
    save_marker,
    write_stage_shard,
)
from sftforge.tasks.base.stats import StageStats
from sftforge.tasks.base.step_protocol import StepContext
from sftforge.tasks.pipeline.plan import READ_STAGE, Plan
from sftforge.tasks.pipeline.unique_ids import RunIds, content_key
from sftforge.tasks.readers.converters import code_contests, first_pair, guanaco_text
from sftforge.tasks.readers.mapping import MappingError, explode, to_instruction
from sftforge.tasks.readers.raw import RawItem
from sftforge.tasks.readers.sharegpt import to_conversation
from sftforge.tasks.readers.sources import iter_source

# The couplet set needs no mapping in a recipe: upper line -> instruction, lower -> output.
COUPLETS = InstructionMapping(instruction="{in|nospace}", output="{out|nospace}")

Outcome = tuple[dict[str, Any] | None, dict[str, Any] | None]  # (record, reject row)


class _Original:
    """The input row as JSON text, made only if the row is rejected (most are not)."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __str__(self) -> str:
        return dumps(self.value)


class SourceConverter:
    """Turns one source's raw items into records; holds that source's preprocess steps.

    `content` is the content key (unique_ids.content_key) of the last record made from an
    input id with its conversation, else None: what RunIds needs to keep a repeated
    identical conversation's id.
    """

    def __init__(self, source: SourceConfig) -> None:
        self.source = source
        self.dataset = source.dataset_name or source.name
        self.preprocess = [step.make(StepContext()) for step in source.preprocess]
        self.mapping = source.mapping or (COUPLETS if source.format == "couplets" else None)
        self.rows = 0  # items of this source so far, over all its files: the default ids
        self.content: bytes | None = None

    def __call__(self, item: RawItem) -> Iterator[Outcome]:
        source = self.source
        self.content = None
        position, self.rows = self.rows, self.rows + 1
        fallback_id = f"{source.name}/{self._position(item)}"
        if item.error is not None:
            stub = {"id": fallback_id, "source": source.name}
            rejected = Rejected(item.reason, f"{item.where}: {item.error}")
            yield None, reject_row(stub, rejected, item.text or "")
            return
        original = _Original(item.value)
        if self.mapping is not None:
            yield from self._mapped(item, original, position)
            return
        if source.converter == "code_contests":
            result = code_contests(item.value, source.name, self.dataset, fallback_id)
        elif source.converter == "guanaco_text":
            result = guanaco_text(item.value, source.name, fallback_id)
        else:
            result = to_conversation(item.value, source.name, source.fields, fallback_id)
            if not isinstance(result, Rejected) and result["id"] != fallback_id:
                # Before preprocess and first_pair: the conversation as the input holds it.
                self.content = content_key(result)
        if not isinstance(result, Rejected) and source.first_pair:
            result = self._first_pair(result)
        yield self._outcome(result, item, original, fallback_id)

    def _position(self, item: RawItem) -> str:
        # hf sources have always named a row `file#index` (datasets' row numbers), ShareGPT
        # dumps `file:line`: kept, since fallback ids are made from it.
        if self.source.format == "hf" and item.index is not None:
            return f"{item.where.rsplit(':', 1)[0]}#{item.index}"
        return item.where

    def _first_pair(self, record: dict[str, Any]) -> dict[str, Any] | Rejected:
        for step in self.preprocess:
            result = step(record)
            if isinstance(result, Rejected):
                return result
            record = result
        return first_pair(record, self.dataset)

    def _mapped(self, item: RawItem, original: _Original, position: int) -> Iterator[Outcome]:
        source = self.source
        # Counted over all the source's files (a file's own row number restarts in each):
        # for a single file, the same number as the row's index in it.
        base_id = f"{source.name}-{position}"
        if not isinstance(item.value, dict):
            rejected = Rejected(
                "invalid_record", f"expected an object, got {type(item.value).__name__}"
            )
            yield self._outcome(rejected, item, original, base_id)
            return
        try:
            rows = list(explode(item.value, source.explode))
        except MappingError as exc:
            yield self._outcome(Rejected(exc.reason, exc.detail), item, original, base_id)
            return
        for suffix, row in rows:
            result = to_instruction(
                row,
                self.mapping,
                source.name,
                self.dataset,
                base_id + suffix,  # type: ignore[arg-type]
                source.meta_fields,
                suffix,
            )
            yield self._outcome(result, item, original, base_id + suffix)

    def _outcome(
        self,
        result: dict[str, Any] | Rejected,
        item: RawItem,
        original: _Original,
        fallback_id: str,
    ) -> Outcome:
        if not isinstance(result, Rejected):
            return result, None
        raw_id = None
        if isinstance(item.value, dict):
            raw_id = item.value.get(self.source.fields.id)
        stub = {
            "id": str(raw_id) if raw_id is not None else fallback_id,
            "source": self.source.name,
        }
        detail = Rejected(result.reason, f"{item.where}: {result.detail}")
        return None, reject_row(stub, detail, str(original))


def run_read(
    recipe: Recipe, files: dict[str, list[Path]], out: Path, plan: Plan
) -> list[StageStats]:
    """Stream every source in recipe order into shards of `shard_size` input records.

    Returns the per-shard stats. Shards already complete for this input are not rewritten,
    and when the whole stage is complete the input is not read again at all.
    """
    remove_stale_temporaries(out)
    fp = plan.read_fingerprint
    summary_path = out / STATE_DIR / READ_STAGE / "_stage.json"
    try:
        summary = json.loads(summary_path.read_text())
        if summary.get("fingerprint") == fp:
            return [StageStats.from_json(s, reused=True) for s in summary["shards"]]
    except (FileNotFoundError, json.JSONDecodeError):
        pass

    size = recipe.runner.shard_size
    stats: list[StageStats] = []
    kept: list[dict[str, Any]] = []
    rejects: list[dict[str, Any]] = []
    collisions: Counter[str] = Counter()  # per source: ids that got a `#n`, in this shard
    count, started = 0, time.perf_counter()
    # Made anew on every read, completed shards included: the ids depend on all that came
    # before, and the input is read from its start whenever the stage is not complete.
    run_ids = RunIds()

    def flush() -> None:
        nonlocal kept, rejects, collisions, count, started
        shard = len(stats)
        done = load_marker(out, READ_STAGE, shard, fp)
        if done is None:
            write_stage_shard(out, READ_STAGE, shard, plan.read_kind, kept, rejects)
            reasons = (r["reason"] for r in rejects)
            seconds = time.perf_counter() - started
            done = StageStats.of_shard(
                fp, count, len(kept), reasons, seconds, id_collisions=collisions
            )
            save_marker(out, READ_STAGE, shard, done)
        stats.append(done)
        kept, rejects, collisions, count, started = [], [], Counter(), 0, time.perf_counter()

    def unique(row: dict[str, Any], content: bytes | None, source: str) -> dict[str, Any]:
        given = row["id"]
        row["id"] = run_ids.unique(given, content)
        if row["id"] != given:
            collisions[source] += 1
        return row

    for source in recipe.sources:
        convert = SourceConverter(source)
        taken = 0  # this source's input records so far (what `--limit` counts)
        # closing(): a limited run stops early, and the reader's file is closed now.
        with closing(iter_source(source, files.get(source.name))) as items:  # type: ignore[type-var]
            for item in items:
                # An exploded row is several input records; a shard may then exceed `size`
                # by the elements of its last row (and a limit may end inside the row).
                outcomes = convert(item)
                if plan.limit is not None:
                    outcomes = islice(outcomes, plan.limit - taken)
                for record, reject in outcomes:
                    if record is not None:
                        kept.append(unique(record, convert.content, source.name))
                    else:
                        rejects.append(unique(reject, None, source.name))  # type: ignore[arg-type]
                    count += 1
                    taken += 1
                if count >= size:
                    flush()
                if plan.limit is not None and taken >= plan.limit:
                    break
    if count or not stats:
        flush()

    # A smaller input than last time: parts past the new last shard are stale everywhere.
    for stage in plan.stages:
        remove_parts_from(out / stage, len(stats))
        remove_parts_from(out / "rejects" / stage, len(stats))
        remove_parts_from(out / STATE_DIR / stage, len(stats))
    shard_list = [s.to_json() for s in stats]
    write_bytes_atomic(summary_path, dumps({"fingerprint": fp, "shards": shard_list}).encode())
    release_memory()  # the readers' buffers: the flow's process lives on to the end
    return stats
