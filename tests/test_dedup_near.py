"""The `dedup_near` step (issue #15 §2): planted near-duplicates (a regenerated answer, a word
changed, two sentences swapped, re-cased and re-spaced) are found and named after the first
record of their cluster; distinct records that share a preamble are kept; clusters are
global across shards (union-find: a later record joins two earlier ones); signatures are the
same in every process; and a recipe run through the real `sftforge` command is identical with
one and two workers, conserves every record and shows the clusters in the manifest, the
report and the dataset card."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from sftforge.schemas.steps import step_class
from sftforge.tasks.base.outcome import Rejected
from sftforge.tasks.steps import minhash
from tests.helpers import conv, run_filter_pass

REPO = Path(__file__).resolve().parents[1]
_rng = random.Random(15)
VOCAB = sorted({"".join(_rng.choice("bcdfgklmnprstvz") + _rng.choice("aeiou") for _ in range(3))
                for _ in range(3000)})  # fmt: skip


def sentence(rng: random.Random, words: int = 12) -> str:
    return " ".join(rng.choice(VOCAB) for _ in range(words)).capitalize() + "."


def prompt(rng: random.Random, sentences: int = 10) -> str:
    return " ".join(sentence(rng) for _ in range(sentences))


def step(**options: Any) -> Any:
    return step_class("dedup_near")(step="dedup_near", **options)


def chat(i: int, user: str, answer: str, *more: str) -> dict[str, Any]:
    turns = [("user", user), ("assistant", answer)]
    for later_user, later_answer in zip(more[::2], more[1::2], strict=True):
        turns += [("user", later_user), ("assistant", later_answer)]
    return conv(*turns, id=f"r{i}")


def test_planted_near_duplicates_are_found_and_shared_boilerplate_is_not():
    rng = random.Random(1)
    originals = [prompt(rng), prompt(rng), " ".join(sentence(rng, 20) for _ in range(10))]
    originals.append(prompt(rng))
    words = originals[1].split()
    words[60] = "zzzchanged"
    sentences = originals[2].split(". ")
    sentences[3], sentences[4] = sentences[4], sentences[3]
    preamble = prompt(rng, 3)  # 36 words every "template" record starts with
    records = [chat(i, p, prompt(rng, 3)) for i, p in enumerate(originals)]
    planted = {
        "r4": (chat(4, originals[0], prompt(rng, 5)), "r0"),  # regenerated answer
        "r5": (chat(5, " ".join(words), records[1]["messages"][1]["content"]), "r1"),
        "r6": (chat(6, ". ".join(sentences), "Sure."), "r2"),  # two sentences swapped
        "r7": (chat(7, originals[3].upper().replace(" ", "  \n"), "ok"), "r3"),
    }
    records += [r for r, _ in planted.values()]
    # Distinct prompts after a shared preamble (a third of their words): not merged.
    records += [chat(8 + i, f"{preamble} {prompt(rng, 6)}", "Yes.") for i in range(4)]
    # A short prompt and an empty one: each its own (the empty one has nothing to sign).
    records += [chat(12, "Hi there", "Hello!"), chat(13, "", "Nothing.")]
    results = run_filter_pass(step(), [records[:6], records[6:]], "conversation")
    by_id = {r["id"]: result for r, result in zip(records, results, strict=True)}
    kept = {i for i, result in by_id.items() if not isinstance(result, Rejected)}
    assert kept == {f"r{i}" for i in (0, 1, 2, 3, 8, 9, 10, 11, 12, 13)}
    for dup, (_, survivor) in planted.items():
        verdict = by_id[dup]
        assert isinstance(verdict, Rejected) and verdict.reason == "near_duplicate", dup
        assert verdict.detail.startswith(f"{survivor} (estimated Jaccard "), verdict.detail
    assert by_id["r4"].detail == "r0 (estimated Jaccard 1.00)"  # the same user turn
    assert 0.8 <= float(by_id["r5"].detail.split()[-1][:-1]) < 1.0  # one word changed


def test_which_text_is_compared():
    rng = random.Random(2)
    first, second = prompt(rng), prompt(rng)
    records = [chat(0, first, "a", second, "b"), chat(1, first, "c", prompt(rng), "d")]
    assert isinstance(
        run_filter_pass(step(text="first_user"), [records], "conversation")[1], Rejected
    )
    assert run_filter_pass(step(text="user"), [records], "conversation")[1] == records[1]
    # Every turn: the same prompts with other answers of the same length are distinct.
    same = [chat(0, first, prompt(rng)), chat(1, first, prompt(rng))]
    assert isinstance(run_filter_pass(step(), [same], "conversation")[1], Rejected)
    assert run_filter_pass(step(text="all"), [same], "conversation")[1] == same[1]
    # Instructions: the query (instruction + input); with `all` the output too.
    rows = [
        {"id": f"i{i}", "source": "t", "dataset": "d", "instruction": first, "input": inp,
         "output": prompt(rng)}
        for i, inp in enumerate(["", "", "Some other input entirely."])
    ]  # fmt: skip
    out = run_filter_pass(step(), [rows], "instruction")
    assert isinstance(out[1], Rejected) and out[1].detail.startswith("i0 ")
    assert isinstance(out[2], Rejected)  # four words more of 120: still near
    assert run_filter_pass(step(text="all"), [rows], "instruction") == rows


def test_estimated_jaccard_tracks_the_exact_one():
    """Over pairs of every similarity, the estimate from 128 permutations stays within
    0.15 of the exact Jaccard of the shingle sets (4 standard deviations at worst)."""
    rng = random.Random(3)
    words = [rng.choice(VOCAB) for _ in range(300)]
    texts, pairs = [], []
    for keep in range(0, 301, 20):  # the second text shares `keep` words with the first
        other = words[:keep] + [rng.choice(VOCAB) for _ in range(300 - keep)]
        texts += [" ".join(words), " ".join(other)]
        grams = [{tuple(t[i : i + 5]) for i in range(296)} for t in (words, other)]
        pairs.append(len(grams[0] & grams[1]) / len(grams[0] | grams[1]))
    signed = minhash.sign(pa.array(texts), 0, 5, 128, 18, 7)
    sig = signed.signatures
    for i, exact in enumerate(pairs):
        estimate = float((sig[2 * i] == sig[2 * i + 1]).mean())
        assert abs(estimate - exact) < 0.15, (i, exact, estimate)


def test_clusters_span_shards_and_the_first_record_survives():
    """A ~ B and B ~ C make one cluster even when A and C are not alike enough: C, in a later
    shard, is rejected naming A, the first record of the cluster (union-find)."""
    rng = random.Random(4)
    words = [rng.choice(VOCAB) for _ in range(320)]
    texts = [" ".join(words[shift : shift + 300]) for shift in (0, 10, 20)]
    records = [chat(i, t, "x") for i, t in enumerate(texts)]
    near = step(threshold=0.9)
    signed = minhash.sign(pa.array(texts), 0, 5, 128, *near.lsh(128))
    alike = minhash.similarity(signed.signatures, np.array([0, 1, 0]), np.array([1, 2, 2]))
    assert alike[0] >= 0.9 and alike[1] >= 0.9 and alike[2] < 0.9, alike  # the premise
    out = run_filter_pass(near, [[records[0]], records[1:]], "conversation")
    assert out[0] == records[0]
    assert [r.detail.split(" ")[0] for r in out[1:]] == ["r0", "r0"]


def test_union_find_matches_a_plain_one():
    rng = np.random.default_rng(5)
    n = 2000
    u, v = rng.integers(0, n, 1500), rng.integers(0, n, 1500)
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    for x, y in zip(u.tolist(), v.tolist(), strict=True):
        rx, ry = find(x), find(y)
        parent[max(rx, ry)] = min(rx, ry)
    assert minhash.clusters(n, u, v).tolist() == [find(x) for x in range(n)]


def test_signatures_are_the_same_in_another_process():
    texts = ["Ünïcode and CASE, spacing:  folded", "一个中文句子也能比较", "short", ""]
    here = minhash.sign(pa.array(texts), 7, 3, 16, 4, 4)
    code = (
        "import json, sys, pyarrow as pa; from sftforge.tasks.steps import minhash; "
        f"s = minhash.sign(pa.array({texts!r}), 7, 3, 16, 4, 4); "
        "print(json.dumps([s.signatures.tolist(), [str(k) for k in s.bands.ravel()]]))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    sigs, bands = json.loads(done.stdout)
    assert sigs == here.signatures.tolist()
    assert bands == [str(k) for k in here.bands.ravel()]
    assert here.signed.tolist() == [True, True, True, False]


def test_options_are_checked():
    assert step().lsh(128) == (18, 7)  # 0.8: a pair at the threshold is a candidate ≥ 95%
    assert step(bands=20, rows=13).lsh(260) == (20, 13)
    with pytest.raises(ValidationError, match="bands and rows go together"):
        step(bands=10)
    with pytest.raises(ValidationError, match="more than permutations"):
        step(bands=20, rows=10, permutations=128)


def load_near_generator() -> Any:
    """data/make_near_dup_sample.py (data/ is not a package)."""
    import importlib.util

    path = REPO / "data" / "make_near_dup_sample.py"
    spec = importlib.util.spec_from_file_location("make_near_dup_sample", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_recipe_run_is_global_identical_on_one_and_two_workers(tmp_path, prefect_harness):
    """Two sources of generated conversations with planted near-duplicates (those of the
    second source copy records of the first): found across sources and shards, the same
    bytes with one and two workers, every record accounted for, clusters in the manifest,
    the report and the dataset card."""
    from prefect.settings import PREFECT_API_URL

    from tests.test_flow import parquet_files

    generator = load_near_generator()
    lines = [json.dumps(r) for r, _ in generator.generate(3000, seed=5, planted=0.1)]
    planted = [info for _, info in generator.generate(3000, seed=5, planted=0.1) if info]
    (tmp_path / "a.jsonl").write_text("\n".join(lines[:1500]) + "\n")
    (tmp_path / "b.jsonl").write_text("\n".join(lines[1500:]) + "\n")
    recipe = {
        "name": "near",
        "output_dir": str(tmp_path / "two"),
        "sources": [
            {"name": name, "format": "sharegpt", "path": str(tmp_path / f"{name}.jsonl")}
            for name in ("a", "b")
        ],
        "steps": [{"step": "dedup_exact"}, {"step": "dedup_near"}],
        "outputs": [{"format": "parquet"}],
        "runner": {"shard_size": 400, "workers": 2},
    }
    path = tmp_path / "near.yaml"
    path.write_text(json.dumps(recipe))
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "COLUMNS": "250"}

    def sftforge(*args: str) -> None:
        command = [sys.executable, "-m", "sftforge.flows.cli", *args]
        done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr

    sftforge("run", str(path), "--quiet")
    sftforge("run", str(path), "--out", str(tmp_path / "one"), "--set", "runner.workers=1")
    out = tmp_path / "two"
    assert parquet_files(tmp_path / "one") == parquet_files(out)

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["shards"] == 8
    for stage in manifest["stages"]:
        assert stage["in"] == stage["out"] + sum(stage["rejected"].values()), stage
    near = next(s for s in manifest["stages"] if s["name"] == "dedup_near")
    counts = near["near_duplicates"]
    assert (counts["bands"], counts["rows"], counts["permutations"]) == (18, 7, 128)
    rejected = near["rejected"]["near_duplicate"]
    sizes = {int(k): v for k, v in counts["cluster_sizes"].items()}
    assert counts["rejected"] == rejected == sum((k - 1) * v for k, v in sizes.items())
    assert counts["clusters"] == sum(sizes.values())

    rejects = {
        r["id"]: r
        for stage in ("dedup_exact", "dedup_near")
        for r in pq.read_table(out / "rejects" / stage).to_pylist()
    }
    wanted = {p["id"] for p in planted}
    assert set(rejects) <= wanted  # nothing but planted copies is rejected
    assert len(wanted & set(rejects)) >= 0.9 * len(wanted)
    crossing = [
        r for r in rejects.values() if r["source"] == "b" and r["reason"] == "near_duplicate"
    ]
    assert any(int(r["detail"][4:11]) < 1500 for r in crossing)  # a survivor in source a
    assert {p["of"] for p in planted if p["id"] in rejects} >= {
        int(r["detail"][4:11]) for r in rejects.values() if r["reason"] == "near_duplicate"
    }

    sftforge("report", str(out))
    page = (out / "report.html").read_text()
    assert 'id="plot-clusters-dedup_near"' in page
    assert f"{counts['clusters']} clusters; {rejected} records rejected" in page
    sftforge("push", str(out), "--repo-id", "org/near", "--dry-run", str(tmp_path / "hub"))
    card = (tmp_path / "hub" / "README.md").read_text()
    assert "## Near-duplicates" in card
    assert f"| `dedup_near` | 5 | 18 × 7 of 128 | 0.8 | {counts['clusters']} | {rejected} |" in card
