"""One output directory, one run (issue #12, section 3), through the real `sftforge` command:
a second run into a busy OUT refuses at once; a dead run's lock is taken over; a failed rerun
leaves no manifest beside parts it does not describe, and `report` / `push` refuse such an
OUT (and a broken manifest) in one line; a full disk is one line naming the stage and path,
and the rerun after it matches an uninterrupted run."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL

from sftforge.schemas.loading import ConfigError
from sftforge.tasks.pipeline import out_lock
from sftforge.tasks.pipeline.out_check import check_out
from tests.cli_support import one_line
from tests.conftest import load_generator
from tests.test_flow import parquet_files

REPO = Path(__file__).resolve().parents[1]
COMMAND = [sys.executable, "-m", "sftforge.flows.cli"]
DEMO = "configs/demo.yaml"
SAMPLE = REPO / "data" / "sharegpt_sample.jsonl"


def _env(home: Path) -> dict[str, str]:
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    # The session's server (`home` starts it): a temporary server per command would cost
    # ~10 s each, and what is tested here is the output directory, not the server's start.
    env["PREFECT_API_URL"] = PREFECT_API_URL.value()
    return env


def start(args: list[str], home: Path) -> subprocess.Popen:
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    return subprocess.Popen(
        [*COMMAND, *args], cwd=REPO, env=_env(home), start_new_session=True, **pipes
    )


def sftforge(args: list[str], home: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*COMMAND, *args], cwd=REPO, env=_env(home), capture_output=True, text=True, timeout=600
    )


def small_input(folder: Path, lines: int = 40) -> Path:
    """Another input than the demo's: its first `lines` records."""
    path = folder / f"first{lines}.jsonl"
    path.write_text("\n".join(SAMPLE.read_text().splitlines()[:lines]) + "\n")
    return path


def outputs(out: Path) -> dict[str, bytes]:
    """What must not depend on how the run got there: every stage's and rejects' parquet,
    and the exports."""
    files = parquet_files(out)
    files.update({str(p.relative_to(out)): p.read_bytes() for p in (out / "export").iterdir()})
    return files


@pytest.fixture(scope="module")
def home(tmp_path_factory, prefect_harness) -> Path:
    """One PREFECT_HOME for the runs made one after another (its database is made once)."""
    return tmp_path_factory.mktemp("prefect-home")


@pytest.fixture(scope="module")
def clean(tmp_path_factory, home) -> Path:
    """An uninterrupted run of the demo, alone in its OUT."""
    out = tmp_path_factory.mktemp("clean") / "out"
    result = sftforge(["run", DEMO, "--out", str(out), "--quiet"], home)
    assert result.returncode == 0, result.stderr
    return out


# ---------------------------------------------------------------- the lock, in one process


def test_one_process_holds_two_outs_but_never_one_twice(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    with out_lock.out_lock(first), out_lock.out_lock(second):
        with pytest.raises(ConfigError, match=f"in use by pid {os.getpid()} on host"):
            out_lock.acquire(first)
        assert json.loads(out_lock.lock_path(first).read_text())["pid"] == os.getpid()
    assert not out_lock.lock_path(first).exists() and not out_lock.lock_path(second).exists()


def test_lock_is_released_when_the_run_raises(tmp_path):
    with pytest.raises(KeyboardInterrupt), out_lock.out_lock(tmp_path):
        raise KeyboardInterrupt
    assert not out_lock.lock_path(tmp_path).exists()


def test_a_reused_pid_does_not_hold_the_lock(tmp_path, capsys):
    """Our own pid in a lock, but a process start time that is not ours: a run that had this
    pid before (a container restarted) — stale."""
    path = out_lock.lock_path(tmp_path)
    path.parent.mkdir(parents=True)
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "process_start": "1"}
    path.write_text(json.dumps({**holder, "started": "2026-01-01T00:00:00+00:00"}))
    if out_lock._process_start(os.getpid()) is None:
        pytest.skip("no /proc here: a reused pid cannot be told from a live one")
    with out_lock.out_lock(tmp_path):
        assert json.loads(path.read_text())["process_start"] != "1"
    assert "took over the lock of pid" in capsys.readouterr().err


def test_an_unreadable_lock_is_refused_in_one_line(tmp_path):
    path = out_lock.lock_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("{half")
    with pytest.raises(ConfigError, match="locked by an unreadable .*lock; remove it"):
        out_lock.acquire(tmp_path)


# ---------------------------------------------------------------- the real command


@pytest.mark.slow
def test_second_run_into_a_busy_out_refuses_at_once(tmp_path, home, clean):
    out = tmp_path / "out"
    # A first run long enough to still hold OUT while two commands are refused (the demo's
    # 404 records take a few seconds once the Prefect server is shared).
    busy = tmp_path / "busy.jsonl"
    gen = load_generator()
    gen.write_jsonl(busy, gen.generate(4000, seed=2, code_heavy=True))
    first = start(["run", DEMO, "--input", f"sharegpt={busy}", "--out", str(out), "--quiet"], home)
    try:
        lock = out_lock.lock_path(out)
        deadline = time.monotonic() + 120
        while not lock.exists():
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first run never took the lock"
            time.sleep(0.05)
        holder = json.loads(lock.read_text())
        other = small_input(tmp_path)
        began = time.monotonic()
        second = sftforge(
            ["run", DEMO, "--input", f"sharegpt={other}", "--out", str(out), "--quiet"],
            tmp_path / "home2",
        )
        seconds = time.monotonic() - began
        assert first.poll() is None, "the first run ended before the second was refused"
        line = one_line(second, 2)
        assert f"in use by pid {holder['pid']} on host {holder['host']}" in line, line
        assert str(lock) in line and seconds < 30
        # Nor is a run's OUT reported while it is written.
        report = sftforge(["report", str(out)], home)
        assert first.poll() is None, "the first run ended before the report was refused"
        assert f"a run is writing it (pid {holder['pid']}" in one_line(report, 2)
        stdout, stderr = first.communicate(timeout=600)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, 9)
            first.wait()
    assert first.returncode == 0, stderr
    # The first run is whole (its manifest counts its files: every line of its input read),
    # and nothing of the refused run's input got in.
    read = check_out(out)["stages"][0]["in"]  # its input, and the demo recipe's saved pages
    sample = len((REPO / "data" / "sharegpt_sample.jsonl").read_text().splitlines())
    assert read == len(busy.read_text().splitlines()) + check_out(clean)["stages"][0]["in"] - sample
    assert not lock.exists()


@pytest.mark.slow
def test_lock_of_another_host_is_refused(tmp_path, home):
    out = tmp_path / "out"
    lock = out_lock.lock_path(out)
    lock.parent.mkdir(parents=True)
    lock.write_text(json.dumps({"pid": 1, "host": "elsewhere", "started": "2026-01-01T00:00"}))
    line = one_line(sftforge(["run", DEMO, "--out", str(out), "--quiet"], home), 2)
    assert "in use by pid 1 on host elsewhere since 2026-01-01T00:00" in line
    assert lock.exists()  # not ours to remove


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@pytest.mark.slow
def test_stale_lock_taken_over_then_a_failed_rerun_leaves_no_manifest(tmp_path, home, clean):
    out = tmp_path / "out"
    lock = out_lock.lock_path(out)
    lock.parent.mkdir(parents=True)
    pid = _dead_pid()
    lock.write_text(json.dumps({"pid": pid, "host": socket.gethostname(), "started": "x"}))
    done = sftforge(["run", DEMO, "--out", str(out), "--quiet"], home)
    assert done.returncode == 0, done.stderr
    assert f"took over the lock of pid {pid} (since x), which is no longer running" in done.stderr
    assert not lock.exists() and outputs(out) == outputs(clean)
    old_manifest = (out / "manifest.json").read_bytes()

    # A rerun on another input that fails at its end: every stage rewritten, then an export
    # that cannot be written (a folder where its file goes).
    (out / "export" / "sharegpt.json").unlink()
    (out / "export" / "sharegpt.json").mkdir()
    other = small_input(tmp_path)
    failed = sftforge(
        ["run", DEMO, "--input", f"sharegpt={other}", "--out", str(out), "--quiet"], home
    )
    line = one_line(failed, 1)
    assert (
        line.startswith("sftforge: run failed: stage write outputs: ") and "sharegpt.json" in line
    )
    assert not (out / "manifest.json").exists()  # the old run's is gone, and no new one
    assert not (out / "README.md").exists()  # nor its dataset card (datasets follows it)

    dry = tmp_path / "dry"
    for command in (
        ["report", str(out)],
        ["push", str(out), "--repo-id", "a/b", "--dry-run", str(dry)],
    ):
        assert "no manifest.json" in one_line(sftforge(command, home), 2)
    assert not (out / "report.html").exists() and not dry.exists()

    # The old manifest beside the new parts (as an sftforge before this fix left it, or a copy
    # by hand): report and push refuse it, naming a stage whose counts differ.
    (out / "manifest.json").write_bytes(old_manifest)
    for command in (
        ["report", str(out)],
        ["push", str(out), "--repo-id", "a/b", "--dry-run", str(dry)],
    ):
        line = one_line(sftforge(command, home), 2)
        assert "manifest.json does not match the files (stage read: manifest says" in line, line
        assert line.endswith("; rerun the recipe")
    assert not (out / "report.html").exists() and not dry.exists()


def _one_stage(stage: str) -> str:
    head = '"recipe": "d", "kind": "conversation", "config_hash": "x", "shards": 1'
    return f'{{{head}, "stages": [{{{stage}, "rejected": {{}}, "seconds": 1}}]}}'


@pytest.mark.parametrize(
    "manifest, says",
    [
        ('{"recipe": "demo", "stages": [', "not a readable manifest"),
        ('["not", "an", "object"]', "not a JSON object"),
        ('{"recipe": 7, "kind": "conversation", "config_hash": "x"}', "'recipe' is missing"),
        (_one_stage('"name": "read", "in": "3", "out": 3'), "stage read: 'in' is not a count"),
        (_one_stage('"name": "../x", "in": 3, "out": 3'), "is not a folder name"),
    ],
)
def test_report_on_a_broken_manifest_is_one_line(tmp_path, home, manifest, says):
    (tmp_path / "manifest.json").write_text(manifest)
    line = one_line(sftforge(["report", str(tmp_path)], home), 2)
    assert f"{tmp_path / 'manifest.json'}: " in line and says in line, line


# ---------------------------------------------------------------- a full disk


def _disk_bytes(folder: Path) -> int:
    """What `folder`'s files take on a tmpfs (whole 4 KiB pages)."""
    return sum(-(-p.stat().st_size // 4096) * 4096 for p in folder.rglob("*") if p.is_file())


@pytest.mark.slow
def test_full_disk_is_one_line_and_the_rerun_matches(tmp_path, home, clean):
    """A tmpfs with room for every stage but not the exports: the run fails at `write
    outputs` in one line naming a file there; given room, the rerun completes, identical to
    an uninterrupted run."""
    disk = tmp_path / "disk"
    disk.mkdir()
    exports = _disk_bytes(clean / "export")
    room = _disk_bytes(clean) - exports + exports // 2
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={room // 1024}k", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        out = disk / "out"
        args = ["run", DEMO, "--out", str(out), "--quiet"]
        line = one_line(sftforge(args, home), 1)
        assert line.startswith(
            f"sftforge: run failed: stage write outputs: no space left on device writing {out}/"
        ), line
        assert not (out / "manifest.json").exists() and not out_lock.lock_path(out).exists()

        subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
        rerun = sftforge(args, home)
        assert rerun.returncode == 0, rerun.stderr
        assert outputs(out) == outputs(clean)
        assert not list(out.rglob("*.tmp"))
        check_out(out)
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def test_a_full_disk_in_a_worker_names_the_part_it_was_writing(tmp_path):
    """Arrow's and write()'s ENOSPC carry no file name; the worker's error must (the run's
    one line names it, and only the exception crosses the process boundary)."""
    import pickle

    import pyarrow as pa

    from sftforge.tasks.base.atomic import write_bytes_atomic
    from sftforge.tasks.base.shards import write_table_atomic

    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)]).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        table = pa.table({"a": [os.urandom(500).hex() for _ in range(2000)]})
        for write, target in (
            (lambda p: write_table_atomic(table, p), disk / "s" / "part-00000.parquet"),
            (lambda p: write_bytes_atomic(p, b"x" * 200_000), disk / "export" / "x.json"),
        ):
            with pytest.raises(OSError) as info:
                write(target)
            error = pickle.loads(pickle.dumps(info.value))
            assert error.errno == 28 and error.filename == str(target)
    finally:
        subprocess.run(["umount", str(disk)], check=False)
