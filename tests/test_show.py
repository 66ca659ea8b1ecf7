"""`sftforge show OUT` (issue #14 §4), through the real command on real runs: conversation
turns under their roles with the Markdown rendered, instruction/input/output, rejects by
reason with their detail and raw text (escaped), one record by `--id`, and misuse as one
line with exit 2 — without Prefect."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from prefect.settings import PREFECT_API_URL

from tests.cli_support import one_line

REPO = Path(__file__).resolve().parents[1]
COMMAND = [sys.executable, "-m", "sftforge.flows.cli"]
SAMPLE = REPO / "data" / "sharegpt_sample.jsonl"
CONVERSATIONS = """
name: show_test
output_dir: {out}
seed: 0
sources:
  - {{name: sharegpt, format: sharegpt, path: {dump}}}
steps:
  - step: html_to_markdown
  - {{step: check_structure, min_messages: 2, min_chars: 16}}
  - {{step: filter_model, models: ["Model: GPT-4", gpt4]}}
outputs: [{{format: parquet}}]
"""
INSTRUCTIONS = """
name: show_instructions
output_dir: {out}
sources:
  - name: alpaca
    format: hf
    path: {repo}/data/instructions/alpaca.json
    mapping: {{instruction: "{{instruction}}", input: "{{input}}", output: "{{output}}"}}
steps: [{{step: dedup_exact}}]
outputs: [{{format: parquet}}]
"""
# A conversation whose text would act on a terminal or on rich if it were not escaped, and
# whose answer (HTML, made Markdown by html_to_markdown) has a heading, bold and a list.
PROBE = {
    "id": "show-probe",
    "model": "Model: GPT-4",
    "conversations": [
        {"from": "human", "value": "What does [bold]markup[/bold] do?\nAnd \x1b[31m, an escape?"},
        {
            "from": "gpt",
            "value": '<div class="markdown prose w-full break-words dark:prose-invert light">'
            "<h2>Rich markup explained</h2><p>The <strong>markup</strong> syntax wraps words "
            "in square brackets.</p><ul><li>First point about styles.</li>"
            "<li>Second point about escapes.</li></ul></div>",
        },
    ],
}
BROKEN = '{"id": "raw-probe", "conversations": [[bold]not json'


def sftforge(args: list[str], **env: str) -> subprocess.CompletedProcess:
    # The session's Prefect server for runs (`show` must not need one); wide lines, so that
    # rich wraps less of what is asserted.
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "COLUMNS": "200", **env}
    return subprocess.run(
        [*COMMAND, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, f"{result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def rows(folder: Path) -> list[dict]:
    return [r for p in sorted(folder.glob("part-*.parquet")) for r in pq.read_table(p).to_pylist()]


@pytest.fixture(scope="module")
def out(tmp_path_factory, prefect_harness) -> Path:
    """A run of the demo's first steps on the probes and 80 lines of the ShareGPT sample."""
    folder = tmp_path_factory.mktemp("show")
    dump = folder / "sharegpt.jsonl"
    lines = [json.dumps(PROBE), BROKEN, *SAMPLE.read_text().splitlines()[:80]]
    dump.write_text("\n".join(lines) + "\n")
    recipe = folder / "recipe.yaml"
    recipe.write_text(CONVERSATIONS.format(out=folder / "out", dump=dump))
    ok(sftforge(["run", str(recipe), "--quiet", "--set", "runner.workers=1"]))
    return folder / "out"


def test_records_show_turns_with_roles_and_rendered_markdown(out: Path) -> None:
    text = ok(sftforge(["show", str(out), "-n", "2"]))
    final = rows(out / "filter_model")
    assert final[0]["id"] == "show-probe"
    assert f"stage filter_model (final) · {len(final)} records · showing 2" in text
    assert final[1]["id"] in text and final[2]["id"] not in text  # -n 2
    assert "╭─ user " in text and "╭─ assistant " in text  # the turns under their roles
    # Markdown rendered: the heading without its ##, bold without **, list items as bullets.
    assert "Rich markup explained" in text and "## Rich markup" not in text
    assert "**markup**" not in text and "• First point about styles." in text
    # The data is never markup nor terminal control: shown as written, the ESC as an escape.
    assert "[bold]markup[/bold]" in text
    assert "\x1b" not in text and "\\x1b[31m" in text


def test_rejects_of_one_reason_with_their_detail(out: Path) -> None:
    text = ok(sftforge(["show", str(out), "--rejects", "--reason", "model_not_allowed", "-n", "3"]))
    rejected = [
        r for r in rows(out / "rejects" / "filter_model") if r["reason"] == "model_not_allowed"
    ]
    assert len(rejected) > 3
    reasons = [line for line in text.splitlines() if line.startswith("reason ")]
    assert reasons == ["reason model_not_allowed"] * 3
    for row in rejected[:3]:
        assert row["id"] in text and f"detail {row['detail']}" in text
    assert rejected[3]["id"] not in text
    assert "rejected by filter_model" in text and "╭─ assistant " in text  # the record, as turns


def test_read_rejects_show_the_input_verbatim(out: Path) -> None:
    text = ok(sftforge(["show", str(out), "--stage", "read", "--reason", "invalid_json"]))
    assert "reason invalid_json" in text and "input, verbatim" in text
    assert BROKEN in text  # as written: `[bold]` is not markup
    assert "reason invalid_record" not in text


def test_id_picks_one_record_or_says_where_it_went(out: Path) -> None:
    text = ok(sftforge(["show", str(out), "--id", "show-probe"]))
    assert text.count("╭─ user ") == 1 and "Second point about escapes." in text

    rejected = rows(out / "rejects" / "filter_model")[0]
    text = ok(sftforge(["show", str(out), "--id", rejected["id"]]))
    assert "stage filter_model rejected it" in text
    assert f"reason {rejected['reason']}" in text and rejected["detail"] in text

    line = one_line(sftforge(["show", str(out), "--id", "no-such-id"]), 1)
    assert "no record with id 'no-such-id'" in line


def test_misuse_is_one_line_and_exit_2(out: Path, tmp_path: Path) -> None:
    line = one_line(sftforge(["show", str(out), "--stage", "filter_modle"]), 2)
    assert "no stage 'filter_modle'" in line and "did you mean 'filter_model'" in line
    assert "stages: read, html_to_markdown, check_structure, filter_model" in line

    line = one_line(sftforge(["show", str(out), "--reason", "model_not_alowed"]), 2)
    assert "no reason 'model_not_alowed'" in line and "did you mean 'model_not_allowed'" in line
    line = one_line(sftforge(["show", str(out), "--stage", "read", "--reason", "wrong_format"]), 2)
    assert "'wrong_format' is a reason of stage check_structure" in line

    assert "no such directory" in one_line(sftforge(["show", str(tmp_path / "nope")]), 2)
    assert "not a run's output directory" in one_line(sftforge(["show", str(tmp_path)]), 2)


def test_show_does_not_start_prefect(out: Path) -> None:
    """No Prefect import (nor server): it answers at once, with no PREFECT_API_URL around."""
    code = (
        "import sys; from sftforge.flows.cli import main; "
        f"code = main(['show', {str(out)!r}, '-n', '1']); "
        "print('PREFECT' if any(m.split('.')[0] == 'prefect' for m in sys.modules) else 'NONE')"
    )
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("NONE")


def test_instruction_records_show_their_fields(tmp_path_factory, prefect_harness) -> None:
    folder = tmp_path_factory.mktemp("show-instructions")
    recipe = folder / "recipe.yaml"
    recipe.write_text(INSTRUCTIONS.format(out=folder / "out", repo=REPO))
    ok(sftforge(["run", str(recipe), "--quiet", "--set", "runner.workers=1"]))
    records = rows(folder / "out" / "dedup_exact")
    # One with an input, and an output of prose (a list's "1." is drawn as "1").
    with_input = next(r for r in records if r["input"] and r["output"][:1].isalpha())
    text = ok(sftforge(["show", str(folder / "out"), "--id", with_input["id"]]))
    for field in ("instruction", "input", "output"):
        assert f"╭─ {field} " in text
        first_line = with_input[field].strip().splitlines()[0].strip()
        assert first_line[:40] in text
