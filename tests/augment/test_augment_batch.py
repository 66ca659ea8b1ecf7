"""mode: batch -- rounds submitted to llmock's Batch API; expired batches; crash recovery."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from augment_support import fast_config, make_records
from llmock.routers import batch as llmock_batch

from sftforge.tasks.steps.augment import augment_records
from sftforge.tasks.steps.augment.journal import Journal


@pytest.fixture
def batch_server(start_server, api_env, monkeypatch):
    """An echo server whose batches finish in 50 ms (and whose batch store starts empty)."""
    monkeypatch.setattr(llmock_batch, "_BATCH_DELAY", 0.05)
    monkeypatch.setenv("LLMOCK_RESPONSE_STYLE", "echo")  # what batch lines are answered with
    monkeypatch.setattr(llmock_batch, "_batches", {})
    monkeypatch.setattr(llmock_batch, "_files", {})
    server = start_server()
    api_env(server)
    return server


def batch_config(**overrides):
    return fast_config(mode="batch", batch_poll_seconds=0.02, **overrides)


def submitted_keys() -> list[list[str]]:
    """custom_ids of every batch llmock received, oldest first."""
    out = []
    for batch in sorted(llmock_batch._batches.values(), key=lambda b: b["created_at"]):
        content = llmock_batch._files[batch["input_file_id"]]["content"]
        out.append([json.loads(line)["custom_id"] for line in content.splitlines()])
    return out


def test_batch_rounds_match_the_online_run(batch_server, tmp_path: Path) -> None:
    records = make_records(8)
    out = augment_records(records, batch_config(), tmp_path / "batch.sqlite")
    assert all(r["status"] == "done" for r in out)
    assert {r["iteration"] for r in out} == {1, 5}
    rounds = submitted_keys()
    # answer, feedback, then revision/feedback rounds for the four records that go on.
    assert [len(keys) for keys in rounds][:2] == [8, 8]
    assert len(rounds) <= 10 and all(len(keys) <= 8 for keys in rounds)
    flat = [key for keys in rounds for key in keys]
    assert len(flat) == len(set(flat))  # no call submitted twice

    # The same chains online (the echo server answers both alike), from a fresh journal ...
    online = augment_records(records, fast_config(), tmp_path / "online.sqlite")
    strip = [{k: v for k, v in r.items() if k != "usage"} for r in out]
    assert strip == [{k: v for k, v in r.items() if k != "usage"} for r in online]
    # ... and from the batch run's journal: nothing is sent at all.
    before = len(batch_server.state.journal.records(wait=2.0))
    again = augment_records(records, fast_config(), tmp_path / "batch.sqlite")
    assert again == out and len(batch_server.state.journal.records(wait=2.0)) == before


def test_batch_price_is_discounted(batch_server, tmp_path: Path) -> None:
    prices = {"gpt-3.5-turbo": {"input": 10.0, "output": 10.0}}
    (out,) = augment_records(make_records(1), batch_config(prices=prices), tmp_path / "j.sqlite")
    usage = out["usage"]
    full = (usage["prompt_tokens"] + usage["completion_tokens"]) * 10.0 / 1_000_000
    assert usage["cost"] == pytest.approx(full / 2)


def test_an_expired_batch_keeps_its_results_and_resubmits_only_the_rest(
    batch_server, tmp_path: Path, monkeypatch
) -> None:
    original = llmock_batch._finish_openai_like
    expired: list[str] = []

    def expire_first(batch: dict) -> None:
        """The first batch expires after answering half of its lines."""
        if expired and expired[0] != batch["id"]:
            return original(batch)
        expired.append(batch["id"])
        lines = llmock_batch._files[batch["input_file_id"]]["content"].splitlines()
        half = lines[: len(lines) // 2]
        results = [
            json.dumps(
                llmock_batch._process_line(
                    line, provider="openai", default_endpoint=batch["endpoint"]
                )
            )
            for line in half
        ]
        batch["output_file_id"] = llmock_batch._store_file(
            filename="out.jsonl",
            purpose="batch_output",
            content="\n".join(results),
            provider="openai",
        )["id"]
        batch.update(
            status="expired",
            expired_at=llmock_batch._now(),
            done=True,
            request_counts={"total": len(lines), "completed": len(half), "failed": 0},
        )

    monkeypatch.setattr(llmock_batch, "_finish_openai_like", expire_first)
    records = make_records(6, stop_every=1)
    out = augment_records(records, batch_config(), tmp_path / "j.sqlite")
    assert all(r["status"] == "done" for r in out)
    rounds = submitted_keys()
    first, second = rounds[0], rounds[1]
    assert len(first) == 6 and len(second) == 3  # only the unanswered half went again
    assert set(second) < set(first)
    assert all(len(set(keys) & set(first)) == 0 for keys in rounds[2:])


def test_a_crash_between_create_and_journal_finds_the_batch_again(
    batch_server, tmp_path: Path, monkeypatch
) -> None:
    """Killed after batches.create but before its id reached the journal: the rerun finds
    the batch by the tag in its metadata and collects it instead of submitting again."""
    records = make_records(4, stop_every=1)
    journal = tmp_path / "j.sqlite"
    original = Journal.update_batch

    class Crash(Exception):
        pass

    def crash_on_batch_id(self, tag, *, file_id=None, batch_id=None):
        if batch_id is not None:
            raise Crash("killed")
        return original(self, tag, file_id=file_id, batch_id=batch_id)

    monkeypatch.setattr(Journal, "update_batch", crash_on_batch_id)
    out = augment_records(records, batch_config(), journal)
    assert all(r["status"] == "failed" and "killed" in r["error"] for r in out)
    assert len(llmock_batch._batches) == 1
    with Journal(journal) as j:
        (intent,) = j.open_batches()
        assert intent.batch_id is None and intent.file_id is not None

    monkeypatch.setattr(Journal, "update_batch", original)
    out = augment_records(records, batch_config(), journal)
    assert all(r["status"] == "done" for r in out)
    rounds = submitted_keys()
    assert len(rounds) == 2  # the lost batch (answers), then the feedback round
    assert sorted(rounds[0]) == sorted(intent.keys)
    with Journal(journal) as j:
        assert j.open_batches() == []
