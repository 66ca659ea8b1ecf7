"""Progress: a live bar per stage on a terminal (records, rate, ETA), plain lines in logs,
nothing with --quiet; stages that run as one task report as their shards finish."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import select
import subprocess
import time
from pathlib import Path

import pytest
from ops_support import SFTFORGE, base_env
from rich.console import Console

import sftforge.flows.progress as progress
from sftforge.flows.progress import StageProgress
from sftforge.flows.watches import InputPosition, MarkerCount, marker_watch, read_watch
from tests.conftest import REPO

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07")
LONG = "html_to_markdown+check_structure+filter_blocked_words"


class Clock:
    """A clock the test moves: rates and ETAs without sleeping."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_plain_lines_count_records_with_rate_and_eta(capsys):
    clock = Clock()
    with StageProgress(console=Console(file=io.StringIO()), plain_every=0, clock=clock) as bar:
        bar.start("filter_language", 300)
        clock.now += 2
        bar.advance(100)
        clock.now += 2
        bar.advance(100)
        bar.finish(300)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "[filter_language] 100/300 records, 50 rec/s, ETA 4 s"
    assert lines[1] == "[filter_language] 200/300 records, 50 rec/s, ETA 2 s"
    assert lines[-1] == "[filter_language] 300 records in 4.0 s (75 rec/s)"


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
    clock = Clock()
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=140)
    with StageProgress(console=console, clock=clock) as bar:
        bar.start("html_to_markdown+check_structure", 1000)
        clock.now += 1
        bar.advance(250)
        clock.now += 1
        bar.advance(250)
        console.print(bar.view)  # what the live display shows now
    text = ANSI.sub("", screen.getvalue())
    assert "html_to_markdown+check_structure ━" in text
    assert "500/1,000 250 rec/s ETA 0:00:02" in text
    assert "1,000/1,000 500 rec/s in 0:00:02" in text  # the stage's row once done


def screen_lines(raw: str) -> list[str]:
    """What a terminal shows, line by line: control sequences out, split at CR and LF."""
    return [piece for line in ANSI.sub("", raw).split("\n") for piece in line.split("\r")]


def ours(lines: list[str]) -> list[str]:
    """The lines sftforge draws: progress rows, their notes, the summary table."""
    marks = ("━", "rec/s", "shards reused", "│", "┃", "┏", "┡", "└")
    return [line for line in lines if any(mark in line for mark in marks)]


def test_rows_fit_80_columns_with_names_shortened_counts_and_bars_kept():
    clock = Clock()
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=80)
    with StageProgress(console=Console(file=io.StringIO()), clock=clock) as bar:
        bar.start("read", None)
        bar.finish(1_234_567)
        bar.start(LONG, 1_234_567, shards=124)
        clock.now += 10
        bar.advance(600_000)
        bar.detail("1,234 done · 0 failed · 17 in flight · 3000/3500 req/min · $1.2345 " * 3)
        console.print(bar.view)
    lines = [line for line in screen_lines(screen.getvalue()) if line.strip()]
    assert max(len(line) for line in lines) <= 80, lines
    assert lines[0].startswith("read ") and "1,234,567/1,234,567" in lines[0]
    row = lines[1]
    assert LONG not in row and re.match(r"html_to_markdown\S*… +━+ 600,000/1,234,567 ", row), row
    # 634,567 records left at 60,000 rec/s: ETA 11 s
    assert row.endswith("60,000 rec/s ETA 0:00:11"), row
    assert lines[2].startswith("  1,234 done") and lines[2].endswith("…")


def write_marker(state: Path, shard: int, fingerprint: str, n: int) -> None:
    state.mkdir(parents=True, exist_ok=True)
    tmp = state / f".part-{shard:05d}.tmp"
    tmp.write_text(json.dumps({"fingerprint": fingerprint, "in": n}))
    tmp.rename(state / f"part-{shard:05d}.json")


def test_a_watched_stage_reports_while_it_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(progress, "POLL_SECONDS", 0.02)
    state = tmp_path / "state" / "read"
    write_marker(state, 0, "old", 999)  # another input's marker: not counted
    write_marker(state, 7, "fp", 50)  # an earlier run's: reused
    assert marker_watch(state, "fp").reused == (50, 1)
    with StageProgress(console=Console(file=io.StringIO()), plain_every=0) as bar:
        bar.start("read", None, read_watch(state, "fp", []))
        for shard in range(3):  # the stage writes a marker per finished shard
            write_marker(state, shard, "fp", 100)
            deadline = time.monotonic() + 5
            while f"[read] {100 * (shard + 1) + 50} records" not in capsys.readouterr().err:
                assert time.monotonic() < deadline
                time.sleep(0.01)
        bar.finish(350)
    assert MarkerCount(state, "fp")() == 350


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


def run_demo(args: list[str], env: dict[str, str], tty: bool, columns: int = 80) -> tuple[int, str]:
    cmd = [SFTFORGE, "run", "configs/demo.yaml", *args]
    if not tty:
        result = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=180)
        return result.returncode, result.stderr
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        cmd,
        env={**env, "COLUMNS": str(columns), "TERM": "xterm"},
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
    """The real command: in an 80-column terminal, then rerun there (every shard reused), in
    a log, and quiet."""
    from prefect.settings import PREFECT_API_URL

    env = base_env(Path(os.environ["PREFECT_HOME"]), PREFECT_API_URL.value())
    common = ["--set", "runner.workers=1"]
    tty_out = tmp_path / "tty"
    code, screen = run_demo([*common, "--out", str(tty_out)], env, tty=True)
    assert code == 0, screen
    assert "rec/s" in screen and "ETA" in screen and "━" in screen  # rich's bars
    display = ours(screen_lines(screen))
    assert display and max(len(line) for line in display) <= 80, display
    # The map segment's name (52 characters) is cut; counts and the bar stay.
    shown = "\n".join(display)
    assert LONG not in shown and re.search(r"html_to_markdown\S*… +━+ 378/378 ", shown), shown
    assert re.search(r"read +━+ 404/404 ", shown)  # the estimate while reading: gone
    assert "filter_model+filter… ━" in shown  # 28 characters: a fifth of 80 columns is 20

    shards = json.loads((tty_out / "manifest.json").read_text())["shards"]
    code, screen = run_demo([*common, "--out", str(tty_out)], env, tty=True)  # the rerun
    assert code == 0, screen
    manifest = json.loads((tty_out / "manifest.json").read_text())
    assert shards > 1 and [s["reused_shards"] for s in manifest["stages"]] == [shards] * len(
        manifest["stages"]
    )
    lines = screen_lines(screen)
    assert max(len(line) for line in ours(lines)) <= 80
    reused = f"{shards}/{shards} shards reused"
    table = [line for line in lines if line.startswith("│ ")]
    assert "reused" in next(line for line in lines if line.startswith("┃ stage"))
    for stage in manifest["stages"]:  # the summary's row of each stage: its "reused" cell
        name = stage["name"] if len(stage["name"]) < 12 else stage["name"][:10]
        row = next(line for line in table if line.startswith(f"│ {name}"))
        assert row.endswith(f" {shards}/{shards} │"), row
    all_shards = len(manifest["stages"]) * shards
    caption = " ".join(ANSI.sub("", screen).split())  # the caption may wrap
    assert f"({all_shards}/{all_shards} shards reused)" in caption
    # the live rows too: each stage's counts, then what it reused (no rate of reused records)
    shown = "\n".join(ours(lines))
    assert re.search(rf"read +━+ 404/404 {reused}", shown), shown
    assert re.search(rf"dedup_exact +━+ 358/358 {reused}", shown), shown

    code, log = run_demo([*common, "--out", str(tmp_path / "log")], env, tty=False)
    assert code == 0, log
    lines = [line for line in log.splitlines() if line.startswith("[")]
    assert lines[0].startswith("[read] 404 records in ")
    assert any(line.startswith("[dedup_exact] 358 records in ") for line in lines)
    assert lines[-1].startswith("[write outputs] ")
    assert "\x1b[" not in log  # no terminal control codes in a log

    code, quiet = run_demo([*common, "--out", str(tty_out), "--quiet"], env, tty=False)
    assert code == 0 and quiet == ""
