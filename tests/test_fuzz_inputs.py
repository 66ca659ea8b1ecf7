"""Fuzzed input through the readers and through the real `sftforge run` (#12): no record
stops a run, every input record ends in the dataset or in rejects with its reason and its
raw text, by id and by position.

`SFTFORGE_FUZZ_RECORDS=20000 pytest tests/test_fuzz_inputs.py` runs a larger set.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from prefect.settings import PREFECT_API_URL

from sftforge.schemas.recipe import SourceConfig
from sftforge.tasks.readers.sources import iter_sharegpt_file, iter_source
from tests.fuzz_inputs import (
    BROKEN,
    ODD,
    instruction_csv,
    instruction_jsonl,
    page_files,
    sharegpt_set,
)

RECORDS = int(os.environ.get("SFTFORGE_FUZZ_RECORDS", "1200"))


def one_line_file(tmp_path: Path, line: bytes, name: str = "x.jsonl") -> Path:
    path = tmp_path / name
    path.write_bytes(line + b"\n")
    return path


@pytest.mark.parametrize(
    "kind", [k for k, (reason, _) in BROKEN.items() if reason != "invalid_record"]
)
def test_each_broken_line_is_one_reject_with_its_reason_and_text(tmp_path, kind):
    import random

    reason, make = BROKEN[kind]
    line = make(random.Random(1), "r1")
    (item,) = list(iter_sharegpt_file(one_line_file(tmp_path, line)))
    assert item.error and item.reason == reason, (kind, item.error)
    assert item.text, "the raw text is kept"
    item.text.encode("utf-8")  # storable: no lone surrogates in what is kept
    # The same record inside a JSON list: the same verdict, the same text.
    listed = tmp_path / "l.json"
    listed.write_bytes(b"[\n  " + line + b"\n]")
    items = list(iter_sharegpt_file(listed))
    assert items[0].error and items[0].reason in (reason, "truncated_input"), (kind, items)


@pytest.mark.parametrize("kind", list(ODD))
def test_each_odd_but_valid_line_is_read_as_a_record(tmp_path, kind):
    import random

    line = ODD[kind](random.Random(1), "r1")
    (item,) = list(iter_sharegpt_file(one_line_file(tmp_path, line)))
    assert item.error is None and isinstance(item.value, dict), (kind, item.error)


def test_escaped_emoji_pairs_survive_and_lone_ones_do_not(tmp_path):
    path = one_line_file(
        tmp_path, b'{"id": "a", "v": "\\ud83d\\ude00"}\n{"id": "b", "v": "\\ud83d"}'
    )
    good, bad = list(iter_sharegpt_file(path))
    assert good.value["v"] == "\U0001f600"
    assert bad.reason == "invalid_unicode" and bad.text == '{"id": "b", "v": "\\ud83d"}'


def test_truncated_gzip_keeps_the_records_before_the_cut(tmp_path):
    lines = [json.dumps({"id": f"r{k}", "text": "word " * 50}) for k in range(2000)]
    packed = gzip.compress("\n".join(lines).encode())
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(packed[: len(packed) * 2 // 3])
    items = list(iter_sharegpt_file(path))
    good = [i.value["id"] for i in items if i.error is None]
    assert good == [f"r{k}" for k in range(len(good))] and len(good) > 500
    assert items[-1].reason == "truncated_input"
    partial = [i for i in items if i.error and i.text]
    assert len(partial) <= 1 and (not partial or lines[len(good)].startswith(partial[0].text))


def test_list_broken_midway_resumes_at_the_next_record(tmp_path):
    records = [
        {"id": f"r{k}", "conversations": [{"from": "human", "value": "{x}, {y}"}]} for k in range(6)
    ]
    items = [json.dumps(r, indent=2).replace("\n", "\n  ") for r in records]
    items[2] = items[2][:30]
    path = tmp_path / "d.json"
    path.write_text("[\n  " + ",\n  ".join(items) + "\n]")
    got = list(iter_sharegpt_file(path))
    assert [i.value["id"] for i in got if i.error is None] == ["r0", "r1", "r3", "r4", "r5"]
    (bad,) = [i for i in got if i.error]
    assert bad.reason == "invalid_json" and bad.text.startswith(items[2][:20])
    assert bad.error.startswith("line 20: not JSON")  # where the broken record starts


def test_jsonl_after_a_list_is_kept_as_rejects_with_its_text(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps([{"id": "a"}, {"id": "b"}]) + '\n{"id": "c"}\n{"id": "d"}\n')
    got = list(iter_sharegpt_file(path))
    assert [i.value["id"] for i in got if i.error is None] == ["a", "b"]
    assert [i.text for i in got if i.error] == ['{"id": "c"}', '{"id": "d"}']


def test_plain_file_named_gz_and_bom_list_are_read(tmp_path):
    (tmp_path / "p.jsonl.gz").write_text('{"id": "a"}\n')
    assert [i.value["id"] for i in iter_sharegpt_file(tmp_path / "p.jsonl.gz")] == ["a"]
    (tmp_path / "b.json").write_bytes(
        b"\xef\xbb\xbf" + json.dumps([{"id": k} for k in "xyz"]).encode()
    )
    assert [i.value["id"] for i in iter_sharegpt_file(tmp_path / "b.json")] == list("xyz")


def _rows(folder: Path) -> list[dict]:
    return [
        row
        for part in sorted(folder.glob("part-*.parquet"))
        for row in pq.read_table(part).to_pylist()
    ]


def _run(tmp_path: Path, recipe: dict) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path / "out"
    recipe = {"name": "fuzz", "output_dir": str(out), **recipe}
    config = tmp_path / "r.yaml"
    config.write_text(yaml.safe_dump(recipe))
    cmd = [sys.executable, "-m", "sftforge.flows.cli", "run", str(config), "--quiet"]
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}  # the session's server
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=tmp_path, env=env)
    return done, out


def _final_rows(out: Path) -> list[dict]:
    """The records the run kept: the last stage's parts."""
    stages = json.loads((out / "manifest.json").read_text())["stages"]
    return _rows(out / stages[-1]["name"])


def _all_rejects(out: Path) -> list[dict]:
    return [row for stage in sorted((out / "rejects").glob("*")) for row in _rows(stage)]


@pytest.mark.usefixtures("prefect_harness")
def test_fuzzed_sharegpt_dump_runs_to_the_end_and_loses_nothing(tmp_path):
    data = tmp_path / "dump"
    data.mkdir()
    files = sharegpt_set(seed=12, n=RECORDS)
    for f in files:
        (data / f.name).write_bytes(f.data)
    steps = [{"step": "html_to_markdown"}, {"step": "check_structure"}, {"step": "dedup_exact"}]
    recipe = {
        "sources": [{"name": "dump", "format": "sharegpt", "path": str(data)}],
        "steps": steps,
        "outputs": [{"format": "sharegpt_json"}],
        "runner": {"shard_size": 500},
    }
    done, out = _run(tmp_path, recipe)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    read = next(s for s in manifest["stages"] if s["name"] == "read")
    known = sum(f.frames for f in files if f.frames >= 0)
    assert read["in"] >= known + 6  # the lists and the cut gzip add what they hold
    kept, rejects = _final_rows(out), _all_rejects(out)
    assert len(kept) + len(rejects) == read["in"], "conservation by position"
    ids = {r["id"] for r in kept} | {r["id"] for r in rejects}
    missing = [i for f in files for i in f.good_ids if i not in ids]
    assert missing == [], "conservation by id"
    for row in rejects:
        assert row["reason"] and row["detail"]
        assert row["record"] or row["reason"] == "truncated_input", row
    # Every broken line of the JSONL file is rejected at read with its own reason.
    jsonl = files[0]
    by_line = {
        r["detail"].split(":", 2)[1]: r
        for r in _rows(out / "rejects" / "read")
        if r["detail"].startswith(jsonl.name + ":")
    }
    kinds = [*BROKEN, *ODD]
    for lineno in range(1, min(jsonl.frames, 4 * len(kinds)) + 1):
        kind = kinds[(lineno - 1) % len(kinds)]
        if kind in BROKEN and BROKEN[kind][0] != "invalid_record":
            assert by_line[str(lineno)]["reason"] == BROKEN[kind][0], kind


@pytest.mark.usefixtures("prefect_harness")
def test_fuzzed_instruction_files_lose_no_row(tmp_path):
    rows_jsonl, rows_csv = (
        instruction_jsonl(__import__("random").Random(3), RECORDS),
        instruction_csv(RECORDS),
    )
    for f in (rows_jsonl, rows_csv):
        (tmp_path / f.name).write_bytes(f.data)
    mapping = {"instruction": "{instruction}", "input": "{input}", "output": "{output}"}
    sources = [
        {"name": name, "format": "hf", "path": str(tmp_path / f.name), "mapping": mapping}
        for name, f in (("j", rows_jsonl), ("c", rows_csv))
    ]
    done, out = _run(tmp_path, {"sources": sources, "outputs": [{"format": "alpaca_json"}]})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    kept, rejects = _final_rows(out), _all_rejects(out)
    manifest = json.loads((out / "manifest.json").read_text())
    read = next(s for s in manifest["stages"] if s["name"] == "read")
    assert read["in"] == rows_jsonl.frames + rows_csv.frames == len(kept) + len(rejects)
    assert sorted(r["instruction"] for r in kept) == sorted(rows_jsonl.good_ids + rows_csv.good_ids)
    for row in rejects:
        assert row["record"] and ":" in row["detail"].split()[0]  # raw text and file:line


def test_hf_source_counts_rows_not_blocks(tmp_path):
    lines = [json.dumps({"instruction": f"q{k}", "output": "a"}) for k in range(20_000)]
    lines[18_999] = "{broken"
    path = tmp_path / "big.jsonl"
    path.write_text("\n".join(lines) + "\n")
    source = SourceConfig(name="s", format="hf", path=str(path))
    items = list(iter_source(source, [path]))
    assert len(items) == 20_000
    (bad,) = [i for i in items if i.error]
    assert bad.where == "big.jsonl:19000" and bad.text == "{broken"


def test_saved_pages_with_bad_text_are_rejects_with_their_reason(tmp_path):
    reasons = {}
    for page in page_files():
        (tmp_path / page.name).write_bytes(page.data)
        (item,) = list(iter_sharegpt_file(tmp_path / page.name))
        reasons[page.name] = item.reason if item.error else "ok"
        if item.error:
            assert item.text and "__NEXT_DATA__" in item.error
    assert reasons == {
        "good.html": "ok",
        "bad_utf8.html": "invalid_unicode",
        "deep.html": "too_deep",
    }
