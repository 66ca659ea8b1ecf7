"""Ctrl-C during the augment stage of a real `sftforge run` (#14 §1): the first one finishes
the calls in flight into the journal before the command exits 130; a second one exits at once;
the rerun sends no journaled call again."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from augment_support import SECRET_KEY, SFTFORGE, write_recipe
from test_augment_resume import done_count, journal_rows, ok_requests

from tests.ops.terminal_job import start_job


def start(recipe: Path, base_url: str) -> subprocess.Popen[str]:
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "OPENAI_BASE_URL": base_url, "OPENAI_API_KEY": SECRET_KEY}
    env["PREFECT_API_URL"] = str(PREFECT_API_URL.value())
    return start_job([SFTFORGE, "run", str(recipe)], env)


def journal_of(out: Path, proc: subprocess.Popen[str]) -> Path:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        found = [p for p in out.rglob("*.sqlite") if done_count(p) >= 3]
        if found:
            return found[0]
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("no journal with finished calls")


@pytest.mark.usefixtures("prefect_harness")
def test_first_ctrl_c_journals_calls_in_flight_and_rerun_sends_none_again(
    start_server, tmp_path: Path
) -> None:
    server = start_server(latency_ms=400)
    recipe = write_recipe(
        tmp_path, [f"Name a prime number above {i}." for i in range(40)], concurrency=4
    )
    proc = start(recipe, server.base_url("openai"))
    journal = journal_of(tmp_path / "out", proc)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)

    assert proc.returncode == 130, err
    assert "finishing what is in flight" in err
    assert err.strip().splitlines()[-1].endswith("Rerun the same command to resume."), err
    assert not journal_rows(journal, "started"), "calls in flight were not finished"
    paid_first = sum(ok_requests(server).values())
    assert paid_first == sum(journal_rows(journal, "done").values())

    rerun = start(recipe, server.base_url("openai"))
    _, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err
    sent = ok_requests(server)
    assert max(sent.values()) == 1, "a journaled call was sent again"


@pytest.mark.usefixtures("prefect_harness")
def test_second_ctrl_c_exits_at_once(start_server, tmp_path: Path) -> None:
    server = start_server(latency_ms=3000)  # calls in flight for longer than the grace time
    recipe = write_recipe(tmp_path, [f"Describe colour {i}." for i in range(12)], concurrency=4)
    proc = start(recipe, server.base_url("openai"))
    journal = tmp_path / "out"
    deadline = time.monotonic() + 300
    while not any(journal.rglob("*.sqlite")):  # the stage has begun
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGINT)
    time.sleep(0.5)
    began = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "stopped at once" in err, err
    assert time.monotonic() - began < 5.0  # not the grace time, nor the 3 s calls
