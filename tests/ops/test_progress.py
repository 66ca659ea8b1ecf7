"""Progress: a live bar per stage on a terminal (records, rate, ETA), plain lines in logs,
nothing with --quiet; stages that run as one task report as their shards finish."""

from __future__ import annotations

import io
import json
import os
import pty
import select
import subprocess
import time
from pathlib import Path

import pytest
from ops_support import SFTFORGE, base_env
from rich.console import Console

import sftforge.flows.progress as progress
from sftforge.flows.progress import StageProgress
from sftforge.flows.watches import InputPosition, MarkerCount, read_watch
from tests.conftest import REPO


def test_plain_lines_count_records_with_rate_and_eta(capsys):
    with StageProgress(console=Console(file=io.StringIO()), plain_every=0) as bar:
        bar.start("filter_language", 300)
        bar.advance(100)
        bar.advance(100)
        bar.finish(300)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("[filter_language] 100/300 records, ") and "rec/s" in lines[0]
    assert "ETA" in lines[1] and lines[1].startswith("[filter_language] 200/300")
    assert lines[-1].startswith("[filter_language] 300 records in ")


def test_plain_lines_are_throttled_and_quiet_is_silent(capsys):
    with StageProgress(console=Console(file=io.StringIO()), plain_every=60) as bar:
        bar.start("read", None)
        for _ in range(50):
            bar.advance(10)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("[read] 500 records in ")  # at the end
    with StageProgress(quiet=True, console=Console(file=io.StringIO())) as bar:
        bar.start("read", 10)
        bar.advance(10)
    assert capsys.readouterr().err == ""


def test_terminal_bar_shows_records_rate_and_eta():
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=140)
    with StageProgress(console=console) as bar:
        bar.start("html_to_markdown+check_structure", 1000)
        bar.advance(250)
        time.sleep(0.2)
        bar.advance(250)
    text = screen.getvalue()
    assert "html_to_markdown+check_structure" in text
    assert "1000/1000" in text and "rec/s" in text and "ETA" in text


def write_marker(state: Path, shard: int, fingerprint: str, n: int) -> None:
    state.mkdir(parents=True, exist_ok=True)
    tmp = state / f".part-{shard:05d}.tmp"
    tmp.write_text(json.dumps({"fingerprint": fingerprint, "in": n}))
    tmp.rename(state / f"part-{shard:05d}.json")


def test_a_watched_stage_reports_while_it_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(progress, "POLL_SECONDS", 0.02)
    state = tmp_path / "state" / "read"
    write_marker(state, 0, "old", 999)  # another input's marker: not counted
    with StageProgress(console=Console(file=io.StringIO()), plain_every=0) as bar:
        bar.start("read", None, read_watch(state, "fp", []))
        for shard in range(3):  # the stage writes a marker per finished shard
            write_marker(state, shard, "fp", 100)
            deadline = time.monotonic() + 5
            while f"[read] {100 * (shard + 1)} records" not in capsys.readouterr().err:
                assert time.monotonic() < deadline
                time.sleep(0.01)
        bar.finish(300)
    assert MarkerCount(state, "fp")() == 300


@pytest.mark.skipif(not os.path.isdir("/proc/self/fdinfo"), reason="Linux /proc")
def test_input_position_follows_the_reader(tmp_path):
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_bytes(b"x" * 1000)
    second.write_bytes(b"y" * 3000)
    position = InputPosition([first, second])
    assert position() is None  # nothing open yet
    with second.open("rb", buffering=0) as fh:  # the kernel's offset, not read-ahead
        fh.read(1500)
        assert position() == pytest.approx((1000 + 1500) / 4000)


def run_demo(args: list[str], env: dict[str, str], tty: bool) -> tuple[int, str]:
    cmd = [SFTFORGE, "run", "configs/demo.yaml", *args]
    if not tty:
        result = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=180)
        return result.returncode, result.stderr
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        cmd,
        env={**env, "COLUMNS": "150", "TERM": "xterm"},
        cwd=REPO,
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        start_new_session=True,
    )
    os.close(terminal)
    chunks = []
    try:
        while True:
            ready, _, _ = select.select([controller], [], [], 1.0)
            if ready:
                try:
                    data = os.read(controller, 65536)
                except OSError:  # the terminal closed: the process is done
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        return proc.wait(60), b"".join(chunks).decode("utf-8", "replace")
    finally:
        os.close(controller)
        if proc.poll() is None:
            proc.kill()


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_sftforge_run_progress_in_a_terminal_in_a_log_and_quiet(tmp_path):
    from prefect.settings import PREFECT_API_URL

    env = base_env(Path(os.environ["PREFECT_HOME"]), PREFECT_API_URL.value())
    common = ["--set", "runner.workers=1"]
    code, screen = run_demo([*common, "--out", str(tmp_path / "tty")], env, tty=True)
    assert code == 0, screen
    assert "rec/s" in screen and "ETA" in screen and "━" in screen  # rich's bars
    assert "filter_model+filter_language" in screen

    code, log = run_demo([*common, "--out", str(tmp_path / "log")], env, tty=False)
    assert code == 0, log
    lines = [line for line in log.splitlines() if line.startswith("[")]
    assert lines[0].startswith("[read] 404 records in ")
    assert any(line.startswith("[dedup_exact] 358 records in ") for line in lines)
    assert lines[-1].startswith("[write outputs] ")
    assert "\x1b[" not in log  # no terminal control codes in a log

    code, quiet = run_demo([*common, "--out", str(tmp_path / "q"), "--quiet"], env, tty=False)
    assert code == 0 and quiet == ""
