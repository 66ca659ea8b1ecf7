"""Ctrl-C and SIGTERM through the real `sftforge run` (#14 §1): out within seconds with one
line saying what finished, no process left behind, and a rerun that finishes the job with
the bytes an uninterrupted run writes."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, load_generator
from tests.ops.terminal_job import gone, output_digests, sharegpt_clean_run, start_job

# Not a pass/fail on speed (timings are noisy on a shared 2-core machine): a bound that the
# old behaviour (minutes, or never for a SIGTERM to the main process) cannot meet.
EXIT_BOUND_SECONDS = 30.0
SHARDS = 12


@pytest.fixture(scope="module")
def dump(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Code-heavy ShareGPT records: html_to_markdown is the long stage, as in the report."""
    path = tmp_path_factory.mktemp("interrupt") / "dump.jsonl"
    gen = load_generator()
    gen.write_jsonl(path, gen.generate(SHARDS * 100, seed=3, code_heavy=True, flawed_share=0.1))
    return path


def _start(dump: Path, out: Path) -> subprocess.Popen[str]:
    return start_job(sharegpt_clean_run(dump, out, 100), _env())


def _env() -> dict[str, str]:
    from prefect.settings import PREFECT_API_URL

    return {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()), "COLUMNS": "120"}


def _wait_for_markers(proc: subprocess.Popen[str], folder: Path, at_least: int) -> int:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        done = len(list(folder.glob("part-*.json")))
        if done >= at_least:
            return done
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError(f"no {at_least} markers in {folder}")


def _stop_and_time(proc: subprocess.Popen[str], send: signal.Signals, group: bool) -> float:
    began = time.monotonic()
    if group:
        os.killpg(proc.pid, send)
    else:
        proc.send_signal(send)
    proc.wait(timeout=120)
    return time.monotonic() - began


@pytest.mark.usefixtures("prefect_harness")
def test_ctrl_c_mid_stage_exits_130_with_one_line_and_rerun_matches(
    dump: Path, tmp_path: Path
) -> None:
    out = tmp_path / "interrupted"
    proc = _start(dump, out)
    html_state = out / ".sftforge" / "state" / "html_to_markdown"
    _wait_for_markers(proc, html_state, 1)
    seconds = _stop_and_time(proc, signal.SIGINT, group=True)
    _, err = proc.communicate()

    assert proc.returncode == 130, err
    assert seconds < EXIT_BOUND_SECONDS, (seconds, err)
    assert gone(proc.pid, group=True, wait=5.0), "worker processes outlived the command"
    assert "Traceback" not in err and "cannot schedule new futures" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("sftforge: Ctrl-C: stopped after"), last
    assert "finished: read (12 shards)" in last and "Rerun the same command to resume." in last
    # Beside the progress lines (plain "[stage] ..." lines: stderr is not a terminal), the
    # first line and the last: not the hundreds of tracebacks and connection errors of before.
    said = [line for line in err.splitlines() if line.strip() and not line.startswith("[")]
    assert len(said) == 2, err
    assert not (out / ".sftforge" / "lock").exists(), "OUT's lock was left behind"
    assert not (out / "manifest.json").exists()
    stopped_at = len(list(html_state.glob("part-*.json")))
    assert stopped_at < SHARDS, "the run finished before the signal: make the input larger"

    rerun = subprocess.run(
        sharegpt_clean_run(dump, out, 100), cwd=REPO, env=_env(), capture_output=True, text=True
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    reference = tmp_path / "uninterrupted"
    whole = subprocess.run(
        sharegpt_clean_run(dump, reference, 100),
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
    )
    assert whole.returncode == 0, whole.stderr[-3000:]
    assert output_digests(out) and output_digests(out) == output_digests(reference)


@pytest.mark.usefixtures("prefect_harness")
def test_sigterm_to_the_main_process_alone_exits_143(dump: Path, tmp_path: Path) -> None:
    out = tmp_path / "terminated"
    proc = _start(dump, out)
    _wait_for_markers(proc, out / ".sftforge" / "state" / "html_to_markdown", 1)
    seconds = _stop_and_time(proc, signal.SIGTERM, group=False)
    _, err = proc.communicate()
    assert proc.returncode == 143, err
    assert seconds < EXIT_BOUND_SECONDS, (seconds, err)
    assert gone(proc.pid, group=True, wait=5.0), "worker processes outlived the command"
    last = err.strip().splitlines()[-1]
    assert last.startswith("sftforge: SIGTERM: stopped after"), last
    assert "Rerun the same command to resume." in last
