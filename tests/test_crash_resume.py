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
    env.pop("PREFECT_API_URL", None)  # its own temporary server, like a user's first run
    return subprocess.Popen(
        [str(SFTFORGE), *args],
        cwd=REPO,
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


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
    markers = crashed / ".sftforge" / "state" / "html_to_markdown"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and len(list(markers.glob("part-*.json"))) < 8:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (crashed / "manifest.json").exists(), "the run ended before it could be killed"
    done_before = len(list(markers.glob("part-*.json")))
    assert 8 <= done_before < 50

    rerun = cli([*args, "--out", str(crashed)], tmp_path / "prefect-home")
    output, _ = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, output
    assert parquet_files(crashed) == parquet_files(clean)
    assert (crashed / "export" / "sharegpt.json").read_bytes() == (
        clean / "export" / "sharegpt.json"
    ).read_bytes()
    assert not list(crashed.rglob("*.tmp"))  # no temporary file left behind
