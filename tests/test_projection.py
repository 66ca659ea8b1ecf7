"""Pure filters read only their columns: the same parts and rejects as on whole records."""

from __future__ import annotations

import json

import pyarrow.parquet as pq

from sftforge.schemas.loading import load_recipe, resolve_source_files
from sftforge.tasks.pipeline.plan import plan_run
from sftforge.tasks.pipeline.read_stage import run_read
from sftforge.tasks.pipeline.stages import run_map_shard
from sftforge.tasks.steps.filter_question import FilterQuestionStep
from tests.test_flow import parquet_files
from tests.test_global_filters import write_recipe


def run_map(path, out) -> None:
    recipe = load_recipe(path, out=str(out))
    files = resolve_source_files(recipe, path)
    plan = plan_run(recipe, files)
    shards = len(run_read(recipe, files, out, plan))
    for shard in range(shards):
        run_map_shard(out, plan.segments[0], shard, recipe.seed)


def test_projected_filter_gives_the_bytes_of_whole_records(tmp_path, monkeypatch):
    path = write_recipe(tmp_path, [{"step": "filter_question"}])
    rows = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    for i in range(0, len(rows), 5):
        rows[i]["targets"] = f"is it {i}?"  # answers that are questions: rejected
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    run_map(path, tmp_path / "projected")
    # whole records, as for a step that reads everything
    monkeypatch.setattr(FilterQuestionStep, "reads", None)
    run_map(path, tmp_path / "whole")

    assert parquet_files(tmp_path / "projected") == parquet_files(tmp_path / "whole")
    rejects = [
        r
        for part in sorted((tmp_path / "projected" / "rejects" / "filter_question").glob("*"))
        for r in pq.read_table(part).to_pylist()
    ]
    assert len(rejects) == 2 * len(range(0, len(rows), 5))  # both sources read the file
    assert all(json.loads(r["record"])["instruction"] for r in rejects)  # the whole record
