"""A run killed with SIGKILL mid-way and rerun gives the same output as an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import load_generator
from tests.test_flow import parquet_files, run

REPO = Path(__file__).resolve().parents[1]
SFTFORGE = Path(sys.executable).parent / "sftforge"


def cli(args: list[str], prefect_home: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "PREFECT_HOME": str(prefect_home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    env.pop("PREFECT_API_URL", None)  # the local server sftforge starts, as for a user
    return subprocess.Popen(
        [str(SFTFORGE), *args],
        cwd=REPO,
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def kill_after(proc: subprocess.Popen, markers: Path, count: int) -> int:
    """SIGKILL the run's process group once `count` shard markers exist; how many there were."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and len(list(markers.glob("part-*.json"))) < count:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return len(list(markers.glob("part-*.json")))


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_sigkill_mid_run_then_rerun_matches_uninterrupted(tmp_path):
    data = tmp_path / "dump.jsonl"
    gen = load_generator()
    gen.write_jsonl(data, gen.generate(2500, seed=11, flawed_share=0.3))
    args = [
        "run",
        "configs/openchat_sharegpt.yaml",
        "--input",
        f"sharegpt={data}",
        "--set",
        "runner.shard_size=50",
        "--set",
        "runner.workers=1",
        "--quiet",
    ]

    clean = tmp_path / "clean"
    run(
        "openchat_sharegpt.yaml",
        clean,
        {"sharegpt": str(data)},
        ["runner.shard_size=50"],
        workers=1,
    )

    crashed = tmp_path / "crashed"
    proc = cli([*args, "--out", str(crashed)], tmp_path / "prefect-home")
    done_before = kill_after(proc, crashed / ".sftforge" / "state" / "html_to_markdown", 8)
    assert not (crashed / "manifest.json").exists(), "the run ended before it could be killed"
    assert 8 <= done_before < 50

    rerun_matches(
        [*args, "--out", str(crashed)], tmp_path / "prefect-home", crashed, clean, "sharegpt.json"
    )


def rerun_matches(
    args: list[str], prefect_home: Path, crashed: Path, clean: Path, export: str
) -> None:
    """Rerun the killed command: it succeeds, and its dataset and `export` file are
    byte-identical to the uninterrupted run's, with no temporary file left behind."""
    rerun = cli(args, prefect_home)
    output, _ = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, output
    assert parquet_files(crashed) == parquet_files(clean)
    assert (crashed / "export" / export).read_bytes() == (clean / "export" / export).read_bytes()
    assert not list(crashed.rglob("*.tmp"))


def _instruction_recipe(folder: Path, rows: int) -> Path:
    """FLAN-like rows with repeated queries, read as two sources: many small shards, so the
    fused dedup + sample pass takes long enough to be killed in the middle of it."""
    import json

    import yaml

    data = folder / "rows.jsonl"
    with data.open("w") as fh:
        for i in range(rows):
            row = {"inputs": f"question {i % (rows // 3)}", "targets": f"a{i}", "task": f"t{i % 9}"}
            fh.write(json.dumps(row) + "\n")
    source = {"format": "hf", "path": str(data), "meta_fields": ["task"]}
    mapping = {"instruction": "{inputs}", "output": "{targets}"}
    recipe = {
        "name": "fused_kill",
        "output_dir": str(folder / "unused"),
        "seed": 5,
        "sources": [
            {"name": "flan", **source, "mapping": mapping},
            {"name": "alpaca", **source, "mapping": mapping},
        ],
        "steps": [
            {"step": "dedup_exact"},
            {"step": "sample_per_group", "by": "meta.task", "max": 4, "datasets": ["flan"]},
        ],
        "outputs": [{"format": "parquet"}, {"format": "alpaca_json", "name": "merged"}],
        "runner": {"shard_size": 25, "workers": 1},
    }
    path = folder / "fused.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_sigkill_in_the_fused_global_pass_then_rerun_matches_uninterrupted(tmp_path):
    recipe = _instruction_recipe(tmp_path, 12000)  # 24,000 records in 960 shards
    clean = tmp_path / "clean"
    run(str(recipe), clean, workers=1)

    crashed = tmp_path / "crashed"
    args = ["run", str(recipe), "--out", str(crashed), "--quiet"]
    proc = cli(args, tmp_path / "prefect-home")
    # sample_per_group's markers are written as the fused pass applies its shards
    done_before = kill_after(proc, crashed / ".sftforge" / "state" / "sample_per_group", 40)
    assert 40 <= done_before < 960, done_before  # killed inside the pass, not after it

    rerun_matches(args, tmp_path / "prefect-home", crashed, clean, "merged.json")
