"""Killed with SIGKILL mid-way, rerun: nothing finished is paid for twice, and the output is
the output of a run that never crashed. Ctrl-C finishes the calls in flight first."""

from __future__ import annotations

import collections
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from augment_support import SECRET_KEY, fast_config, make_records

from sftforge.tasks.steps.augment import augment_records
from sftforge.tasks.steps.augment.journal import canonical_json

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CONCURRENCY = 4


def content(body: dict) -> str:
    """A request as the journal stores it (the SDK sends exactly our keyword arguments)."""
    return canonical_json({k: body[k] for k in ("model", "messages", "temperature", "max_tokens")})


def ok_requests(server) -> collections.Counter[str]:
    return collections.Counter(
        content(r.body) for r in server.state.journal.records(wait=3.0) if r.status == 200
    )


def journal_rows(path: Path, status: str) -> collections.Counter[str]:
    db = sqlite3.connect(path)
    try:
        rows = db.execute("SELECT request FROM calls WHERE status = ?", (status,)).fetchall()
    finally:
        db.close()
    return collections.Counter(row[0] for row in rows)


def done_count(path: Path) -> int:
    if not path.exists():
        return 0
    db = sqlite3.connect(path, timeout=5)
    try:
        return db.execute("SELECT COUNT(*) FROM calls WHERE status = 'done'").fetchone()[0]
    except sqlite3.OperationalError:  # the child has not created the table yet
        return 0
    finally:
        db.close()


def start_child(tmp: Path, records: list[dict], config, journal: Path, server, tag: str):
    (tmp / "records.json").write_text(json.dumps(records), encoding="utf-8")
    (tmp / "config.json").write_text(config.model_dump_json(), encoding="utf-8")
    env = {
        **os.environ,
        "OPENAI_BASE_URL": server.base_url(),
        "OPENAI_API_KEY": SECRET_KEY,
        "PYTHONPATH": str(REPO),
    }
    return subprocess.Popen(
        [
            sys.executable,
            str(HERE / "augment_child.py"),
            str(tmp / "records.json"),
            str(tmp / "config.json"),
            str(journal),
            str(tmp / f"out-{tag}.json"),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_done(journal: Path, at_least: int, child, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while done_count(journal) < at_least:
        assert child.poll() is None, child.communicate()
        assert time.monotonic() < deadline, "the child made no progress"
        time.sleep(0.01)


def test_sigkill_then_rerun_pays_nothing_twice_and_matches(
    start_server, api_env, tmp_path: Path
) -> None:
    # Latency makes the run last long enough to be killed with calls in flight.
    server = start_server(latency_ms=30)
    api_env(server)
    records = make_records(10)
    config = fast_config(concurrency=CONCURRENCY)

    reference = augment_records(records, config, tmp_path / "reference.sqlite")
    expected = ok_requests(server)
    total = sum(expected.values())
    server.state.journal.clear()

    journal = tmp_path / "run.sqlite"
    child = start_child(tmp_path, records, config, journal, server, "1")
    wait_for_done(journal, total // 3, child)
    child.send_signal(signal.SIGKILL)
    child.communicate()
    assert child.returncode == -signal.SIGKILL
    done_before = journal_rows(journal, "done")
    in_flight = journal_rows(journal, "started")
    assert 0 < sum(done_before.values()) < total
    first_run = ok_requests(server)
    server.state.journal.clear()

    child = start_child(tmp_path, records, config, journal, server, "2")
    _, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    resumed = json.loads((tmp_path / "out-2.json").read_text(encoding="utf-8"))
    second_run = ok_requests(server)

    # The same output as the run that never crashed.
    assert resumed == json.loads(json.dumps(reference, sort_keys=True))
    # The rerun sent exactly what the journal did not have: nothing it had was sent again.
    for request, n in expected.items():
        assert second_run[request] == n - done_before[request], request[:120]
    assert set(second_run) <= set(expected)
    # Seen from the server: a request completed in the first run came again only if it was
    # still in flight for the client when it was killed (its answer never reached the
    # journal), and there are at most `concurrency` of those.
    resent = (first_run + second_run) - expected
    assert all(resent[r] <= in_flight[r] for r in resent)
    assert sum(resent.values()) <= CONCURRENCY
    assert not journal_rows(journal, "started")


def test_ctrl_c_finishes_calls_in_flight_and_says_how_to_resume(
    start_server, api_env, tmp_path: Path
) -> None:
    server = start_server(latency_ms=150)
    api_env(server)
    records = make_records(12)
    config = fast_config(concurrency=CONCURRENCY)
    journal = tmp_path / "run.sqlite"
    child = start_child(tmp_path, records, config, journal, server, "1")
    wait_for_done(journal, 4, child)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 130, err
    assert "rerun the same command to resume" in err
    # Every call that had been sent was finished and saved, none left half-done.
    assert not journal_rows(journal, "started")
    saved = sum(journal_rows(journal, "done").values())
    assert sum(1 for r in server.state.journal.records(wait=3.0) if r.status == 200) == saved
