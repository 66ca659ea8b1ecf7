"""The shared local Prefect server (#14 §2), through the real `sftforge` commands: started
once by the first run (two runs at once start one), reused by the next, out of reach of a
terminal's Ctrl-C, the UI's home, stopped by `sftforge server stop` or after its idle time,
and never used when PREFECT_API_URL names a server."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO, load_generator
from tests.ops.ops_support import SFTFORGE
from tests.ops.terminal_job import start_job

STARTING = "starting the local Prefect server"


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    """An environment with its own SFTFORGE_HOME and PREFECT_HOME and no PREFECT_API_URL;
    its server is stopped at the end."""
    env = {
        **os.environ,
        "SFTFORGE_HOME": str(tmp_path / "home"),
        "PREFECT_HOME": str(tmp_path / "prefect"),
    }
    env.pop("PREFECT_API_URL", None)
    yield env
    subprocess.run([SFTFORGE, "server", "stop"], env=env, capture_output=True, timeout=60)


def sftforge(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SFTFORGE, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )


def start_run(env: dict[str, str], data: Path, out: Path) -> subprocess.Popen[str]:
    command = [SFTFORGE, "run", "configs/sharegpt_clean.yaml", "--input", f"sharegpt={data}"]
    return start_job([*command, "--out", str(out)], env)


def server_info(env: dict[str, str]) -> dict:
    return json.loads((Path(env["SFTFORGE_HOME"]) / "server" / "server.json").read_text())


def test_first_runs_start_one_server_the_next_reuse_it(home, tmp_path: Path) -> None:
    data = tmp_path / "small.jsonl"
    gen = load_generator()
    gen.write_jsonl(data, gen.generate(40, seed=5))
    assert sftforge(home, "server", "status").returncode == 3  # not running

    # Two runs at once from cold: one starts the server, the other waits for it and reuses it.
    both = [start_run(home, data, tmp_path / f"out-{i}") for i in range(2)]
    errs = [p.communicate(timeout=600)[1] for p in both]
    assert [p.returncode for p in both] == [0, 0], errs
    for err in errs:  # the first line says what is starting, before anything of Prefect's
        assert err.splitlines()[0].startswith("sftforge: run configs/sharegpt_clean.yaml -> ")
    assert sum(STARTING in err for err in errs) == 1, errs
    first = server_info(home)

    status = sftforge(home, "server", "status")
    assert status.returncode == 0 and f"running at {first['url']}" in status.stdout

    # A later run reuses it; a Ctrl-C to a run's process group does not reach it.
    again = sftforge(
        home,
        "run",
        "configs/sharegpt_clean.yaml",
        "--input",
        f"sharegpt={data}",
        "--out",
        str(tmp_path / "out-2"),
    )
    assert again.returncode == 0 and STARTING not in again.stderr, again.stderr
    interrupted = start_run(home, data, tmp_path / "out-3")
    assert interrupted.stderr is not None
    interrupted.stderr.readline()  # the first line: the run has started
    os.killpg(interrupted.pid, signal.SIGINT)
    interrupted.communicate(timeout=120)
    assert interrupted.returncode == 130
    assert server_info(home)["pid"] == first["pid"]
    assert sftforge(home, "server", "status").returncode == 0

    # The UI is served, and the runs are in its history.
    ui = sftforge(home, "ui")
    assert ui.returncode == 0 and ui.stdout.strip() == first["url"].removesuffix("/api")
    with urllib.request.urlopen(ui.stdout.strip(), timeout=30) as page:
        assert b"<html" in page.read().lower()
    request = urllib.request.Request(
        f"{first['url']}/flow_runs/count", data=b"{}", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert json.loads(answer.read()) >= 3

    stopped = sftforge(home, "server", "stop")
    assert stopped.stdout.strip() == "stopped"
    assert sftforge(home, "server", "status").returncode == 3


def test_idle_server_stops_itself_unless_in_use(home) -> None:
    home["SFTFORGE_SERVER_IDLE_MINUTES"] = "0.05"  # 3 s
    assert sftforge(home, "server", "start").returncode == 0
    in_use = Path(home["SFTFORGE_HOME"]) / "server" / "in-use.lock"
    with open(in_use, "a+") as held:  # what every run holds while it talks to the server
        fcntl.flock(held, fcntl.LOCK_SH)
        time.sleep(5)
        assert sftforge(home, "server", "status").returncode == 0, "stopped while in use"
    deadline = time.monotonic() + 60
    while sftforge(home, "server", "status").returncode == 0:
        assert time.monotonic() < deadline, "the idle server did not stop"
        time.sleep(1)


def test_a_server_whose_home_is_deleted_stops(home) -> None:
    """A temporary SFTFORGE_HOME (a benchmark's, a test's) removed under a running server:
    no command can reach or stop it any more, so it stops itself."""
    home["SFTFORGE_SERVER_IDLE_MINUTES"] = "0.05"  # checks every 0.75 s
    assert sftforge(home, "server", "start").returncode == 0
    pid = server_info(home)["pid"]
    shutil.rmtree(Path(home["SFTFORGE_HOME"]))
    deadline = time.monotonic() + 30
    while _alive(pid):
        assert time.monotonic() < deadline, "the orphaned server kept running"
        time.sleep(0.5)


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status  # a zombie has exited


def test_prefect_api_url_wins(home) -> None:
    home["PREFECT_API_URL"] = "http://127.0.0.1:9/api"
    status = sftforge(home, "server", "status")
    assert status.returncode == 0
    assert "PREFECT_API_URL is set: runs use http://127.0.0.1:9/api" in status.stdout
    assert not (Path(home["SFTFORGE_HOME"]) / "server" / "server.json").exists()


def test_without_the_local_server_a_run_uses_prefects_temporary_one(home, tmp_path) -> None:
    """SFTFORGE_LOCAL_SERVER=0: Prefect's own temporary server per run, even with a
    PREFECT_HOME whose parents do not exist yet (it then never answered: exit 1 after 120 s)."""
    home["SFTFORGE_LOCAL_SERVER"] = "0"
    home["PREFECT_HOME"] = str(tmp_path / "not-yet" / "prefect")
    data = tmp_path / "small.jsonl"
    gen = load_generator()
    gen.write_jsonl(data, gen.generate(20, seed=9))
    run = sftforge(
        home, "run", "configs/sharegpt_clean.yaml", "--input", f"sharegpt={data}",
        "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert STARTING not in run.stderr and (tmp_path / "out" / "manifest.json").exists()
    assert (tmp_path / "not-yet" / "prefect" / "prefect.db").exists()
    assert not (Path(home["SFTFORGE_HOME"]) / "server" / "server.json").exists()


def test_a_prefect_profile_api_url_wins_too(home) -> None:
    profiles = Path(home["PREFECT_HOME"]) / "profiles.toml"
    profiles.parent.mkdir(parents=True, exist_ok=True)
    profiles.write_text(
        'active = "team"\n\n[profiles.team]\nPREFECT_API_URL = "http://127.0.0.1:9/api"\n'
    )
    status = sftforge(home, "server", "status")
    assert "PREFECT_API_URL is set: runs use http://127.0.0.1:9/api" in status.stdout
