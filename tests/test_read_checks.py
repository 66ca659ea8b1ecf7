"""Wrong input fails loudly (issue #14 §3), through the real `sftforge` command: `validate`
reads the first records of every source through the real readers and mapping and says per
source how many would be rejected and why; a run whose source loses every record at read
(or more than the recipe's `read_check` allows) exits 1 naming it, after writing its rejects;
an empty input stays a clean, reported case."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from prefect.settings import PREFECT_API_URL

from sftforge.flows.cli import main
from sftforge.schemas.recipe import Recipe
from sftforge.tasks.pipeline.read_check import SourceReads, out_reads, sample_source
from tests.cli_support import one_line

REPO = Path(__file__).resolve().parents[1]
COMMAND = [sys.executable, "-m", "sftforge.flows.cli"]
OPENCHAT = "configs/openchat_sharegpt.yaml"
DEMO = "configs/demo.yaml"
ALPACA = "data/instructions/alpaca.json"  # 52 Alpaca records: not ShareGPT conversations
SAMPLE = REPO / "data" / "sharegpt_sample.jsonl"


def _env(home: Path | None) -> dict[str, str]:
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    if home is not None:
        # The session's server: a temporary server per command would cost ~10 s each.
        env["PREFECT_HOME"] = str(home)
        env["PREFECT_API_URL"] = PREFECT_API_URL.value()
    return env


def sftforge(args: list[str], home: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*COMMAND, *args], cwd=REPO, env=_env(home), capture_output=True, text=True, timeout=600
    )


def first_lines(folder: Path, n: int) -> Path:
    path = folder / f"first{n}.jsonl"
    path.write_text("\n".join(SAMPLE.read_text().splitlines()[:n]) + "\n")
    return path


@pytest.fixture(scope="module")
def home(tmp_path_factory, prefect_harness) -> Path:
    return tmp_path_factory.mktemp("prefect-home")


# ---------------------------------------------------------------------------- validate


def test_validate_refuses_alpaca_given_as_sharegpt_naming_source_share_and_reason():
    """The issue's case: `validate` said "ok"; now exit 2 (bad input) and one line."""
    began = time.perf_counter()
    result = sftforge(["validate", OPENCHAT, "--input", f"sharegpt={ALPACA}"])
    seconds = time.perf_counter() - began
    line = one_line(result, 2)
    assert line.startswith(f"sftforge: {OPENCHAT}: source sharegpt: 52 of 52 records rejected")
    assert "(100%)" in line and "invalid_record 52" in line
    assert "`conversations` is not a list" in line  # why, from the real reject's detail
    assert "fields instruction, input, output" in line  # what the records are instead
    # The per-source report on stdout, and no "ok".
    assert "sharegpt: 52 records read (the whole input), 52 would be rejected (100%)" in (
        result.stdout
    )
    assert ": ok" not in result.stdout
    assert seconds < 30, seconds  # no Prefect server, no flow: a read of a few hundred rows


def test_validate_reads_without_prefect():
    code = (
        "import sys; from sftforge.flows.cli import main; "
        f"code = main(['validate', {OPENCHAT!r}, '--input', 'sharegpt={ALPACA}']); "
        "print(code, 'prefect' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.stdout.splitlines()[-1] == "2 False", done.stdout + done.stderr


def test_validate_reports_per_source_sample_counts_on_good_input():
    result = sftforge(["validate", DEMO])
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    out = result.stdout
    assert "reading the first 300 records of each source" in out
    # 400 records in the dump: the first 300 read; its rejects named with a reason.
    assert "  sharegpt: 300 records read (the first 300), 17 would be rejected (6%): " in out
    assert "invalid_record 12 (sharegpt_sample.jsonl:31: " in out and "invalid_json 5" in out
    assert "  sharegpt_pages: 4 records read (the whole input), 1 would be rejected (25%)" in out
    assert out.rstrip().endswith(f"{DEMO}: ok")

    smaller = sftforge(["validate", DEMO, "--sample", "10"])
    assert smaller.returncode == 0, smaller.stderr
    assert "  sharegpt: 10 records read (the first 10), 0 would be rejected (0%)" in smaller.stdout


def test_a_recipe_share_below_one_fails_validate_on_a_partly_bad_source(tmp_path):
    small = first_lines(tmp_path, 40)
    args = ["validate", DEMO, "--input", f"sharegpt={small}"]
    strict = sftforge([*args, "--set", "read_check.per_source.sharegpt_pages=0.2"])
    line = one_line(strict, 2)
    assert "source sharegpt_pages: 1 of 4 records rejected at read (25%)" in line
    assert "more than the 0.2 allowed" in line and "invalid_record 1" in line
    assert "source sharegpt:" not in line  # 3 of 40 (8%) is within 0.2
    # The recipe-wide share applies to every source; a share above theirs passes.
    assert main([*args, "--set", "read_check.max_rejected_share=0.05"]) == 2
    assert main([*args, "--set", "read_check.max_rejected_share=0.5"]) == 0


def test_a_share_for_an_unknown_source_is_a_config_error(capsys):
    assert main(["validate", DEMO, "--set", "read_check.per_source.nope=0.1"]) == 2
    assert "read_check.per_source.nope: no source named 'nope'" in capsys.readouterr().err


def test_an_empty_input_validates_and_is_reported(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    result = sftforge(["validate", DEMO, "--input", f"sharegpt={empty}"])
    assert result.returncode == 0, result.stderr
    assert "  sharegpt: no records (its input is empty)" in result.stdout
    assert "  sharegpt_pages: 4 records read" in result.stdout


# -------------------------------------------------------------------------------- runs


def test_a_run_whose_source_is_all_rejected_exits_1_after_writing_its_rejects(tmp_path, home):
    out = tmp_path / "out"
    args = ["run", OPENCHAT, "--input", f"sharegpt={ALPACA}", "--out", str(out), "--quiet"]
    args += ["--set", "runner.workers=1"]  # no worker processes to start: a shorter test
    line = one_line(sftforge(args, home), 1)
    assert line.startswith("sftforge: run failed: stage read: source sharegpt: 52 of 52 records")
    assert "(100%)" in line and "invalid_record 52" in line
    assert "`conversations` is not a list" in line
    assert str(out / "rejects" / "read") in line
    # Its rejects are written, each with the input it came from; no dataset, no manifest.
    rejects = pq.read_table(out / "rejects" / "read" / "part-00000.parquet").to_pylist()
    assert len(rejects) == 52 and {r["reason"] for r in rejects} == {"invalid_record"}
    assert json.loads(rejects[0]["record"])["instruction"] == "Give 4 tips for staying calm."
    assert not (out / "manifest.json").exists() and not (out / "dataset").exists()
    # A rerun reuses the read stage and fails the same way (the check reads OUT).
    assert one_line(sftforge(args, home), 1) == line


def test_a_recipe_share_below_one_fails_a_run_on_a_partly_bad_source(tmp_path, home):
    out = tmp_path / "out"
    small = first_lines(tmp_path, 40)
    args = ["run", DEMO, "--input", f"sharegpt={small}", "--out", str(out), "--quiet"]
    args += ["--set", "runner.workers=1"]
    strict = ["--set", "read_check.per_source.sharegpt_pages=0.2"]
    line = one_line(sftforge([*args, *strict], home), 1)
    assert line.startswith("sftforge: run failed: stage read: source sharegpt_pages: 1 of 4")
    assert "(25%), more than the 0.2 allowed: invalid_record 1 (broken_page.html: " in line
    assert "source sharegpt:" not in line
    reasons = pq.read_table(out / "rejects" / "read", columns=["source"]).to_pylist()
    assert sorted(r["source"] for r in reasons).count("sharegpt_pages") == 1
    assert not (out / "manifest.json").exists()


def test_an_empty_input_runs_clean_and_is_reported(tmp_path, home):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    recipe = tmp_path / "r.yaml"
    spec = {
        "name": "empty",
        "output_dir": str(tmp_path / "out"),
        "sources": [{"name": "s", "format": "sharegpt", "path": str(empty)}],
        "steps": [{"step": "check_structure"}],
    }
    recipe.write_text(yaml.safe_dump(spec))
    result = sftforge(["run", str(recipe)], home)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "0 records in, 0 out" in " ".join(result.stdout.split())
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["stages"][0]["in"] == 0


# ------------------------------------------------------------------ the counts themselves


def test_sample_stops_at_its_size_and_says_whether_it_saw_everything(tmp_path):
    recipe = Recipe.from_yaml(REPO / DEMO)
    source = recipe.sources[0]
    head = sample_source(source, [SAMPLE], 25)
    assert (head.records, head.complete) == (25, False)
    whole = sample_source(source, [first_lines(tmp_path, 40)], 40)
    assert (whole.records, whole.complete) == (40, True)
    assert whole.n_rejected == 3 and set(whole.rejected) == {"invalid_record", "invalid_json"}


def test_out_counts_are_per_source(tmp_path):
    """Two sources in one shard: counted apart from the `source` column."""
    import pyarrow as pa

    from sftforge.schemas.records import REJECT_SCHEMA

    read = tmp_path / "read"
    read.mkdir()
    pq.write_table(pa.table({"source": ["a", "a", "b"]}), read / "part-00000.parquet")
    rejects = tmp_path / "rejects" / "read"
    rejects.mkdir(parents=True)
    rows = [
        {"id": str(i), "source": s, "reason": r, "detail": f"d{i}", "record": "{}"}
        for i, (s, r) in enumerate([("b", "x"), ("b", "x"), ("b", "y"), ("c", "x")])
    ]
    pq.write_table(pa.Table.from_pylist(rows, schema=REJECT_SCHEMA), rejects / "part-00000.parquet")
    recipe = Recipe.model_validate(
        {
            "name": "r",
            "output_dir": str(tmp_path),
            "sources": [
                {"name": n, "format": "sharegpt", "path": "x.jsonl"} for n in ("a", "b", "c")
            ],
        }
    )
    counts = {r.name: r for r in out_reads(recipe, tmp_path, 1)}
    assert (counts["a"].records, counts["a"].n_rejected) == (2, 0)
    assert (counts["b"].records, dict(counts["b"].rejected)) == (4, {"x": 2, "y": 1})
    assert counts["b"].examples["x"] == "d0"
    assert (counts["c"].records, counts["c"].n_rejected) == (1, 1)
    assert isinstance(counts["c"], SourceReads)
