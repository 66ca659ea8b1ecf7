"""`--set` by name (issue #14 §5): a step by its stage name as well as by index, an output and
a source by name; "did you mean …" for a misspelt name or key; and every problem a `--set`
caused is one line that names that `--set`, not the recipe file — through the real
`sftforge validate` command."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sftforge.flows.cli import main
from sftforge.schemas.loading import ConfigError, load_recipe

SCRIPT = Path(sys.executable).parent / "sftforge"
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "sftforge.flows.cli"]
RECORD = (
    '{"id": "a", "conversations": [{"from": "human", "value": "hello there, how are you?"},'
    ' {"from": "gpt", "value": "fine, thank you, and you?"}]}\n'
)


@pytest.fixture
def recipe(tmp_path: Path) -> Path:
    """Steps with and without a `name`, outputs with and without one, a named source."""
    (tmp_path / "in.jsonl").write_text(RECORD)
    data = {
        "name": "t",
        "output_dir": str(tmp_path / "out"),
        "sources": [
            {
                "name": "sharegpt",
                "format": "sharegpt",
                "path": str(tmp_path / "in.jsonl"),
                "first_pair": True,
                "preprocess": [{"step": "check_structure"}],
            }
        ],
        "steps": [
            {"step": "filter_blocked_words", "words": ["as an ai"]},
            {"step": "filter_language", "languages": ["en"], "min_score": 0.5},
            {"step": "dedup_exact", "name": "dedup"},
        ],
        "outputs": [{"format": "jsonl", "name": "records"}, {"format": "alpaca_json"}],
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def validate(recipe: Path, *sets: str) -> subprocess.CompletedProcess:
    args = [arg for assignment in sets for arg in ("--set", assignment)]
    return subprocess.run(
        [*COMMAND, "validate", str(recipe), "--sample", "5", *args],
        cwd=recipe.parent,
        env={**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def refusal(recipe: Path, *sets: str) -> str:
    """`validate` exits 2 with one `sftforge: …` line and no traceback: that line, unprefixed."""
    done = validate(recipe, *sets)
    assert done.returncode == 2, f"{done.returncode}\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr + done.stdout
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("sftforge: "), done.stderr
    return done.stderr.removeprefix("sftforge: ").rstrip("\n")


def refusal_here(recipe: Path, *sets: str) -> str:
    """As refusal, through the CLI's `main` in this process (a subprocess costs seconds)."""
    err = io.StringIO()
    args = [arg for assignment in sets for arg in ("--set", assignment)]
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        assert main(["validate", str(recipe), "--sample", "5", *args]) == 2
    text = err.getvalue()
    assert text.count("\n") == 1 and text.startswith("sftforge: "), text
    return text.removeprefix("sftforge: ").rstrip("\n")


def test_a_step_by_its_stage_name_is_set(recipe):
    sets = ["steps.filter_language.min_score=0.8", "steps.filter_blocked_words.words=[x, y]"]
    done = validate(recipe, *sets)
    assert done.returncode == 0, done.stderr
    loaded = load_recipe(recipe, sets=sets)
    assert loaded.steps[1].min_score == 0.8 and loaded.steps[0].words == ["x", "y"]
    assert [s.stage for s in loaded.steps] == ["filter_blocked_words", "filter_language", "dedup"]
    # `name:` given: that is the stage name; the step type still reaches it (the only one)
    named = load_recipe(recipe, sets=["steps.dedup.name=dedup_q", "steps.dedup_q.name=dd"])
    assert named.steps[2].stage == "dd"
    typed = load_recipe(recipe, sets=["steps.dedup_exact.name=by_type"])
    assert typed.steps[2].stage == "by_type"


def test_a_stage_name_reaches_that_step_and_no_other(recipe):
    # the value is out of range: the error names the index the name resolved to
    assert refusal(recipe, "steps.filter_language.min_score=2") == (
        "--set steps.filter_language.min_score=2: steps[1].min_score: "
        "expected less than or equal to 1"
    )


def test_a_step_by_index_still_works(recipe):
    assert validate(recipe, "steps[1].min_score=0.7", "steps.2.name=d2").returncode == 0
    loaded = load_recipe(recipe, sets=["steps[1].min_score=0.7", "steps.2.name=d2"])
    assert loaded.steps[1].min_score == 0.7 and loaded.steps[2].stage == "d2"
    assert refusal(recipe, "steps[1].min_score=2").startswith(
        "--set steps[1].min_score=2: steps[1].min_score: expected less"
    )
    assert refusal_here(recipe, "steps[7].min_score=0.1") == (
        "--set steps[7].min_score=0.1: no item 7 at steps[7].min_score"
    )


def test_a_misspelt_step_name_gets_did_you_mean(recipe):
    assert refusal(recipe, "steps.filter_languag.min_score=0.8") == (
        "--set steps.filter_languag.min_score=0.8: no step named 'filter_languag' "
        "(did you mean filter_language?)"
    )
    # nothing close: the stage names there are
    assert refusal_here(recipe, "steps.zzz.min_score=0.8") == (
        "--set steps.zzz.min_score=0.8: no step named 'zzz' "
        "(steps: filter_blocked_words, filter_language, dedup)"
    )
    # a misspelt step type in a value set by name
    assert refusal_here(recipe, "steps.dedup={step: dedup_exakt}") == (
        "--set steps.dedup={step: dedup_exakt}: steps[2]: unknown step 'dedup_exakt' "
        "(did you mean dedup_exact?)"
    )


def test_a_misspelt_key_gets_did_you_mean(recipe):
    assert refusal(recipe, "steps.filter_language.min_scor=0.8") == (
        "--set steps.filter_language.min_scor=0.8: steps[1].min_scor: unknown key "
        "(did you mean min_score?)"
    )
    # a key the --set created at the top is its doing, not the file's
    assert refusal_here(recipe, "runer.workers=2") == (
        "--set runer.workers=2: runer: unknown key (did you mean runner?)"
    )
    assert refusal_here(recipe, "outputs.records.shard={count: 2}") == (
        "--set outputs.records.shard={count: 2}: outputs[0].shard: unknown key "
        "(did you mean shards?)"
    )
    assert refusal_here(recipe, "sources.sharegpt.pth=x") == (
        "--set sources.sharegpt.pth=x: sources[0].pth: unknown key (did you mean path?)"
    )


def test_outputs_and_sources_by_name(recipe, tmp_path):
    sets = [
        "outputs.records.shards.count=3",
        "outputs.alpaca_json.datasets=[sharegpt]",  # no `name`: its format is its name
        f"sources.sharegpt.path={tmp_path / 'in.jsonl'}",
        "sources.sharegpt.preprocess.check_structure.min_chars=2",
    ]
    assert validate(recipe, *sets).returncode == 0
    loaded = load_recipe(recipe, sets=sets)
    assert loaded.outputs[0].shards.count == 3 and loaded.outputs[1].datasets == ["sharegpt"]
    assert loaded.sources[0].preprocess[0].min_chars == 2
    assert refusal(recipe, "outputs.recrds.shards.count=3") == (
        "--set outputs.recrds.shards.count=3: no output named 'recrds' (did you mean records?)"
    )
    assert refusal_here(recipe, "outputs.records.shards.count=abc") == (
        "--set outputs.records.shards.count=abc: outputs[0].shards.count: expected an integer"
    )
    assert refusal_here(recipe, "sources.sharegp.path=x") == (
        "--set sources.sharegp.path=x: no source named 'sharegp' (did you mean sharegpt?)"
    )


def test_the_default_parquet_output_by_name(recipe, tmp_path):
    data = yaml.safe_load(recipe.read_text())
    del data["outputs"]
    bare = tmp_path / "bare.yaml"
    bare.write_text(yaml.safe_dump(data))
    loaded = load_recipe(bare, sets=["outputs.parquet.shards.count=2"])
    assert [o.format for o in loaded.outputs] == ["parquet"] and loaded.outputs[0].shards.count == 2
    data["steps"] = []
    bare.write_text(yaml.safe_dump(data))
    assert refusal_here(bare, "steps.dedup.name=x") == (
        "--set steps.dedup.name=x: no step named 'dedup' (there are no steps)"
    )


def test_two_steps_of_one_type_are_named_not_typed(recipe):
    data = yaml.safe_load(recipe.read_text())
    data["steps"][2] = {"step": "filter_language", "name": "lang_zh", "languages": ["zh"]}
    data["steps"][1]["name"] = "lang_en"
    recipe.write_text(yaml.safe_dump(data))
    assert refusal_here(recipe, "steps.filter_language.min_score=0.9") == (
        "--set steps.filter_language.min_score=0.9: 2 steps are filter_language steps "
        "(lang_en, lang_zh): name one"
    )
    loaded = load_recipe(recipe, sets=["steps.lang_zh.min_score=0.9"])
    assert loaded.steps[2].min_score == 0.9 and loaded.steps[1].min_score == 0.5


def test_a_set_problem_never_blames_the_file(recipe):
    """Whatever a by-name --set breaks, the line starts with that --set (checks made after
    the recipe is read, such as reserved stage names, too)."""
    for assignment in (
        "steps.filter_language.name=dataset",  # a stage name the output layout takes
        "steps.filter_language.languages.x=1",  # a key inside a list
        "steps.filter_blocked_words.words=[]",  # a value not allowed
        "steps.dedup.min_chars=3",  # an option another step has
    ):
        assert refusal_here(recipe, assignment).startswith(f"--set {assignment}: "), assignment
    # and a problem the file has stays the file's
    data = yaml.safe_load(recipe.read_text())
    data["steps"][1]["min_scre"] = 1
    recipe.write_text(yaml.safe_dump(data))
    assert refusal_here(recipe, "steps.dedup.name=d") == (
        f"{recipe}: steps[1].min_scre: unknown key (did you mean min_score?)"
    )


def test_in_process_errors_match(recipe):
    with pytest.raises(ConfigError, match=r"did you mean filter_language\?\)$"):
        load_recipe(recipe, sets=["steps.filter_languag.min_score=0.8"])
