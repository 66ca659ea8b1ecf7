"""`decontaminate` with `semantic:`: reworded benchmark questions found by embedding similarity
and an LLM judge, against a real local OpenAI-compatible server (tests/embedding_server.py:
hashed bag-of-words vectors, a judge that says yes when the two texts share most words, and
scripted answers), on the real Vicuna-80 questions shipped in data/benchmarks/."""

from __future__ import annotations

import json
import os
import pickle
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from embedding_server import EmbeddingServer
from pydantic import ValidationError

from sftforge.schemas.steps import step_class
from sftforge.tasks.base.outcome import Rejected
from sftforge.tasks.base.shards import records_table
from sftforge.tasks.base.step_protocol import StepContext
from sftforge.tasks.steps.semantic_check import JudgeOptions, parse_answer
from tests.conftest import REPO
from tests.helpers import conv

VICUNA = REPO / "data" / "benchmarks" / "vicuna80_questions.jsonl"
BENCHMARKS = [{"name": "vicuna80", "path": str(VICUNA), "text": "text", "id": "question_id"}]
PROMPT = "A: {benchmark}\n---\nB: {text}"  # the test judge compares the two halves' words
# Reworded Vicuna-80 questions 1-3: no exact match, too short for 13-grams.
PARAPHRASES = [
    "What can I do to improve my skills in time management?",
    "What are the most effective ways for dealing with stress and anxiety?",
    "Tell me the main differences between the JavaScript and Python programming languages.",
]
# As close to questions 1 and 2 by embedding, but other questions: the judge clears them.
LOOK_ALIKES = [
    "How can I improve my golf swing skills?",
    "What are the most effective ways to learn the guitar?",
]
UNRELATED = ["Write a haiku about autumn leaves.", "Please summarise this email for me."]
SFTFORGE = str(Path(sys.executable).parent / "sftforge")


def records() -> list[dict[str, Any]]:
    texts = PARAPHRASES + LOOK_ALIKES + UNRELATED
    return [conv(("user", t), ("assistant", "Sure."), id=f"r{i}") for i, t in enumerate(texts)]


def semantic_step(server: EmbeddingServer, judge: bool = True, **options: Any) -> Any:
    embedding = {"base_url": server.base_url, "dimensions": 256, "batch_size": 4}
    semantic: dict[str, Any] = {"embedding": {**embedding, "ramp_seconds": 0}, "threshold": 0.65}
    semantic["judge"] = {"model": "gpt-4o-mini", "prompt": PROMPT} if judge else None
    semantic.update(options)
    return step_class("decontaminate")(
        step="decontaminate", benchmarks=BENCHMARKS, semantic=semantic
    )


def run_pass(step: Any, rows: list[dict], work: Path) -> tuple[list[Any], dict[str, Any]]:
    """As the engine runs it: the pass pickled to a 'worker' to scan and judge, deciding here."""
    decision = step.make_pass(StepContext(work_dir=work), "conversation")
    worker = pickle.loads(pickle.dumps(decision))
    table = records_table(rows, "conversation")
    verdict = decision.decide(0, worker.scan(table), list(range(table.num_rows)))
    verdict = decision.finish([verdict], lambda shard: [r["id"] for r in rows])[0]
    rejected = pickle.loads(pickle.dumps(worker)).judge(table, verdict)
    return [rejected.get(i, r) for i, r in enumerate(rows)], decision.summarize(verdict)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-semantic-0123456789")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with EmbeddingServer() as running:
        running.scripted = {text: "No." for text in LOOK_ALIKES}
        yield running


def test_judge_answers_are_read_as_yes_no_or_unclear() -> None:
    assert [parse_answer(a) for a in ["Yes.", " no", "TRUE", "False!", "**Yes**"]] == [
        "yes", "no", "yes", "no", "yes"]  # fmt: skip
    assert parse_answer("Maybe, it depends") == parse_answer("") == "unclear"


def test_the_judge_prompt_must_hold_both_texts_and_nothing_else() -> None:
    with pytest.raises(ValidationError, match=r"needs \{benchmark\} and \{text\}"):
        JudgeOptions(prompt="Is this a benchmark question? {text}")
    with pytest.raises(ValidationError, match="and no other"):
        JudgeOptions(prompt="{benchmark} {text} {answer}")
    assert "{benchmark}" in JudgeOptions().prompt


def test_reworded_items_are_rejected_and_look_alikes_cleared_by_the_judge(
    server, tmp_path
) -> None:
    out, summary = run_pass(semantic_step(server), records(), tmp_path / "w")
    rejected = {i: r for i, r in enumerate(out) if isinstance(r, Rejected)}
    assert sorted(rejected) == [0, 1, 2]
    assert all(r.reason == "contaminated" for r in rejected.values())
    assert rejected[0].detail.startswith("vicuna80 item 1: semantic similarity 0.7")
    assert "(judge: yes) in message 0" in rejected[0].detail
    assert rejected[2].detail.startswith("vicuna80 item 3: ")
    semantic = summary["semantic"]
    assert summary["tests"] == {"exact": 0, "ngram": 0, "semantic": 3}
    assert summary["hits"] == {"vicuna80": 3}
    assert semantic["texts"] == 7 and semantic["pairs"] == 5 and semantic["judged"] == 5
    assert (semantic["yes"], semantic["no"], semantic["unclear"]) == (3, 2, 0)
    assert semantic["decided_by"].startswith("judge gpt-4o-mini")
    judged = [r for r in server.requests if "messages" in r]
    assert len(judged) == 5 and all(r["temperature"] == 0 for r in judged)


def test_without_a_judge_the_threshold_alone_decides(server, tmp_path) -> None:
    out, summary = run_pass(semantic_step(server, judge=False), records(), tmp_path / "w")
    assert [isinstance(r, Rejected) for r in out] == [True] * 5 + [False] * 2
    assert "(no judge)" in out[3].detail
    assert summary["semantic"]["decided_by"] == "similarity >= 0.65 (no judge)"
    assert not [r for r in server.requests if "messages" in r]


def test_an_exact_hit_is_not_asked_about_again_and_a_rerun_pays_nothing(server, tmp_path) -> None:
    rows = [*records(), conv(("user", json.loads(VICUNA.open().readline())["text"]), id="exact")]
    out, summary = run_pass(semantic_step(server), rows, tmp_path / "w")
    assert out[-1].detail.startswith("vicuna80 item 1: exact match")
    assert summary["semantic"]["texts"] == 7  # the exact hit's text was not embedded
    sent = len(server.requests)
    again, _ = run_pass(semantic_step(server), rows, tmp_path / "w")
    assert len(server.requests) == sent  # items, texts and judge answers: all journaled
    assert [getattr(r, "detail", None) for r in again] == [getattr(r, "detail", None) for r in out]


def test_texts_that_cannot_be_embedded_fail_the_check(server, tmp_path) -> None:
    server.fail_containing = "haiku"
    # 7 texts in requests of 4: the second request (3 texts) holds the haiku.
    with pytest.raises(RuntimeError, match="^3 texts could not be embedded: HTTP 400"):
        run_pass(semantic_step(server), records(), tmp_path / "w")


def test_the_pass_a_worker_gets_holds_no_items_or_vectors(server, tmp_path) -> None:
    decision = semantic_step(server).make_pass(StepContext(work_dir=tmp_path), "conversation")
    assert len(pickle.dumps(decision)) < 2_000


# ------------------------------------------------------------------------ `sftforge run`


def calls(journal: Path, status: str) -> set[str]:
    with sqlite3.connect(journal) as db:
        rows = db.execute("SELECT request FROM calls WHERE status = ?", (status,)).fetchall()
    return {json.dumps(json.loads(r), sort_keys=True) for (r,) in rows}


def test_a_sigkilled_run_resends_no_journaled_call_and_finds_the_same(server, tmp_path) -> None:
    """120 conversations (the planted ones among them) in 4 shards; killed mid-check, rerun."""
    fillers = [f"Write a short poem about the number {i} and the sea." for i in range(113)]
    texts = PARAPHRASES + LOOK_ALIKES + UNRELATED + fillers
    dump = tmp_path / "dump.jsonl"
    dump.write_text("".join(json.dumps({"id": f"c{i}", "conversations": [
        {"from": "human", "value": t}, {"from": "gpt", "value": "Sure."}]}) + "\n"
        for i, t in enumerate(texts)))  # fmt: skip
    step = semantic_step(server).model_dump(mode="json", exclude_defaults=True)
    step["semantic"]["embedding"]["concurrency"] = 1
    recipe = {"name": "sem", "output_dir": str(tmp_path / "out"),
              "sources": [{"name": "dump", "format": "sharegpt", "path": str(dump)}],
              "steps": [step], "outputs": [{"format": "parquet"}],
              "runner": {"shard_size": 30, "workers": 1}}  # fmt: skip
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect")}
    env.pop("PREFECT_API_URL", None)
    command = [SFTFORGE, "run", str(path), "--quiet"]
    server.delay_seconds = 0.2
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and len(server.requests) < 30:
        time.sleep(0.05)
    os.killpg(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    journal = tmp_path / "out" / ".sftforge" / "decontaminate" / "decontaminate" / "semantic.sqlite"
    paid = calls(journal, "done")
    # 20 requests embed the 80 items, 32 the texts (4 shards), then the judge's calls.
    assert 10 <= len(paid) < 45, "killed mid-check"
    before, server.delay_seconds = len(server.requests), 0
    env["COLUMNS"] = "250"
    rerun = subprocess.run(command[:-1], env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    caption = " ".join(rerun.stdout.split())  # the summary's caption wraps to the table
    assert "decontaminate hits: vicuna80 3 (semantic: 5 close pairs, 3 judged the same" in caption
    resent = {json.dumps(r, sort_keys=True) for r in server.requests[before:]}
    assert resent and not resent & paid  # the rest was sent, nothing paid for twice
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    (stage,) = [s for s in manifest["stages"] if s["name"] == "decontaminate"]
    assert stage["rejected"] == {"contaminated": 3}
    assert stage["contamination"]["semantic"]["yes"] == 3


def test_the_dataset_card_says_how_reworded_items_were_looked_for() -> None:
    from sftforge.tasks.publish.card import _table
    from sftforge.tasks.publish.card_decontamination import decontamination_section

    decided_by = "judge gpt-4o-mini on pairs with similarity >= 0.8"
    semantic = {"texts": 7, "pairs": 5, "judged": 5, "yes": 3, "no": 2, "unclear": 0,
                "cost": 0.0012, "decided_by": decided_by}  # fmt: skip
    found = {"hits": {"vicuna80": 3}, "benchmarks": {"vicuna80": {"source": "v.jsonl", "items": 80,
             "hits": 3}}, "semantic": semantic}  # fmt: skip
    card = decontamination_section({"stages": [{"name": "decontaminate", "x": found}]}, _table)
    assert "| `decontaminate` | vicuna80 | `v.jsonl` | 80 | 3 |" in card
    assert (
        "`decontaminate` also checked for reworded benchmark items by embedding similarity, "
        "decided by judge gpt-4o-mini on pairs with similarity >= 0.8: 7 texts, 5 close pairs, "
        "5 judged: 3 yes, 2 no, 0 unclear; API cost $0.0012."
    ) in card
    found.pop("semantic")
    plain = decontamination_section({"stages": [{"name": "d", "x": found}]}, _table)
    assert "## Decontamination" in plain and "reworded" not in plain
