"""The recipe flow end to end under one Prefect test harness: conservation, outputs,
determinism, resume."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from sftforge.flows.recipe_flow import flow_for
from sftforge.tasks.pipeline.request import RunRequest
from sftforge.tasks.steps.dedup_exact import conversation_key

pytestmark = pytest.mark.usefixtures("prefect_harness")

REPO = Path(__file__).resolve().parents[1]


def run(
    recipe: str,
    out: Path,
    inputs: dict[str, str] | None = None,
    sets: list[str] | None = None,
    workers: int = 1,
) -> dict:
    sets = [f"runner.workers={workers}", *(sets or [])]
    request = RunRequest(
        recipe_path=str(REPO / "configs" / recipe), inputs=inputs, out=str(out), sets=sets
    )
    return flow_for(workers)(request=request, quiet=True)


def parquet_files(out: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(out)): p.read_bytes()
        for p in sorted(out.rglob("*.parquet"))
        if ".sftforge" not in p.parts
    }


def rows(folder: Path) -> list[dict]:
    return [r for p in sorted(folder.glob("part-*.parquet")) for r in pq.read_table(p).to_pylist()]


def test_demo_recipe_end_to_end(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)  # the demo's paths are relative to the repository
    body = run("demo.yaml", tmp_path / "demo", workers=2)
    manifest = json.loads((tmp_path / "demo" / "manifest.json").read_text())
    assert manifest["recipe"] == "demo" and manifest["config_hash"] == body["config_hash"]
    names = [s["name"] for s in manifest["stages"]]
    assert names == [
        "read",
        "html_to_markdown",
        "check_structure",
        "filter_blocked_words",
        "dedup_exact",
        "filter_model",
        "filter_language",
        "decontaminate",
    ]
    previous = None
    for stage in manifest["stages"]:
        assert stage["in"] == stage["out"] + sum(stage["rejected"].values())
        if previous is not None:
            assert stage["in"] == previous
        previous = stage["out"]
    assert manifest["versions"]["prefect"] == "3.7.8"
    final = rows(tmp_path / "demo" / "dataset")
    assert len(final) == manifest["stages"][-1]["out"] > 50
    assert all(r["model"] in ("Model: GPT-4", "gpt4") for r in final)
    assert all(json.loads(r["meta"])["language"]["all"]["lang"] == "en" for r in final)
    exported = json.loads((tmp_path / "demo" / "export" / "sharegpt.json").read_text())
    assert [e["id"] for e in exported] == [r["id"] for r in final]
    assert exported[0]["conversations"][0]["from"] == "human"


def test_every_input_record_is_accounted_for(tmp_path, sample_jsonl):
    out = tmp_path / "o"
    body = run(
        "openchat_sharegpt.yaml", out, {"sharegpt": str(sample_jsonl)}, ["runner.shard_size=70"]
    )
    n_input = sum(1 for line in sample_jsonl.read_text().splitlines() if line.strip())
    assert body["stages"][0]["in"] == n_input
    final = rows(out / "dataset")
    rejected = {
        stage: rows(out / "rejects" / stage) for stage in [s["name"] for s in body["stages"]]
    }
    total_rejected = sum(len(v) for v in rejected.values())
    assert len(final) + total_rejected == n_input
    for stage in body["stages"]:
        got = Counter(r["reason"] for r in rejected[stage["name"]])
        assert dict(got) == stage["rejected"]
    # Each reject keeps the record as it entered its stage, so nothing is lost.
    for r in rejected["read"]:
        assert r["reason"] in ("invalid_json", "invalid_record") and r["detail"]
    for r in rejected["dedup_exact"]:
        original = json.loads(r["record"])
        assert r["detail"] in {x["id"] for x in rows(out / "dedup_exact")}
        assert original["id"] == r["id"]
    # What survived dedup is unique.
    keys = [conversation_key(r["messages"]) for r in rows(out / "dedup_exact")]
    assert len(keys) == len(set(keys))
    reasons = {reason for stage in body["stages"] for reason in stage["rejected"]}
    assert {
        "invalid_json",
        "invalid_record",
        "wrong_format",
        "blocked_word",
        "duplicate",
        "model_not_allowed",
        "model_unknown",
        "wrong_language",
    } <= reasons


def test_deterministic_bytes_across_runs_and_worker_counts(tmp_path, sample_jsonl):
    inputs = {"sharegpt": str(sample_jsonl)}
    sets = ["runner.shard_size=100"]
    run("openchat_sharegpt.yaml", tmp_path / "a", inputs, sets, workers=2)
    run("openchat_sharegpt.yaml", tmp_path / "b", inputs, sets, workers=1)
    a, b = parquet_files(tmp_path / "a"), parquet_files(tmp_path / "b")
    assert len(a) > 20 and a == b
    assert (tmp_path / "a" / "export" / "sharegpt.json").read_bytes() == (
        tmp_path / "b" / "export" / "sharegpt.json"
    ).read_bytes()


def test_rerun_skips_completed_shards_and_recomputes_only_what_changed(tmp_path, sample_jsonl):
    out = tmp_path / "o"
    inputs = {"sharegpt": str(sample_jsonl)}
    sets = ["runner.shard_size=150"]
    first = run("openchat_sharegpt.yaml", out, inputs, sets)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("part-*.parquet")}
    again = run("openchat_sharegpt.yaml", out, inputs, sets)
    assert {
        p: p.stat().st_mtime_ns for p in out.rglob("part-*.parquet") if "dataset" not in p.parts
    } == {p: t for p, t in before.items() if "dataset" not in p.parts}
    assert [s["out"] for s in again["stages"]] == [s["out"] for s in first["stages"]]

    # A changed language threshold recomputes filter_language and what follows it (the last
    # step, decontaminate), nothing before it.
    run("openchat_sharegpt.yaml", out, inputs, [*sets, "steps[5].min_score=0.9"])
    changed = {p for p in out.rglob("part-*.parquet") if before.get(p) != p.stat().st_mtime_ns}
    changed_stages = {p.parent.name for p in changed}
    assert changed_stages <= {"filter_language", "decontaminate", "dataset"}
    assert any(p.parent.name == "filter_language" for p in changed)


def test_bad_and_huge_records_are_rejected_or_kept_never_crash(tmp_path):
    dump = tmp_path / "in"
    dump.mkdir()
    good = {
        "id": "ok",
        "model": "gpt4",
        "conversations": [
            {"from": "human", "value": "Please explain Python decorators to me."},
            {"from": "gpt", "value": "<p>A decorator wraps a function to extend it.</p>"},
        ],
    }
    huge = {
        "id": "huge",
        "model": "gpt4",
        "conversations": [
            {"from": "human", "value": "Write a very long story about a dragon."},
            {
                "from": "gpt",
                "value": "<p>" + "The dragon flew over the mountains. " * 150_000 + "</p>",
            },
        ],
    }
    (dump / "a.jsonl").write_bytes(
        b"\n".join(
            [
                json.dumps(good).encode(),
                b"{broken",
                b'"just a string"',
                b"\xff\xfe\x00",
                json.dumps(
                    {"id": "t", "conversations": [{"from": "human", "value": ["list"]}]}
                ).encode(),
                json.dumps(huge).encode(),
            ]
        )
        + b"\n"
    )
    (dump / "b.json").write_text("")
    (dump / "c.json").write_text('[{"id": "x1", "conversations": []}, {"id": "x2", "conv')
    body = run("sharegpt_clean.yaml", tmp_path / "o", {"sharegpt": str(dump)})
    read = body["stages"][0]
    assert read["in"] == 8 and read["out"] == 3
    # Bad bytes and a list cut short are named as such (#12), not as `invalid_json`.
    assert read["rejected"] == {
        "invalid_json": 1,
        "invalid_unicode": 1,
        "truncated_input": 1,
        "invalid_record": 2,
    }
    final_ids = [r["id"] for r in rows(tmp_path / "o" / "dataset")]
    assert final_ids == ["ok", "huge"]
    too_short = rows(tmp_path / "o" / "rejects" / "check_structure")
    assert [r["id"] for r in too_short] == ["x1"]
