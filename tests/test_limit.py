"""`sftforge run … --limit N` (issue #14 §4), through the real command: each source yields its
first N records, the manifest marks the run as limited, a limited rerun resumes, `push`
refuses it, and a full run into the same OUT reads everything and writes what a clean full
run writes, byte for byte."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from prefect.settings import PREFECT_API_URL

from tests.test_flow import parquet_files

REPO = Path(__file__).resolve().parents[1]
COMMAND = [sys.executable, "-m", "sftforge.flows.cli"]
SAMPLE = REPO / "data" / "sharegpt_sample.jsonl"
LIMIT = 5
# The demo's sources and first steps, fixed here (the shipped demo may gain steps): a dump
# of 120 ShareGPT lines in shards of 40, and the 4 saved pages.
RECIPE = """
name: limit_test
output_dir: {out}
seed: 0
sources:
  - {{name: sharegpt, format: sharegpt, path: {dump}}}
  - {{name: sharegpt_pages, format: sharegpt, path: {pages}}}
steps:
  - step: html_to_markdown
  - {{step: check_structure, min_messages: 2, min_chars: 16}}
  - step: dedup_exact
  - {{step: filter_model, models: ["Model: GPT-4", gpt4]}}
outputs:
  - format: parquet
  - format: sharegpt_json
runner: {{shard_size: 40, workers: 1}}
"""


def sftforge(args: list[str]) -> subprocess.CompletedProcess:
    # The session's Prefect server: a server per command would cost ~10 s each.
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "COLUMNS": "200"}
    return subprocess.run(
        [*COMMAND, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, f"{result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def read_rows(out: Path) -> list[dict]:
    """Every record the read stage put out, kept or rejected, in input order per source."""
    rows = []
    for folder in (out / "read", out / "rejects" / "read"):
        for part in sorted(folder.glob("part-*.parquet")):
            rows += pq.read_table(part, columns=["id", "source"]).to_pylist()
    return rows


def outputs(out: Path) -> dict[str, bytes]:
    """What must not depend on how OUT got there: every stage's and rejects' parquet (the
    dataset's included) and the exports."""
    files = parquet_files(out)
    files.update({str(p.relative_to(out)): p.read_bytes() for p in (out / "export").iterdir()})
    return files


@pytest.fixture(scope="module")
def recipe(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("recipe")
    dump = folder / "sharegpt.jsonl"
    dump.write_text("\n".join(SAMPLE.read_text().splitlines()[:120]) + "\n")
    path = folder / "recipe.yaml"
    text = RECIPE.format(out=folder / "out", dump=dump, pages=REPO / "data" / "sharegpt_pages")
    path.write_text(text)
    return str(path)


@pytest.fixture(scope="module")
def full(tmp_path_factory, prefect_harness, recipe) -> Path:
    """A clean full run: what a full run must produce."""
    out = tmp_path_factory.mktemp("full") / "out"
    ok(sftforge(["run", recipe, "--out", str(out), "--quiet"]))
    return out


@pytest.fixture(scope="module")
def limited(tmp_path_factory, prefect_harness, recipe) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("limited") / "out"
    return out, ok(sftforge(["run", recipe, "--out", str(out), "--limit", str(LIMIT)]))


def test_limit_reads_the_first_n_records_of_each_source(limited, full) -> None:
    out, result = limited
    body = manifest(out)
    assert body["limited"] is True and body["limit"] == LIMIT
    assert manifest(full)["limited"] is False and manifest(full)["limit"] is None
    title = " ".join(result.stdout.split())  # the summary's title, however rich wrapped it
    assert f"limited: first {LIMIT} per source" in title

    rows = read_rows(out)
    per_source: dict[str, list[str]] = {}
    for row in rows:
        per_source.setdefault(row["source"], []).append(row["id"])
    assert set(per_source) == {"sharegpt", "sharegpt_pages"}
    assert all(len(ids) <= LIMIT for ids in per_source.values())
    assert len(per_source["sharegpt"]) == LIMIT  # the dump has far more: it was cut
    assert body["stages"][0]["in"] == len(rows) <= 2 * LIMIT
    # The first N of the dump (its first lines are whole records with ids); the four saved
    # pages are all read, as in the full run.
    lines = SAMPLE.read_text().splitlines()[:LIMIT]
    assert per_source["sharegpt"] == [json.loads(line)["id"] for line in lines]
    full_pages = [row["id"] for row in read_rows(full) if row["source"] == "sharegpt_pages"]
    assert sorted(per_source["sharegpt_pages"]) == sorted(full_pages)


def test_limited_rerun_resumes_push_refuses_report_notes(limited, recipe, tmp_path) -> None:
    out, _ = limited
    parts = sorted((out / "read").glob("part-*.parquet")) + sorted(
        (out / "filter_model").glob("part-*.parquet")
    )
    before = {p: p.stat().st_mtime_ns for p in parts}
    ok(sftforge(["run", recipe, "--out", str(out), "--limit", str(LIMIT), "--quiet"]))
    assert {p: p.stat().st_mtime_ns for p in parts} == before  # nothing rewritten
    assert manifest(out)["limited"] is True

    result = sftforge(["push", str(out), "--repo-id", "me/demo", "--dry-run", str(tmp_path)])
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "limited run (--limit 5" in lines[0], result.stderr
    assert not any(tmp_path.iterdir())  # nothing written

    # `show` and `report` look at it all the same, and say what it is.
    shown = " ".join(ok(sftforge(["show", str(out), "-n", "1"])).stdout.split())
    assert f"a limited run (--limit {LIMIT})" in shown
    pytest.importorskip("matplotlib")  # the `report` extra
    result = ok(sftforge(["report", str(out)]))
    assert "note: " in result.stderr and f"limited run (--limit {LIMIT}" in result.stderr


def test_full_run_after_a_limited_one_equals_a_clean_full_run(limited, recipe, full) -> None:
    out, _ = limited  # a limited run's OUT (the tests above have looked at it)
    assert manifest(out)["limited"] is True
    ok(sftforge(["run", recipe, "--out", str(out), "--quiet"]))

    body, clean = manifest(out), manifest(full)
    assert body["limited"] is False and body["limit"] is None
    assert body["stages"][0]["in"] == clean["stages"][0]["in"] > 2 * LIMIT  # all was read
    assert [s["out"] for s in body["stages"]] == [s["out"] for s in clean["stages"]]
    assert outputs(out) == outputs(full)


def test_bad_limit_is_one_line(recipe) -> None:
    result = sftforge(["run", recipe, "--limit", "0"])
    assert result.returncode == 2
    assert result.stderr.strip().startswith("sftforge: ") and "--limit" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
