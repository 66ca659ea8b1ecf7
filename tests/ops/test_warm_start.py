"""The warm process (#14 §2: fixed overhead of a second run), through the real `sftforge`
command on the shared local server: a second run is forked from the warm process and writes
the bytes an in-process run writes; a Ctrl-C, a SIGKILL of the command and a config error
behave as they do in-process; another environment or changed code is never served by a
stale process; the warm process goes with its server."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli_support import one_line
from tests.conftest import REPO, load_generator
from tests.ops.ops_support import SFTFORGE, make_partitions, partition_files
from tests.ops.terminal_job import (
    gone,
    group_members,
    output_digests,
    process_state,
    sharegpt_clean_run,
    start_job,
)

RECORDS, SHARD = 360, 30


def _own_home(root: Path) -> Iterator[dict[str, str]]:
    """Its own SFTFORGE_HOME and PREFECT_HOME, no PREFECT_API_URL: a local server and the
    warm process beside it, stopped at the end."""
    env = {**os.environ, "SFTFORGE_HOME": str(root / "home"), "PREFECT_HOME": str(root / "ph")}
    env.pop("PREFECT_API_URL", None)
    env.pop("SFTFORGE_WARM", None)
    yield env
    subprocess.run([SFTFORGE, "server", "stop"], env=env, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Shared by this module's tests (on one test worker), in whatever order they run."""
    yield from _own_home(tmp_path_factory.mktemp("warm"))


@pytest.fixture
def new_home(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A machine's first run, or an environment of its own."""
    yield from _own_home(tmp_path / "own")


@pytest.fixture
def ready(home: dict[str, str]) -> int:
    """The module's warm process serving: `sftforge server start` starts the server and it
    unless they run. The number of warm processes that got ready in `home` so far."""
    assert _run([SFTFORGE, "server", "start"], home).returncode == 0
    return len(_wait_for_log(home, r"ready in"))


@pytest.fixture(scope="module")
def dump(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("warm-data") / "dump.jsonl"
    gen = load_generator()
    gen.write_jsonl(path, gen.generate(RECORDS, seed=11, code_heavy=True, flawed_share=0.1))
    return path


def _command(dump: Path, out: Path, *extra: str) -> list[str]:
    return sharegpt_clean_run(dump, out, SHARD, *extra)


def _run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def _warm_log(env: dict[str, str]) -> str:
    path = Path(env["SFTFORGE_HOME"]) / "server" / "warm.log"
    return path.read_text() if path.exists() else ""


def _wait_for_log(env: dict[str, str], pattern: str, count: int = 1, timeout: float = 120) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.findall(pattern, _warm_log(env))
        if len(found) >= count:
            return found
        time.sleep(0.1)
    raise AssertionError(f"no {count}× {pattern!r} in warm.log:\n{_warm_log(env)}")


def _served_runs(env: dict[str, str]) -> list[str]:
    return re.findall(r"run (\d+): sftforge run", _warm_log(env))


@pytest.fixture(scope="module")
def reference(home: dict[str, str], dump: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run in this process (SFTFORGE_WARM=0): the bytes every warm run must write."""
    out = tmp_path_factory.mktemp("reference") / "out"
    result = _run(_command(dump, out), {**home, "SFTFORGE_WARM": "0"})
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_second_run_is_forked_warm_and_writes_the_same_bytes(
    new_home: dict[str, str], dump: Path, reference: Path, tmp_path: Path
) -> None:
    # The first run on the machine starts the server, runs itself, then starts the warm
    # process (in the background: SFTFORGE_WARM=0, as the reference ran, starts none).
    home = new_home
    assert not _warm_log(home)
    first = _run(_command(dump, tmp_path / "first"), home)
    assert first.returncode == 0, first.stderr[-3000:]
    assert output_digests(tmp_path / "first") == output_digests(reference)
    _wait_for_log(home, r"ready in")
    assert not _served_runs(home)
    result = _run(_command(dump, tmp_path / "warm"), home)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(_served_runs(home)) == 1, _warm_log(home)
    assert result.stderr.splitlines()[0].startswith("sftforge: run configs/sharegpt_clean.yaml")
    assert "Traceback" not in result.stderr
    assert "read" in result.stdout  # the summary table, on the command's own stdout
    warm = output_digests(tmp_path / "warm")
    assert warm and warm == output_digests(reference)
    _wait_for_log(home, r"run \d+: exit 0")


def test_a_config_error_through_the_warm_process_is_one_line_exit_2(
    home: dict[str, str], ready: int, dump: Path, reference: Path, tmp_path: Path
) -> None:
    served = len(_served_runs(home))
    result = _run(_command(dump, tmp_path / "bad", "--set", "runner.shard_sise=5"), home)
    assert "shard_sise" in one_line(result, 2)
    assert len(_served_runs(home)) == served + 1  # it was the warm process's fork that said so


def test_ctrl_c_and_sigkill_of_a_warm_run_then_reruns_match(
    home: dict[str, str], ready: int, dump: Path, reference: Path, tmp_path: Path
) -> None:
    for send in (signal.SIGINT, signal.SIGKILL):
        out = tmp_path / send.name
        served = len(_served_runs(home))
        proc = start_job(_command(dump, out), home)
        run_pid = int(_wait_for_log(home, r"run (\d+): sftforge run", served + 1)[-1])
        state = _first_html_shard(proc, out)
        began = time.monotonic()
        os.killpg(proc.pid, send)  # the terminal's Ctrl-C; or the command killed outright
        _, err = proc.communicate(timeout=120)
        assert gone(run_pid, group=True), f"the run's processes outlived {send.name}"
        seconds = time.monotonic() - began
        if send == signal.SIGINT:
            assert proc.returncode == 130, err
            last = err.strip().splitlines()[-1]
            assert last.startswith("sftforge: Ctrl-C: stopped after"), last
            assert "Rerun the same command to resume." in last
            assert "Traceback" not in err
        else:
            assert proc.returncode == -signal.SIGKILL
            _wait_for_log(home, rf"run {run_pid}: its command is gone")
        assert seconds < 30, (send.name, seconds)
        assert not (out / "manifest.json").exists()
        assert len(list(state.glob("part-*.json"))) < RECORDS // SHARD
        rerun = _run(_command(dump, out), home)
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        assert output_digests(out) == output_digests(reference)


def test_ctrl_z_stops_a_warm_run_and_fg_resumes_it(
    home: dict[str, str], ready: int, dump: Path, reference: Path, tmp_path: Path
) -> None:
    """The run is in a process group of its own, which the terminal's Ctrl-Z does not
    reach: the command stops it with itself, and resumes it when the shell resumes the
    command (`fg`); the run then ends as an uninterrupted one."""
    out = tmp_path / "suspended"
    served = len(_served_runs(home))
    proc = start_job(_command(dump, out), home, own_session=False)
    run_pid = int(_wait_for_log(home, r"run (\d+): sftforge run", served + 1)[-1])
    state = _first_html_shard(proc, out)
    os.killpg(proc.pid, signal.SIGTSTP)  # the terminal's Ctrl-Z
    deadline = time.monotonic() + 10
    while process_state(proc.pid) != "T" or process_state(run_pid) != "T":
        assert time.monotonic() < deadline, (process_state(proc.pid), process_state(run_pid))
        time.sleep(0.05)
    assert {process_state(pid) for pid in group_members(run_pid)} == {"T"}
    shards = len(list(state.glob("part-*.json")))
    time.sleep(2)
    assert len(list(state.glob("part-*.json"))) == shards, "the run went on while suspended"
    os.killpg(proc.pid, signal.SIGCONT)  # the shell's `fg`
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert shards < RECORDS // SHARD, "the run finished before Ctrl-Z: make the input larger"
    assert output_digests(out) == output_digests(reference)


def _first_html_shard(proc: subprocess.Popen[str], out: Path) -> Path:
    """Wait until the run wrote its first html_to_markdown shard; that stage's state folder."""
    state = out / ".sftforge" / "state" / "html_to_markdown"
    deadline = time.monotonic() + 300
    while not list(state.glob("part-*.json")) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    return state


def test_a_backfill_is_served_warm_too(home: dict[str, str], ready: int, tmp_path: Path) -> None:
    outputs = []
    for name, env in (("warm", home), ("itself", {**home, "SFTFORGE_WARM": "0"})):
        recipe = make_partitions(tmp_path / name, days=[1, 2], records=40, shard_size=20)
        served = len(re.findall(r"sftforge backfill", _warm_log(home)))
        command = [SFTFORGE, "backfill", str(recipe), "--partitions", "all", "--parallel", "2"]
        result = _run(command, env)
        assert result.returncode == 0, result.stderr[-3000:]
        was_served = len(re.findall(r"sftforge backfill", _warm_log(home))) == served + 1
        assert was_served == (name == "warm"), _warm_log(home)
        outputs.append(partition_files(tmp_path / name / "out" / "partitions"))
    assert outputs[0] and outputs[0] == outputs[1]


def test_another_environment_is_never_served_by_a_stale_warm_process(
    new_home: dict[str, str], dump: Path, reference: Path, tmp_path: Path
) -> None:
    home = new_home
    assert _run([SFTFORGE, "server", "start"], home).returncode == 0
    ready = len(_wait_for_log(home, r"ready in"))
    served = len(_served_runs(home))
    other = {**home, "SFTFORGE_TEST_MARK": "other"}
    result = _run(_command(dump, tmp_path / "other"), other)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "stale" in _warm_log(home) and len(_served_runs(home)) == served  # ran itself
    assert output_digests(tmp_path / "other") == output_digests(reference)
    # It started a warm process of its own environment, which serves the next such command.
    _wait_for_log(home, r"ready in", ready + 1)
    again = _run(_command(dump, tmp_path / "other-2"), other)
    assert again.returncode == 0 and len(_served_runs(home)) == served + 1, _warm_log(home)


def test_the_warm_process_goes_with_its_server(home: dict[str, str], reference: Path) -> None:
    # `sftforge server start` makes both ready (for a first run too), or leaves them be.
    assert _run([SFTFORGE, "server", "start"], home).returncode == 0
    pid = _serving_pid(home)
    assert "MB resident" in _run([SFTFORGE, "server", "status"], home).stdout
    ready = len(re.findall("ready in", _warm_log(home)))
    stopped = _run([SFTFORGE, "server", "stop"], home)
    assert stopped.returncode == 0 and stopped.stdout.strip() == "stopped"
    assert gone(pid, group=False), _warm_log(home)
    assert not (Path(home["SFTFORGE_HOME"]) / "server" / "warm.sock").exists()
    status = _run([SFTFORGE, "server", "status"], home)
    assert status.returncode == 3, status.stdout
    assert _run([SFTFORGE, "server", "start"], home).returncode == 0
    _wait_for_log(home, r"ready in", ready + 1)
    assert _serving_pid(home) != pid


def _serving_pid(env: dict[str, str]) -> int:
    """The warm process `sftforge server status` names, once it is ready to serve."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        said = re.search(
            r"warm process: pid (\d+),", _run([SFTFORGE, "server", "status"], env).stdout
        )
        if said and re.search(rf"pid {said[1]}: ready in", _warm_log(env)):
            return int(said[1])
        time.sleep(0.2)
    raise AssertionError(f"no warm process ready:\n{_warm_log(env)}")


if sys.platform != "linux":  # fork, SO_PEERCRED and /proc: the warm process is Linux's
    pytestmark = pytest.mark.skip("the warm process runs on Linux only")
