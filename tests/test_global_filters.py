"""Fused global filters (dedup_exact + sample_per_group in one pass): the same records and
bytes as the steps applied record by record, across worker counts, and after a crash."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

import sftforge.tasks.pipeline.filter_pass as filter_segment
from sftforge.schemas.loading import load_recipe, resolve_source_files
from sftforge.tasks.base.outcome import Rejected
from sftforge.tasks.base.shards import read_records
from sftforge.tasks.base.step_protocol import StepContext
from sftforge.tasks.pipeline.filter_pass import run_filter_segment
from sftforge.tasks.pipeline.plan import plan_run
from sftforge.tasks.pipeline.read_stage import run_read
from sftforge.tasks.pipeline.runners import worker_pool
from sftforge.tasks.steps.dedup_exact import DedupPass, record_key
from sftforge.tasks.steps.sample_per_group import GroupSampler, SamplePass
from tests.test_flow import parquet_files

STEPS = [
    {"step": "dedup_exact"},
    {"step": "sample_per_group", "by": "meta.task", "max": 4, "datasets": ["flan"]},
]


def write_inputs(folder: Path) -> Path:
    """FLAN-like rows in a few tasks, and Alpaca-like rows, with repeated queries."""
    rows = []
    for i in range(300):
        if i % 3 == 0:
            rows.append({"inputs": f"task question {i % 40}", "targets": "t", "task": f"t{i % 7}"})
        else:
            rows.append({"inputs": f"question {i % 90}", "targets": f"answer {i}", "task": "x"})
    path = folder / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def write_recipe(folder: Path, steps: list[dict], shard_size: int = 37) -> Path:
    data = write_inputs(folder)
    recipe = {
        "name": "fused",
        "output_dir": str(folder / "out"),
        "seed": 3,
        "sources": [
            {
                "name": "flan",
                "format": "hf",
                "path": str(data),
                "mapping": {"instruction": "{inputs}", "output": "{targets}"},
                "meta_fields": ["task"],
            },
            {
                "name": "alpaca",
                "format": "hf",
                "path": str(data),
                "mapping": {"instruction": "{inputs}", "output": "{targets}"},
            },
        ],
        "steps": steps,
        "outputs": [{"format": "parquet"}],
        "runner": {"shard_size": shard_size},
    }
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def run_engine(recipe_path: Path, out: Path) -> tuple[dict, int]:
    recipe = load_recipe(recipe_path, out=str(out))
    files = resolve_source_files(recipe, recipe_path)
    plan = plan_run(recipe, files)
    shards = len(run_read(recipe, files, out, plan))
    (segment,) = plan.segments
    return run_filter_segment(out, segment, shards, StepContext(seed=recipe.seed)), shards


def stage_records(out: Path, stage: str, shards: int) -> list[dict]:
    parts = [out / stage / f"part-{i:05d}.parquet" for i in range(shards)]
    return [r for part in parts for r in read_records(part, "instruction")]


def test_consecutive_filters_fuse_and_a_sample_ends_the_run(tmp_path):
    def labels(steps: list[dict]) -> list[tuple[str, str]]:
        path = write_recipe(tmp_path, steps)
        recipe = load_recipe(path)
        plan = plan_run(recipe, resolve_source_files(recipe, path))
        return [(s.kind, s.label) for s in plan.segments]

    assert labels(STEPS) == [("filters", "dedup_exact+sample_per_group")]
    assert labels([*STEPS[::-1]]) == [("filters", "sample_per_group"), ("filters", "dedup_exact")]
    assert labels([STEPS[0], {"step": "filter_question"}, STEPS[1]]) == [
        ("filters", "dedup_exact"),
        ("map", "filter_question"),
        ("filters", "sample_per_group"),
    ]


def test_fused_pass_equals_the_steps_record_by_record(tmp_path):
    stats, shards = run_engine(write_recipe(tmp_path, STEPS), tmp_path / "out")
    out = tmp_path / "out"
    read = stage_records(out, "read", shards)
    # The rules, record by record in one process (no scan, no shards): the reference.
    first_seen: dict[bytes, str] = {}
    expected_rejects, survivors = [], []
    for record in read:
        survivor = first_seen.setdefault(record_key(record), record["id"])
        if survivor != record["id"]:
            expected_rejects.append((record["id"], "duplicate", survivor))
        else:
            survivors.append(record)
    sampler, heaps = GroupSampler("meta.task", 4, ["flan"], seed=3), {}
    for record in survivors:
        found = sampler.scan_row(record)
        if found is not None:
            sampler.offer(heaps, *found)
    sampler.finish(heaps)
    kept = [r["id"] for r in survivors if not isinstance(sampler(r), Rejected)]

    assert [r["id"] for r in stage_records(out, "dedup_exact", shards)] == [
        r["id"] for r in survivors
    ]
    assert [r["id"] for r in stage_records(out, "sample_per_group", shards)] == kept
    rejects = [
        (r["id"], r["reason"], r["detail"])
        for part in sorted((out / "rejects" / "dedup_exact").glob("part-*.parquet"))
        for r in pq.read_table(part).to_pylist()
    ]
    assert rejects == expected_rejects and rejects
    for stage, previous in (("dedup_exact", len(read)), ("sample_per_group", len(survivors))):
        assert sum(s.n_in for s in stats[stage]) == previous
        for s in stats[stage]:
            assert s.n_in == s.n_out + sum(s.rejected.values())
    assert sum(s.n_out for s in stats["sample_per_group"]) == len(kept) < len(survivors)


def test_fused_pass_same_bytes_with_two_workers(tmp_path):
    path = write_recipe(tmp_path, STEPS)
    run_engine(path, tmp_path / "one")
    with worker_pool(2):
        run_engine(path, tmp_path / "two")
    assert parquet_files(tmp_path / "one") == parquet_files(tmp_path / "two")


def test_fused_pass_resumes_after_a_crash_to_the_same_bytes(tmp_path, monkeypatch):
    path = write_recipe(tmp_path, STEPS)
    run_engine(path, tmp_path / "clean")

    writes = {"n": 0}
    real_write = filter_segment.write_stage_shard

    def crash_on_the_fifth_write(*args, **kwargs):
        writes["n"] += 1
        if writes["n"] == 5:  # shard 2's dedup output: shards 0-1 are done, the rest not
            raise KeyboardInterrupt("killed")
        real_write(*args, **kwargs)

    monkeypatch.setattr(filter_segment, "write_stage_shard", crash_on_the_fifth_write)
    with pytest.raises(KeyboardInterrupt):
        run_engine(path, tmp_path / "crashed")
    monkeypatch.setattr(filter_segment, "write_stage_shard", real_write)
    state = tmp_path / "crashed" / ".sftforge" / "state" / "sample_per_group"
    assert len(list(state.glob("part-*.json"))) == 2

    rewritten = []
    monkeypatch.setattr(
        filter_segment,
        "write_stage_shard",
        lambda out, stage, shard, *a: rewritten.append(shard) or real_write(out, stage, shard, *a),
    )
    run_engine(path, tmp_path / "crashed")
    assert 0 not in rewritten and 1 not in rewritten and 2 in rewritten
    assert parquet_files(tmp_path / "clean") == parquet_files(tmp_path / "crashed")


def test_deciders_sent_to_workers_do_not_carry_what_they_have_seen() -> None:
    """Every scan call pickles the deciders: the keys seen (and a sample's heaps) must stay in
    the flow's process, or each call and each worker grows with the input."""
    import pickle

    import numpy as np

    dedup = DedupPass("instruction")
    sample = SamplePass(GroupSampler("meta.task", 2, None, seed=1), "instruction")
    before = len(pickle.dumps([dedup, sample]))
    keys = np.random.default_rng(0).bytes(16 * 5000)
    dedup.decide(0, (keys, {}), list(range(5000)))
    sample.decide(0, [(row, f"g{row % 50}", row) for row in range(500)], list(range(500)))
    assert len(dedup.seen) == 5000 and len(sample.heaps) == 50
    assert len(pickle.dumps([dedup, sample])) == before
    copy = pickle.loads(pickle.dumps(dedup))
    assert copy.columns == dedup.columns and len(copy.seen) == 0
