"""max_cost stops a run cleanly; the ledger covers earlier runs; raising it resumes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from augment_support import fast_config, make_records

from sftforge.tasks.steps.augment import augment_records
from sftforge.tasks.steps.augment.journal import Journal

# Ten dollars per million tokens both ways; a call here is ~100-300 tokens: ~$0.001-0.003.
PRICES = {"gpt-3.5-turbo": {"input": 10.0, "output": 10.0}}


def test_max_cost_stops_cleanly_and_a_higher_one_resumes(
    start_server, api_env, tmp_path: Path
) -> None:
    server = start_server()
    api_env(server)
    journal = tmp_path / "j.sqlite"
    records = make_records(20, stop_every=1)
    progress: list[dict] = []
    config = fast_config(prices=PRICES, max_cost=0.02, concurrency=4)
    out = augment_records(records, config, journal, on_progress=progress.append)

    assert len(out) == len(records)  # every record comes back
    done = [r for r in out if r["status"] == "done"]
    stopped = [r for r in out if r["status"] == "failed"]
    assert done and stopped
    assert all("max_cost" in r["error"] for r in stopped)
    with Journal(journal) as j:
        spent = j.spent()
        assert 0 < spent <= 0.02
        assert "started" not in j.counts()  # calls in flight were finished and saved
    assert progress[-1]["stopped"].startswith("max_cost")
    assert sum(r["usage"]["cost"] for r in done) <= spent + 1e-9
    sent_first = len(server.state.journal.records(wait=2.0))

    # The budget counts what the journal already spent: rerunning with the same max_cost
    # only uses what the first run held back for calls in flight, never a second budget.
    again = augment_records(records, config, journal)
    assert len(server.state.journal.records(wait=2.0)) - sent_first <= 4
    assert any(r["status"] == "failed" for r in again)
    with Journal(journal) as j:
        assert j.spent() <= 0.02

    # Raising it finishes the rest without paying again for what was done.
    out = augment_records(records, fast_config(prices=PRICES, max_cost=1.0), journal)
    assert all(r["status"] == "done" for r in out)
    assert len(server.state.journal.records(wait=2.0)) == 2 * len(records)
    db = sqlite3.connect(journal)
    assert db.execute("SELECT COUNT(*) FROM calls WHERE status = 'done'").fetchone()[0] == 40


def test_usage_and_cost_per_record(start_server, api_env, tmp_path: Path) -> None:
    server = start_server()
    api_env(server)
    (out,) = augment_records(
        make_records(1, stop_every=1), fast_config(prices=PRICES), tmp_path / "j.sqlite"
    )
    usage = out["usage"]
    log = server.state.journal.records(wait=2.0)
    assert len(log) == 2
    expected = (usage["prompt_tokens"] + usage["completion_tokens"]) * 10.0 / 1_000_000
    assert abs(usage["cost"] - expected) < 1e-9 and usage["completion_tokens"] > 0


def test_progress_renders_live(start_server, api_env, tmp_path: Path) -> None:
    import io

    from rich.console import Console

    from sftforge.tasks.steps.augment.display import LiveProgress, render

    server = start_server()
    api_env(server)
    snapshots: list[dict] = []
    console = Console(file=io.StringIO(), force_terminal=True, width=120)
    with LiveProgress(console) as live:

        def both(snapshot: dict) -> None:
            snapshots.append(snapshot)
            live(snapshot)

        augment_records(make_records(4), fast_config(prices=PRICES), tmp_path / "j.sqlite", both)
    text = console.file.getvalue()
    assert "4 done, 0 failed of 4" in text and "pairs per record" in text
    final = snapshots[-1]
    assert final["iterations"] == {1: 2, 5: 2} and final["cost"] > 0
    assert final["cost_projected"] == final["cost"]
    plain = Console(file=io.StringIO(), width=120)
    plain.print(render(final))
    assert "req/min" in plain.file.getvalue()
