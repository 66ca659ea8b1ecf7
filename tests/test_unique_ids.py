"""Every record of a run has a unique id (issue #13 §1): default ids count rows over all the
files of a source, a repeated declared or input id gets `#2`, `#3`, … in input order (counted
in the manifest), and a ShareGPT id repeated with identical content stays, for dedup_exact.

The real-data cases use ../shared/data (skipped where it is absent)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from rich.console import Console

from sftforge.flows.progress import summary_table
from sftforge.flows.recipe_flow import flow_for
from sftforge.schemas.loading import load_recipe, resolve_source_files
from sftforge.tasks.base.stats import StageStats
from sftforge.tasks.base.step_protocol import StepContext
from sftforge.tasks.pipeline.filter_pass import run_filter_segment
from sftforge.tasks.pipeline.manifest import stage_entries
from sftforge.tasks.pipeline.plan import plan_run
from sftforge.tasks.pipeline.read_stage import run_read
from sftforge.tasks.pipeline.request import RunRequest
from sftforge.tasks.pipeline.unique_ids import HashSet64, RunIds
from tests.conftest import SHARED_DATA

needs_shared = pytest.mark.skipif(
    not SHARED_DATA.is_dir(), reason="../shared/data (the real data) is not here"
)


def write_recipe(folder: Path, sources: list[dict], steps: list[dict], shard_size: int) -> Path:
    recipe = {
        "name": "ids",
        "output_dir": str(folder / "out"),
        "sources": sources,
        "steps": steps,
        "outputs": [{"format": "parquet"}],
        "runner": {"shard_size": shard_size, "workers": 1},
    }
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def read(path: Path, out: Path) -> tuple[list[StageStats], int]:
    recipe = load_recipe(path, out=str(out))
    files = resolve_source_files(recipe, path)
    plan = plan_run(recipe, files)
    stats = run_read(recipe, files, out, plan)
    if plan.segments:
        run_filter_segment(out, plan.segments[0], len(stats), StepContext(seed=recipe.seed))
    return stats, len(stats)


def rows(folder: Path) -> list[dict]:
    return [r for p in sorted(folder.glob("part-*.parquet")) for r in pq.read_table(p).to_pylist()]


def read_ids(out: Path) -> list[str]:
    """Every id the read stage gave out: its records and its rejects."""
    return [r["id"] for r in rows(out / "read") + rows(out / "rejects" / "read")]


def jsonl_lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@needs_shared
def test_default_ids_count_rows_over_all_files_of_a_source(tmp_path):
    # SelFee's CoNaLa records as two files of one source (a train and a test split): the
    # row count of the second file used to start at 0 again (777 ids given twice).
    lines = jsonl_lines(SHARED_DATA / "selfee_conala_feedback.jsonl")
    data = tmp_path / "conala"
    data.mkdir()
    (data / "a_train.jsonl").write_text("\n".join(lines[:2000]) + "\n", encoding="utf-8")
    (data / "b_test.jsonl").write_text("\n".join(lines[2000:]) + "\n", encoding="utf-8")
    mapping = {"instruction": "{instruction}", "input": "{input}", "output": "{output}"}
    source = {"name": "conala", "format": "hf", "path": str(data), "mapping": mapping}
    path = write_recipe(tmp_path, [source], [], shard_size=500)

    stats, _ = read(path, tmp_path / "out")

    ids = read_ids(tmp_path / "out")
    assert ids == [f"conala-{i}" for i in range(len(lines))]
    assert StageStats.merge(stats).id_collisions == {}


@needs_shared
def test_default_ids_of_rejected_rows_are_unique_too(tmp_path):
    # DreamerGPT's test data: eight files of ten strings, no objects: every row is rejected,
    # and each reject still has an id of its own (it was `dreamer-0`..`dreamer-9` eight times).
    source = {
        "name": "dreamer",
        "format": "hf",
        "path": str(SHARED_DATA / "dreamer_test_data"),
        "mapping": {"instruction": "{text}"},
    }
    path = write_recipe(tmp_path, [source], [], shard_size=25)

    read(path, tmp_path / "out")

    rejects = rows(tmp_path / "out" / "rejects" / "read")
    assert {r["reason"] for r in rejects} == {"invalid_record"}
    assert [r["id"] for r in rejects] == [f"dreamer-{i}" for i in range(80)]


def seed_tasks_recipe(tmp_path: Path) -> Path:
    mapping = {
        "instruction": "{instruction}",
        "input": "{instances[0].input}",
        "output": "{instances[0].output}",
        "id": "seed-{name}",
    }
    source = {
        "name": "seed",
        "format": "hf",
        "path": str(SHARED_DATA / "alpaca_seed_tasks.jsonl"),
        "mapping": mapping,
    }
    return write_recipe(tmp_path, [source], [{"step": "dedup_exact"}], shard_size=50)


@needs_shared
def test_a_declared_id_that_repeats_gets_a_suffix(tmp_path):
    # Alpaca's 175 seed tasks have 174 names: `fact_verification` is seed_task_92 and 160.
    stats, _ = read(seed_tasks_recipe(tmp_path), tmp_path / "out")

    records = rows(tmp_path / "out" / "read")
    assert len(records) == 175
    by_id = {r["id"]: r for r in records}
    assert len(by_id) == 175
    assert by_id["seed-fact_verification"]["instruction"].startswith("Verify if the claim")
    assert by_id["seed-fact_verification#2"]["instruction"].startswith("Tell me if the sentence")
    assert StageStats.merge(stats).id_collisions == {"seed": 1}
    assert [s.id_collisions for s in stats] == [{}, {}, {}, {"seed": 1}]  # row 160: shard 3


@needs_shared
@pytest.mark.usefixtures("prefect_harness")
def test_collisions_are_in_the_manifest_and_the_summary(tmp_path):
    path = seed_tasks_recipe(tmp_path)
    request = RunRequest(recipe_path=str(path), out=str(tmp_path / "out"), sets=[])
    body = flow_for(1)(request=request, quiet=True)

    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["stages"][0]["name"] == "read"
    assert manifest["stages"][0]["id_collisions"] == {"seed": 1}
    assert "id_collisions" not in manifest["stages"][1]
    console = Console(record=True, width=200)
    console.print(summary_table(body))
    caption = " ".join(console.export_text().split())  # as one line, however rich wraps it
    assert "175 out, " in caption and "; 1 repeated id made unique (#2, #3…: seed: 1)" in caption


def sharegpt(cid: str, question: str, answer: str, model: str | None = "gpt-4") -> str:
    turns = [{"from": "human", "value": question}, {"from": "gpt", "value": answer}]
    return json.dumps({"id": cid, "conversations": turns, "model": model}) + "\n"


def test_sharegpt_ids_repeated_with_other_content_get_a_suffix(tmp_path):
    # Two parts of a dump (as sg_90k_part1/part2): `a` repeated as it was (a duplicate),
    # `b` and `c` repeated with other content, a literal `b#2` after the `b#2` made here.
    dump = tmp_path / "dump"
    dump.mkdir()
    (dump / "part1.jsonl").write_text(
        sharegpt("a", "What is 2+2?", "4")
        + sharegpt("b", "Name a colour.", "Blue")
        + sharegpt("c", "Hi", "Hello", model="gpt-4")
    )
    (dump / "part2.jsonl").write_text(
        sharegpt("a", "What is 2+2?", "4")  # identical: stays `a`, dedup rejects it
        + sharegpt("b", "Name a fruit.", "Apple")  # other messages: `b#2`
        + sharegpt("b#2", "Name a tree.", "Oak")  # taken by now: `b#2#2`
        + sharegpt("c", "Hi", "Hello", model="gpt-3.5")  # another model: `c#2`
        + sharegpt("b", "Name a fruit.", "Apple")  # identical to the second `b`: `b#2` again
        + '{"id": "a", "conversations": "not a list"}\n'  # a reject repeating `a`: `a#2`
    )
    source = {"name": "sharegpt", "format": "sharegpt", "path": str(dump)}
    path = write_recipe(tmp_path, [source], [{"step": "dedup_exact"}], shard_size=3)

    stats, _ = read(path, tmp_path / "out")

    out = tmp_path / "out"
    records = rows(out / "read")
    assert [r["id"] for r in records] == ["a", "b", "c", "a", "b#2", "b#2#2", "c#2", "b#2"]
    assert [r["id"] for r in rows(out / "rejects" / "read")] == ["a#2"]
    # Records given a `#n`: b#2, b#2#2, c#2, the second b#2 and a#2.
    assert StageStats.merge(stats).id_collisions == {"sharegpt": 5}
    # Repeats of identical content are duplicates of the record they repeat, and named so;
    # `c#2` is one too (dedup_exact compares messages, not the model), but under an id of its own.
    dupes = rows(out / "rejects" / "dedup_exact")
    assert [(r["id"], r["reason"], r["detail"]) for r in dupes] == [
        ("a", "duplicate", "a"),
        ("c#2", "duplicate", "c"),
        ("b#2", "duplicate", "b#2"),
    ]
    kept = [r["id"] for r in rows(out / "dedup_exact")]
    assert kept == ["a", "b", "c", "b#2", "b#2#2"]
    assert len(set(kept)) == len(kept)


def test_ids_are_the_same_when_a_read_resumes(tmp_path):
    data = tmp_path / "parts"
    data.mkdir()
    for part in range(3):  # the same ids in every file, and default ids restarting in each
        body = "".join(
            json.dumps({"q": f"question {part}-{i}", "a": "x", "key": i % 4}) + "\n"
            for i in range(10)
        )
        (data / f"part{part}.jsonl").write_text(body)
    mapping = {"instruction": "{q}", "output": "{a}"}
    sources = [
        {
            "name": "declared",
            "format": "hf",
            "path": str(data),
            "mapping": mapping | {"id": "k{key}"},
        },
        {"name": "default", "format": "hf", "path": str(data), "mapping": mapping},
    ]
    path = write_recipe(tmp_path, sources, [], shard_size=7)
    out = tmp_path / "out"
    whole, shards = read(path, out)
    before = {p.name: p.read_bytes() for p in sorted((out / "read").glob("part-*"))}
    ids = read_ids(out)
    assert len(set(ids)) == len(ids) == 60
    assert StageStats.merge(whole).id_collisions == {"declared": 26}

    # A crash after shard 4: its part, its marker and the stage summary are gone.
    state = out / ".sftforge" / "state" / "read"
    (state / "_stage.json").unlink()
    for shard in range(4, shards):
        (state / f"part-{shard:05d}.json").unlink()
        (out / "read" / f"part-{shard:05d}.parquet").unlink()
    resumed, _ = read(path, out)

    assert {p.name: p.read_bytes() for p in sorted((out / "read").glob("part-*"))} == before
    assert [s.id_collisions for s in resumed] == [s.id_collisions for s in whole]


def test_a_suffix_never_takes_an_id_the_run_has_given():
    ids = RunIds()
    given = [ids.unique(i) for i in ["x", "x#2", "x", "x", "x#3"]]
    assert given == ["x", "x#2", "x#3", "x#4", "x#3#2"]


def test_identical_content_keeps_the_id_of_the_record_it_repeats():
    ids = RunIds()
    one, two = b"1" * 16, b"2" * 16
    given = [ids.unique("a", one), ids.unique("a", two), ids.unique("a", one)]
    assert given + [ids.unique("a", two), ids.unique("a")] == ["a", "a#2", "a", "a#2", "a#3"]


def test_the_hash_set_keeps_every_key_across_merges():
    keys = [(k * 0x9E3779B97F4A7C15) % (1 << 64) for k in range(1, 200_001)]  # above 2**63 too
    seen = HashSet64()
    for key in keys:
        seen.add(key)
    assert len(seen.sorted) > 0 and len(seen) == len(keys)
    truth = set(keys)
    others = [(k * 0xC2B2AE3D27D4EB4F + 7) % (1 << 64) for k in range(1, 5001)]
    assert all(key in seen for key in keys[::97])
    assert all((other in seen) == (other in truth) for other in others)


def test_stage_stats_carry_id_collisions():
    one = StageStats.of_shard("f", 3, 3, [], 0.1, id_collisions=Counter({"b": 2, "a": 1}))
    two = StageStats.of_shard("f", 2, 2, [], 0.1, id_collisions={"b": 1, "c": 0})
    assert StageStats.from_json(one.to_json()) == one
    assert "id_collisions" not in StageStats.of_shard("f", 1, 1, [], 0.1).to_json()
    assert StageStats.merge([one, two]).id_collisions == {"a": 1, "b": 3}


def test_the_read_entry_always_has_id_collisions(tmp_path):
    # `{}` when there were none: a reader of the manifest need not guess.
    data = tmp_path / "rows.jsonl"
    data.write_text(json.dumps({"q": "why?", "a": "because"}) + "\n")
    source = {"name": "s", "format": "hf", "path": str(data), "mapping": {"instruction": "{q}"}}
    recipe = write_recipe(tmp_path, [source], [{"step": "dedup_exact"}], 10)
    loaded = load_recipe(recipe, out=str(tmp_path / "out"))
    plan = plan_run(loaded, resolve_source_files(loaded, recipe))
    stats = {name: [StageStats.of_shard("f", 1, 1, [], 0.0)] for name in plan.stages}
    entries = stage_entries(plan, stats)
    assert entries[0]["id_collisions"] == {}
    assert all("id_collisions" not in e for e in entries[1:])
