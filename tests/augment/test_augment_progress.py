"""The augment stage's bar advances per record, not per shard (#14 §5): the step counts its
finished records (`StepContext.records_done`), the batch stage adds the shards before, and
the display shows the stage's count; a rerun reuses the finished shards and names them."""

from __future__ import annotations

import io
import json
from pathlib import Path

import yaml
from augment_support import make_records
from rich.console import Console

import sftforge.tasks.steps.augment.progress as augment_progress
from sftforge.flows.progress import StageProgress
from sftforge.flows.watches import marker_watch
from sftforge.schemas.loading import load_recipe, resolve_source_files
from sftforge.tasks.base.shards import STATE_DIR
from sftforge.tasks.base.step_protocol import StepContext
from sftforge.tasks.pipeline.plan import plan_run
from sftforge.tasks.pipeline.read_stage import run_read
from sftforge.tasks.pipeline.stages import run_batch_stage

RECORDS, SHARD = 12, 6


def _recipe(tmp_path: Path) -> Path:
    data = tmp_path / "unit.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in make_records(RECORDS)))
    step = {
        "step": "augment",
        "rpm": 60_000,
        "tpm": 10_000_000,
        "ramp_seconds": 0,
        "max_iterations": 2,
        "concurrency": 1,  # one record at a time: each shows in the count
        "max_tokens": {"answer": 32, "feedback": 16, "revision": 32},
    }
    recipe = {
        "name": "augment_progress",
        "output_dir": str(tmp_path / "out"),
        "sources": [
            {
                "name": "unit",
                "format": "hf",
                "path": str(data),
                "mapping": {"instruction": "{instruction}", "input": "{input}"},
            }
        ],
        "steps": [step],
        "runner": {"shard_size": SHARD},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_the_augment_bar_advances_per_record_and_a_rerun_reuses_its_shards(
    tmp_path, monkeypatch, start_server, api_env, capsys
):
    api_env(start_server(latency_ms=20))
    monkeypatch.setattr(augment_progress, "PROGRESS_EVERY_SECONDS", 0.01)
    path = _recipe(tmp_path)
    recipe = load_recipe(path)
    files = resolve_source_files(recipe, path)
    plan = plan_run(recipe, files)
    out = Path(recipe.output_dir)
    shards = len(run_read(recipe, files, out, plan))
    (segment,) = plan.segments
    stage = segment.stages[0]
    assert shards == RECORDS // SHARD

    def run() -> list[int]:
        counts: list[int] = []
        watch = marker_watch(out / STATE_DIR / stage.stage, stage.fingerprint)
        with StageProgress(console=Console(file=io.StringIO()), plain_every=0) as bar:
            bar.start(stage.stage, RECORDS, watch, shards=shards)

            def done(n: int) -> None:
                counts.append(n)
                bar.records_done(n)

            context = StepContext(seed=1, report=bar.detail, records_done=done)
            bar.finish_shards(run_batch_stage(out, segment, shards, context)[stage.stage])
        return counts

    counts = run()
    assert counts == sorted(counts) and counts[-1] == RECORDS
    # Counts inside a shard (1..5, 7..11), not only its end (6, 12): per record.
    within = {n for n in counts if n % SHARD}
    assert len(within) >= SHARD, counts
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("[augment]")]
    shown = {int(line.split()[1].split("/")[0]) for line in lines if "/12 records" in line}
    assert shown & within, lines  # the display showed them
    assert lines[-1].startswith(f"[augment] {RECORDS} records in ") and "reused" not in lines[-1]

    assert run() == []  # the rerun: every shard reused, nothing processed
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("[augment]")]
    assert lines[-1].endswith(f"{shards}/{shards} shards reused"), lines
