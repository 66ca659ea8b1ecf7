"""The embed step: texts, vector decoding, the journal, the vector files, and `sftforge run`
against a real local embeddings server (tests/embedding_server.py), including SIGKILL."""

from __future__ import annotations

import base64
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from embedding_server import EmbeddingServer, bag_of_words

from sftforge.tasks.base.step_protocol import StepContext
from sftforge.tasks.steps.embed.calls import decode_vectors, fit_text
from sftforge.tasks.steps.embed.step import EmbedStep, record_text
from sftforge.tasks.steps.embed.vectors import read_vectors

SFTFORGE = str(Path(sys.executable).parent / "sftforge")
CONVERSATION = {
    "id": "c1",
    "messages": [
        {"role": "user", "content": "How do I sort a list?"},
        {"role": "assistant", "content": "Use sorted()."},
        {"role": "user", "content": "And in reverse?"},
    ],
}


def conversations(n: int, prefix: str = "question") -> list[dict[str, Any]]:
    return [
        {
            "id": f"r{i:04d}",
            "messages": [
                {"role": "user", "content": f"{prefix} number {i} about topic {i % 7}"},
                {"role": "assistant", "content": f"answer {i}"},
            ],
        }
        for i in range(n)
    ]


def runner_for(server: EmbeddingServer, root: Path, **options: Any) -> Any:
    os.environ["OPENAI_BASE_URL"] = server.base_url
    os.environ["OPENAI_API_KEY"] = "sk-test-embeddings-0123456789"
    step = EmbedStep(step="embed", dimensions=32, ramp_seconds=0, **options)
    context = StepContext(work_dir=root / ".sftforge" / "embed" / "embed", out_dir=root)
    return step.make_batch(context)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with EmbeddingServer() as running:
        yield running


# -------------------------------------------------------------------------- plain functions


def test_the_embedded_text_follows_the_scope() -> None:
    assert record_text(CONVERSATION, "first_user") == "How do I sort a list?"
    assert record_text(CONVERSATION, "user") == "How do I sort a list?\nAnd in reverse?"
    assert record_text(CONVERSATION, "all").count("\n") == 2
    instruction = {"instruction": "Add the numbers.", "input": "2 and 3", "output": "5"}
    assert record_text(instruction, "first_user") == "Add the numbers.\n2 and 3"
    assert record_text(instruction, "all") == "Add the numbers.\n2 and 3\n5"


def test_vectors_are_decoded_from_base64_and_from_float_lists_in_input_order() -> None:
    a, b = np.array([0.5, -1.25], np.float32), np.array([3.0, 0.0], np.float32)
    body = {
        "data": [
            {"index": 1, "embedding": b.tolist()},
            {"index": 0, "embedding": base64.b64encode(a.astype("<f4").tobytes()).decode()},
        ]
    }
    first, second = decode_vectors(json.dumps(body), 2)
    assert first.tolist() == a.tolist() and second.tolist() == b.tolist()
    assert first.dtype == np.float32
    with pytest.raises(ValueError, match="1 vectors for 2 inputs"):
        decode_vectors(json.dumps({"data": body["data"][:1]}), 2)


def test_long_texts_are_cut_to_the_input_limit_and_short_ones_kept() -> None:
    count = lambda text: len(text.split())  # noqa: E731
    text = " ".join(f"w{i}" for i in range(1000))
    cut, was_cut = fit_text(count, text, 100)
    assert was_cut and count(cut) <= 100 and text.startswith(cut) and count(cut) > 80
    assert fit_text(count, "two words", 100) == ("two words", False)


# ------------------------------------------------------------------ the runner, in process


def test_each_record_gets_its_texts_vector_and_a_rerun_sends_nothing(server, tmp_path) -> None:
    records = conversations(10)
    runner = runner_for(server, tmp_path, batch_size=4)
    runner.start_shard(0)
    out, complete = runner.apply_batch(records)
    assert out == records and complete
    assert runner.summarize(out)["embedded"] == 10 and runner.summarize(out)["calls_sent"] == 3
    ids, vectors = read_vectors(tmp_path, "embed")
    assert ids == [r["id"] for r in records] and vectors.shape == (10, 32)
    expected = bag_of_words(records[3]["messages"][0]["content"], 32)
    assert np.allclose(vectors[3], expected)
    assert all(len(r["input"]) <= 4 and r["dimensions"] == 32 for r in server.requests)

    sent = len(server.requests)
    again = runner_for(server, tmp_path, batch_size=4)
    again.start_shard(0)
    again.apply_batch(records)
    assert len(server.requests) == sent  # every request answered by the journal
    assert again.summarize(records)["calls_cached"] == 3


def test_retryable_failures_are_retried_and_a_bad_request_leaves_the_shard_incomplete(
    server, tmp_path
) -> None:
    server.fail_next(2, 503)
    runner = runner_for(server, tmp_path, batch_size=5, backoff_base_seconds=0.01)
    runner.start_shard(0)
    _, complete = runner.apply_batch(conversations(10))
    assert complete and runner.summarize([])["embedded"] == 10

    server.fail_containing = "poison"
    bad = runner_for(server, tmp_path, batch_size=5)
    bad.start_shard(1)
    records = conversations(10, prefix="poison")[:5] + conversations(10)[5:]
    _, complete = bad.apply_batch(records)
    summary = bad.summarize(records)
    assert not complete and summary["failed"] == 5 and summary["embedded"] == 5
    assert "400" in next(iter(summary["errors"]))
    ids, _ = read_vectors(tmp_path, "embed")
    assert [i for i in ids if i in {"r0000", "r0005"}] == ["r0000", "r0005", "r0005"]
    verdict = bad.verdict(EmbedStep.combine_summaries([summary]))
    assert verdict is None  # 5 of 10: below the default share (every record)
    strict = EmbedStep(step="embed", fail_at_failed_share=0.5)
    assert "5 of 10 records got no vector" in strict.make_batch(
        StepContext(work_dir=tmp_path / "x", out_dir=tmp_path)
    ).verdict(EmbedStep.combine_summaries([summary]))


# ------------------------------------------------------------------------ `sftforge run`


def write_recipe(root: Path, records: list[dict[str, Any]], **embed: Any) -> Path:
    data = root / "dump.jsonl"
    with data.open("w") as handle:
        for record in records:
            turns = [{"from": "human" if m["role"] == "user" else "gpt", "value": m["content"]}
                     for m in record["messages"]]  # fmt: skip
            handle.write(json.dumps({"id": record["id"], "conversations": turns}) + "\n")
    step = {"step": "embed", "dimensions": 16, "batch_size": 4, "ramp_seconds": 0, **embed}
    recipe = {
        "name": "embed",
        "output_dir": str(root / "out"),
        "sources": [{"name": "dump", "format": "sharegpt", "path": str(data)}],
        "steps": [step],
        "outputs": [{"format": "parquet"}],
        "runner": {"shard_size": 8, "workers": 1},
    }
    path = root / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def sftforge(recipe: Path, server: EmbeddingServer, home: Path, **popen: Any) -> Any:
    env = {**os.environ, "OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "sk-x-0123456789"}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    env.pop("PREFECT_API_URL", None)
    command = [SFTFORGE, "run", str(recipe), "--quiet"]
    if popen:
        return subprocess.Popen(command, env=env, text=True, **popen)
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


def done_requests(journal: Path) -> set[str]:
    with sqlite3.connect(journal) as db:
        rows = db.execute("SELECT request FROM calls WHERE status = 'done'").fetchall()
    return {json.dumps(json.loads(r)["input"]) for (r,) in rows}


def test_a_run_writes_every_records_vector_and_its_counts_and_a_rerun_pays_nothing(
    server, tmp_path
) -> None:
    records = conversations(30)
    recipe = write_recipe(tmp_path, records)
    first = sftforge(recipe, server, tmp_path / "prefect")
    assert first.returncode == 0, first.stderr
    out = tmp_path / "out"
    ids, vectors = read_vectors(out, "embed")
    assert sorted(ids) == sorted(r["id"] for r in records) and vectors.shape == (30, 16)
    assert len(pq.read_table(out / "embed" / "part-00000.parquet")) == 8  # records unchanged
    manifest = json.loads((out / "manifest.json").read_text())
    (stage,) = [s for s in manifest["stages"] if s["name"] == "embed"]
    summary = stage["embed"]
    assert summary["embedded"] == 30 and summary["dimensions"] == 16
    assert summary["calls_sent"] == len(server.embedding_requests()) == 8  # 4 shards x 2

    sent = len(server.requests)
    second = sftforge(recipe, server, tmp_path / "prefect")
    assert second.returncode == 0, second.stderr
    assert len(server.requests) == sent
    assert read_vectors(out, "embed")[0] == ids


def test_after_a_sigkill_mid_run_the_rerun_sends_no_journaled_request_again(
    server, tmp_path
) -> None:
    records = conversations(48)
    recipe = write_recipe(tmp_path, records, concurrency=1)
    server.delay_seconds = 0.25
    child = sftforge(recipe, server, tmp_path / "prefect", stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 120
    journal = tmp_path / "out" / ".sftforge" / "embed" / "embed" / "journal.sqlite"
    while time.monotonic() < deadline and len(server.embedding_requests()) < 5:
        time.sleep(0.05)
    os.killpg(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    paid = done_requests(journal)
    assert 3 <= len(paid) < 12, "killed mid-run"
    before = len(server.requests)
    server.delay_seconds = 0
    rerun = sftforge(recipe, server, tmp_path / "prefect")
    assert rerun.returncode == 0, rerun.stderr
    resent = {json.dumps(r["input"]) for r in server.requests[before:]}
    assert resent and not resent & paid  # the rest was sent, nothing paid for twice
    assert len(paid) + len(resent) >= 12  # 6 shards x 2 requests, each paid once or journaled
    ids, _ = read_vectors(tmp_path / "out", "embed")
    assert sorted(ids) == sorted(r["id"] for r in records)


# ------------------------------------------------------------------ `local_model` (an extra)


def test_a_local_model_without_the_extra_is_one_line_and_exit_2(tmp_path, capsys) -> None:
    from sftforge.flows.cli import main

    model = "sentence-transformers/all-MiniLM-L6-v2"
    recipe = write_recipe(tmp_path, conversations(3), local_model=model)
    assert main(["validate", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(
        "sftforge: local_model sentence-transformers/all-MiniLM-L6-v2 needs the "
        "'embeddings-local' extra: pip install 'sftforge[embeddings-local]' "
        "(cannot import sentence_transformers)"
    ), err


def test_a_local_model_is_loaded_once_and_asked_in_batches(monkeypatch, tmp_path) -> None:
    """The wiring to sentence-transformers' API (SentenceTransformer(name, device=...),
    .encode(texts, batch_size=..., convert_to_numpy=True)), with a stand-in for the library:
    no model can be downloaded here."""
    import types

    from sftforge.tasks.steps.embed import calls

    made: list[tuple[str, str]] = []
    batches: list[int] = []

    class SentenceTransformer:
        def __init__(self, name: str, device: str) -> None:
            made.append((name, device))

        def encode(self, texts: list[str], batch_size: int, **options: Any) -> np.ndarray:
            assert options == {"convert_to_numpy": True, "show_progress_bar": False}
            batches.append(batch_size)
            return np.stack([bag_of_words(t, 8).astype(np.float64) for t in texts])

    library = types.ModuleType("sentence_transformers")
    library.SentenceTransformer = SentenceTransformer  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sentence_transformers", library)
    calls._local_model.cache_clear()
    step = EmbedStep(step="embed", local_model="/models/minilm", dimensions=4, batch_size=2)
    runner = step.make_batch(StepContext(work_dir=tmp_path / "w", out_dir=tmp_path))
    for shard in (0, 1):
        runner.start_shard(shard)
        assert runner.apply_batch(conversations(3))[1]
    ids, vectors = read_vectors(tmp_path, "embed")
    assert made == [("/models/minilm", "cpu")] and batches == [2, 2]
    assert len(ids) == 6 and vectors.shape == (6, 4) and vectors.dtype == np.float32
    expected = bag_of_words(conversations(3)[1]["messages"][0]["content"], 8)[:4]
    assert np.allclose(vectors[1], expected)
    assert not (tmp_path / "w" / "journal.sqlite").exists()  # nothing sent, nothing journaled
    calls._local_model.cache_clear()
