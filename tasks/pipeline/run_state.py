"""How far a run has got, read from its output directory: what a stopped run says it finished."""

from __future__ import annotations

import json
from pathlib import Path

from sftforge.tasks.base.shards import STATE_DIR, load_marker
from sftforge.tasks.pipeline.plan import READ_STAGE, Plan


def _read_shards(out: Path, plan: Plan) -> int | None:
    """Shards of the read stage when it is complete for this input, else None."""
    try:
        summary = json.loads((out / STATE_DIR / READ_STAGE / "_stage.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if summary.get("fingerprint") != plan.read_fingerprint:
        return None
    return len(summary.get("shards", []))


def describe_progress(out: Path, plan: Plan) -> str:
    """E.g. "finished: read (10 shards), check_structure; html_to_markdown 3/10 shards"."""
    shards = _read_shards(out, plan)
    if shards is None:
        return "finished: nothing yet (stopped while reading the sources)"
    finished = [f"{READ_STAGE} ({shards} shard{'s' if shards != 1 else ''})"]
    partly = ""
    for segment in plan.segments:
        for stage in segment.stages:
            done = sum(
                load_marker(out, stage.stage, shard, stage.fingerprint) is not None
                for shard in range(shards)
            )
            if done == shards:
                finished.append(stage.stage)
                continue
            if done:
                partly = f"; {stage.stage} {done}/{shards} shards"
            return f"finished: {', '.join(finished)}{partly}"
    return f"finished: {', '.join(finished)} (outputs not yet written)"
