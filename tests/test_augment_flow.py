"""The augment step inside a recipe run: fields written, manifest summary, no call paid twice
on a rerun, failed records kept and retried."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from sftforge.flows.recipe_flow import flow_for
from sftforge.tasks.pipeline.request import RunRequest

pytestmark = pytest.mark.usefixtures("prefect_harness")

REPO = Path(__file__).resolve().parents[1]
KEY = "sk-test-flow-0123456789abcdef0123456789abcdef"


def recipe(tmp_path: Path, **augment) -> Path:
    rows = [{"instruction": f"Write a haiku about the number {i}.", "input": "", "output": ""}
            for i in range(6)]
    data = tmp_path / "in.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = {
        "name": "aug", "output_dir": str(tmp_path / "out"), "seed": 1,
        "sources": [{"name": "alpaca", "format": "hf", "path": str(data),
                     "mapping": {"instruction": "{instruction}", "input": "{input}"}}],
        "steps": [{"step": "augment", "preset": "selfee", "rpm": 60000, "tpm": 10000000,
                   "ramp_seconds": 0, "max_iterations": 2, "concurrency": 4,
                   "backoff_base_seconds": 0.05, "backoff_max_seconds": 0.2, "max_attempts": 2,
                   "max_tokens": {"answer": 32, "feedback": 16, "revision": 32}, **augment}],
        "outputs": [{"format": "parquet"}, {"format": "jsonl", "name": "augmented"}],
        "runner": {"shard_size": 4, "workers": 1},
    }
    path = tmp_path / "aug.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def served(server) -> int:
    return sum(1 for r in server.state.journal.records(wait=1.0) if r.status == 200)


@pytest.fixture
def server(monkeypatch):
    from llmock.testing import LLMockServer

    srv = LLMockServer()
    srv.start()
    monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url("openai"))
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    yield srv
    srv.stop()


def test_augment_step_in_a_recipe(tmp_path, server):
    path = recipe(tmp_path)
    body = flow_for(1)(request=RunRequest(recipe_path=str(path)), quiet=True)
    stage = body["stages"][-1]
    assert stage["name"] == "augment" and stage["in"] == stage["out"] == 6
    assert stage["augment"]["iterations"] == {"2": 6} and stage["augment"]["failed"] == 0
    assert stage["augment"]["prompt_tokens"] > 0 and stage["augment"]["cost"] > 0
    rows = [r for p in sorted((tmp_path / "out" / "dataset").glob("*.parquet"))
            for r in pq.read_table(p).to_pylist()]
    assert all(r["status"] == "done" and len(r["outputs"]) == 2 and r["iteration_truncated"]
               for r in rows)
    calls = served(server)
    assert calls == 6 * 4  # answer, feedback, revision, feedback
    # A rerun pays for nothing: every shard is done, and the journal has every call.
    flow_for(1)(request=RunRequest(recipe_path=str(path)), quiet=True)
    assert served(server) == calls
    written = "".join(p.read_text(errors="ignore") for p in (tmp_path / "out").rglob("*")
                      if p.is_file() and p.suffix in (".json", ".jsonl", ".yaml"))
    assert KEY not in written


def test_failed_records_are_kept_and_retried(tmp_path, server, monkeypatch):
    # Failures tolerated (the default fails a run where every record failed, #12).
    path = recipe(tmp_path, fail_at_failed_share=None)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens there
    body = flow_for(1)(request=RunRequest(recipe_path=str(path)), quiet=True)
    stage = body["stages"][-1]
    assert stage["out"] == 6 and stage["augment"]["failed"] == 6  # kept, not dropped
    markers = list((tmp_path / "out" / ".sftforge" / "state" / "augment").glob("*.json"))
    assert markers == []  # not done: the next run retries them
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url("openai"))
    body = flow_for(1)(request=RunRequest(recipe_path=str(path)), quiet=True)
    assert body["stages"][-1]["augment"]["failed"] == 0


def test_augment_status_line_reaches_the_stage_progress(capsys):
    from sftforge.flows.progress import StageProgress
    from sftforge.tasks.steps.augment.display import status_line

    snapshot = {
        "records_done": 3, "records_failed": 1, "records_total": 6, "records_from_journal": 0,
        "calls_sent": 9, "calls_cached": 2, "calls_in_flight": 4, "calls_failed": 1,
        "retries": 1, "rate_limited": 1, "requests_per_min": 480.0, "rpm_limit": 500.0,
        "tokens_per_min": 61000.0, "tpm_limit": 90000.0, "prompt_tokens": 1200,
        "completion_tokens": 300, "cost": 0.0123, "cost_projected": 0.0456,
        "iterations": {"1": 2, "5": 1},
    }
    line = status_line(snapshot)
    assert "3 done" in line and "1 failed" in line and "4 in flight" in line
    assert "480/500 req/min" in line and "61000/90000 tok/min" in line
    assert "$0.0123 (proj $0.0456)" in line and "pairs 1:2,5:1" in line
    with StageProgress(quiet=False, plain_every=0.0) as progress:
        progress.start("augment", 6)
        progress.detail(line)
    assert f"[augment] {line}" in capsys.readouterr().err
