"""Backfill: partitions by date, skip what is done with the same recipe hash, retry what
failed, run K at a time, resume after being killed."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from ops_support import SFTFORGE, base_env, make_partitions, manifest, partition_files

from sftforge.flows.backfill_flow import backfill_flow_for
from sftforge.flows.cli import main
from sftforge.schemas.loading import ConfigError
from sftforge.tasks.pipeline.partitions import discover, parse_pattern, plan_partitions, select
from sftforge.tasks.pipeline.request import RunRequest

# ---------------------------------------------------------------- partitions, no Prefect


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{}\n")
    return path


def test_pattern_groups_files_by_the_date_in_their_path(tmp_path):
    a = touch(tmp_path / "dumps/2023-04-01/a.json")
    b = touch(tmp_path / "dumps/2023-04-01/b.json")
    c = touch(tmp_path / "dumps/2023-04-03/a.json")
    touch(tmp_path / "dumps/2023-04-03/notes.txt")  # not *.json
    touch(tmp_path / "dumps/2023-13-45/a.json")  # not a date
    touch(tmp_path / "dumps/latest/a.json")
    pattern = parse_pattern(f"{tmp_path}/dumps/{{date}}/*.json", "r.yaml")
    assert discover(pattern) == {"2023-04-01": [a, b], "2023-04-03": [c]}
    assert pattern.glob_for("2023-04-01") == f"{tmp_path}/dumps/2023-04-01/*.json"


def test_a_pattern_field_can_sit_inside_a_name_and_under_double_star(tmp_path):
    a = touch(tmp_path / "x/y/sg_2023-05-02.jsonl")
    pattern = parse_pattern(f"{tmp_path}/**/sg_{{date}}.jsonl", "r.yaml")
    assert discover(pattern) == {"2023-05-02": [a]}
    named = parse_pattern(f"{tmp_path}/x/{{shard}}/*.jsonl", "r.yaml")
    assert discover(named) == {"y": [a]}


def test_partition_specs():
    date = parse_pattern("d/{date}/*.json", "r.yaml")
    found = {"2023-04-01": [], "2023-04-03": []}
    assert select("2023-04-01..2023-04-03", date, found) == [
        "2023-04-01",
        "2023-04-02",  # a day with no files is listed (reported as "no input")
        "2023-04-03",
    ]
    assert len(select("2023-04-01..2023-04-30", date, found)) == 30
    assert select("2023-04-03,2023-04-01", date, found) == ["2023-04-03", "2023-04-01"]
    assert select("all", date, found) == ["2023-04-01", "2023-04-03"]
    for bad in ("2023-04-05..2023-04-01", "2023-04-01..soon", "yesterday", ","):
        with pytest.raises(ConfigError):
            select(bad, date, found)
    named = parse_pattern("d/{name}/*.json", "r.yaml")
    assert select("b..c", named, {"a": [], "b": [], "c": [], "d": []}) == ["b", "c"]
    with pytest.raises(ConfigError, match="exactly one"):
        parse_pattern("d/*.json", "r.yaml")


def test_each_partition_has_its_own_recipe_hash(tmp_path):
    recipe = make_partitions(tmp_path, days=[1, 2], records=5)
    _, runs = plan_partitions(RunRequest(recipe_path=str(recipe)), "2023-04-01..2023-04-03")
    assert [r.key for r in runs] == ["2023-04-01", "2023-04-02", "2023-04-03"]
    assert runs[0].config_hash != runs[1].config_hash and runs[2].config_hash is None
    assert runs[0].out == str(tmp_path / "out" / "partitions" / "2023-04-01")
    _, again = plan_partitions(RunRequest(recipe_path=str(recipe)), "2023-04-01")
    assert again[0].config_hash == runs[0].config_hash
    _, changed = plan_partitions(
        RunRequest(recipe_path=str(recipe), sets=["steps[2].words=[x]"]), "2023-04-01"
    )
    assert changed[0].config_hash != runs[0].config_hash
    # Where a partition's output goes and how many processes make it is not the recipe.
    _, moved = plan_partitions(
        RunRequest(recipe_path=str(recipe), sets=["runner.workers=1"]), "2023-04-01"
    )
    assert moved[0].config_hash == runs[0].config_hash


def test_backfill_usage_errors_exit_2(tmp_path, capsys):
    recipe = make_partitions(tmp_path, days=[1], records=5)
    plain = tmp_path / "plain.yaml"
    plain.write_text(recipe.read_text().split("partitions:")[0] + "steps: []\n")
    cases = [
        [str(plain), "--partitions", "all"],  # no partitions declared
        [str(recipe), "--partitions", "2023-05-01..2023-05-02"],  # no files in range
        [str(recipe), "--partitions", "May"],
        [str(recipe), "--partitions", "all", "--input", "sharegpt=x.json"],
    ]
    for args in cases:
        assert main(["backfill", *args]) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("sftforge: ") and err.count("\n") == 1, err


# ---------------------------------------------------------------- the flow


def run_backfill(recipe: Path, spec: str, **options) -> list[dict]:
    parallel = options.pop("parallel", 1)
    options.setdefault("quiet", True)
    request = RunRequest(
        recipe_path=str(recipe), sets=options.pop("sets", None), out=options.pop("out", None)
    )
    return backfill_flow_for(parallel)(request=request, spec=spec, **options)


def states(rows: list[dict]) -> dict[str, str]:
    return {row["partition"]: row["state"] for row in rows}


@pytest.mark.usefixtures("prefect_harness")
def test_backfill_runs_partitions_then_skips_them(tmp_path):
    recipe = make_partitions(tmp_path, days=[1, 2, 4])
    rows = run_backfill(recipe, "2023-04-01..2023-04-04", parallel=2)
    assert states(rows) == {
        "2023-04-01": "completed",
        "2023-04-02": "completed",
        "2023-04-03": "no input",
        "2023-04-04": "completed",
    }
    out = tmp_path / "out" / "partitions"
    for row in rows:
        if row["state"] == "completed":
            body = manifest(out / row["partition"])
            assert row["in"] == body["stages"][0]["in"] == 60
            assert row["out"] == body["stages"][-1]["out"]
            assert row["rejected"] == row["in"] - row["out"] and row["attempts"] == 1
            assert row["seconds"] > 0
    first = partition_files(out)

    again = run_backfill(recipe, "2023-04-01..2023-04-04")
    assert states(again)["2023-04-01"] == "skipped"
    assert [r["state"] for r in again].count("skipped") == 3
    assert again[0]["in"] == rows[0]["in"]  # counts of a skipped partition, from its manifest

    # A different recipe (hash) reruns; --force reruns whatever the hash; same bytes.
    changed = run_backfill(recipe, "2023-04-01", sets=["steps[2].words=[openai, chatgpt]"])
    assert states(changed) == {"2023-04-01": "completed"}
    forced = run_backfill(recipe, "2023-04-01,2023-04-02", force=True)
    assert states(forced) == {"2023-04-01": "completed", "2023-04-02": "completed"}
    assert partition_files(out) == first


@pytest.mark.usefixtures("prefect_harness")
def test_a_failed_partition_is_retried_then_rerun(tmp_path, capsys):
    recipe = make_partitions(tmp_path, days=[1, 2], workers=1)
    blocker = tmp_path / "out" / "partitions" / "2023-04-02"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("a file where the partition's output folder must go")
    code = main(
        ["backfill", str(recipe), "--partitions", "2023-04-01..2023-04-02", "--retries", "1"]
    )
    table = capsys.readouterr().out
    assert code == 1
    assert "1 completed, 1 failed" in table
    row = next(line for line in table.splitlines() if line.startswith("│ 2023-04-02"))
    assert "failed" in row and "│        2 │" in row  # two attempts: the first and a retry

    blocker.unlink()
    assert main(["backfill", str(recipe), "--partitions", "2023-04-01..2023-04-02"]) == 0
    table = capsys.readouterr().out
    assert "1 skipped, 1 completed" in table or "1 completed, 1 skipped" in table
    assert manifest(blocker)["stages"][0]["in"] == 60


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_a_killed_backfill_continues_where_it_stopped(tmp_path):
    from prefect.settings import PREFECT_API_URL

    days = [1, 2, 3]
    recipe = make_partitions(tmp_path, days=days, records=60, workers=1)
    reference = tmp_path / "reference"
    run_backfill(recipe, "all", out=str(reference))

    # The CLI in its own process, reporting to this session's server (no temporary one).
    env = base_env(Path(os.environ["PREFECT_HOME"]), PREFECT_API_URL.value())
    args = [SFTFORGE, "backfill", str(recipe), "--partitions", "all"]
    proc = subprocess.Popen(
        args,
        env=env,
        cwd=tmp_path,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    out = tmp_path / "out" / "partitions"
    try:
        deadline = time.monotonic() + 120
        while not (out / "2023-04-01" / "manifest.json").exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    done_before = {
        d for d in (f"2023-04-0{i}" for i in days) if (out / d / "manifest.json").exists()
    }
    assert "2023-04-01" in done_before and len(done_before) < len(days)

    result = subprocess.run(
        args, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for key in done_before:
        row = next(line for line in result.stdout.splitlines() if line.startswith(f"│ {key}"))
        assert "skipped" in row
    assert f"{len(done_before)} skipped" in result.stdout
    assert partition_files(out) == partition_files(reference / "partitions")
