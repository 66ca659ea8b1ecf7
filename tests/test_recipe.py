"""Recipe validation: a bad config is one line naming the file and the key, and exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sftforge.flows.cli import main
from sftforge.schemas.loading import ConfigError, load_recipe, recipe_hash, resolve_source_files

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def write(tmp_path: Path, data: dict | str) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def base(tmp_path: Path) -> dict:
    (tmp_path / "in.jsonl").write_text("{}\n")
    return {
        "name": "t",
        "output_dir": str(tmp_path / "out"),
        "sources": [{"name": "sharegpt", "format": "sharegpt", "path": str(tmp_path / "in.jsonl")}],
        "steps": [
            {"step": "html_to_markdown"},
            {"step": "check_structure"},
            {"step": "filter_language", "min_score": 0.5},
        ],
    }


def error_of(path: Path, **kw) -> str:
    with pytest.raises(ConfigError) as info:
        recipe = load_recipe(path, **kw)
        resolve_source_files(recipe, path)
    return str(info.value)


SAMPLES = "data/instructions"
# validate opens a Hub dataset (#12); offline, the shipped samples stand in for the Hub ids.
LOCAL_STAND_INS = {
    "dreamer_zh.yaml": [
        f"firefly={SAMPLES}/firefly.jsonl",
        f"coig={SAMPLES}/coig.jsonl",
        f"alpaca_gpt4={SAMPLES}/alpaca_gpt4_zh.json",
    ],
    "guanaco_oasst1.yaml": [f"oasst1={SAMPLES}/openassistant_guanaco.jsonl"],
    "selfee.yaml": [
        f"alpaca={SAMPLES}/alpaca.json",
        f"flan={SAMPLES}/flan.jsonl",
        f"gsm8k={SAMPLES}/gsm8k.jsonl",
        f"aqua={SAMPLES}/aqua_rat.jsonl",
        f"hendrycks={SAMPLES}/competition_math.jsonl",
        f"conala={SAMPLES}/conala.jsonl",
        f"mbpp={SAMPLES}/mbpp.jsonl",
        f"dmcc={SAMPLES}/code_contests.jsonl",
        f"sharegpt={SAMPLES}/sharegpt.json",
    ],
}


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_shipped_recipes_validate(config, monkeypatch):
    monkeypatch.chdir(config.parents[1])
    inputs = [arg for pair in LOCAL_STAND_INS.get(config.name, []) for arg in ("--input", pair)]
    assert main(["validate", str(config), *inputs]) == 0


def test_wrong_type_names_file_and_key_path(tmp_path, base):
    base["steps"][2]["min_score"] = "high"
    path = write(tmp_path, base)
    assert error_of(path) == f"{path}: steps[2].min_score: expected a number"


def test_unknown_key(tmp_path, base):
    base["steps"][1]["min_charz"] = 3
    path = write(tmp_path, base)
    assert error_of(path) == f"{path}: steps[1].min_charz: unknown key (did you mean min_chars?)"
    base["steps"][1].pop("min_charz")
    base["colour"] = "red"
    assert error_of(write(tmp_path, base)) == f"{path}: colour: unknown key"


def test_unknown_step_and_missing_key(tmp_path, base):
    base["steps"].append({"step": "translate"})
    path = write(tmp_path, base)
    assert error_of(path).startswith(f"{path}: steps[3]: unknown step 'translate' (known: ")
    base["steps"].pop()
    del base["output_dir"]
    assert error_of(write(tmp_path, base)) == f"{path}: output_dir: required key is missing"


def test_missing_input_and_empty_glob(tmp_path, base):
    base["sources"][0]["path"] = str(tmp_path / "nope.jsonl")
    path = write(tmp_path, base)
    assert error_of(path) == f"{path}: sources[0].path: no such file '{tmp_path / 'nope.jsonl'}'"
    base["sources"][0]["path"] = str(tmp_path / "*.json")
    assert "sources[0].path: nothing matches" in error_of(write(tmp_path, base))


def test_invalid_yaml_and_missing_file(tmp_path):
    path = write(tmp_path, "name: [unclosed\n")
    assert error_of(path).startswith(f"{path}: invalid YAML at line")
    assert error_of(tmp_path / "absent.yaml") == f"{tmp_path / 'absent.yaml'}: no such file"


def test_duplicate_stage_names_need_a_name(tmp_path, base):
    base["steps"].append({"step": "check_structure"})
    assert "is used twice" in error_of(write(tmp_path, base))
    base["steps"][-1]["name"] = "check_again"
    recipe = load_recipe(write(tmp_path, base))
    assert [s.stage for s in recipe.steps][-1] == "check_again"


def test_overrides_set_input_out(tmp_path, base):
    path = write(tmp_path, base)
    other = tmp_path / "other.jsonl"
    other.write_text("{}\n")
    recipe = load_recipe(
        path,
        sets=["steps[2].min_score=0.8", "runner.workers=3", "steps.2.languages=[en, fr]"],
        inputs={"sharegpt": str(other)},
        out=str(tmp_path / "o2"),
    )
    assert recipe.steps[2].min_score == 0.8 and recipe.steps[2].languages == ["en", "fr"]
    assert recipe.runner.workers == 3
    assert recipe.sources[0].path == str(other) and recipe.output_dir == str(tmp_path / "o2")
    assert error_of(path, inputs={"nosuch": "x"}).endswith(
        "no source named 'nosuch' (have ['sharegpt'])"
    )
    assert error_of(path, sets=["steps[9].x=1"]) == "--set steps[9].x=1: no item 9 at steps[9].x"
    assert error_of(path, sets=["steps[2].min_score=abc"]).endswith(
        "steps[2].min_score: expected a number"
    )


def test_recipe_hash_ignores_where_and_how_many_workers(tmp_path, base):
    path = write(tmp_path, base)
    a = load_recipe(path)
    b = load_recipe(path, out=str(tmp_path / "elsewhere"), sets=["runner.workers=7"])
    c = load_recipe(path, sets=["steps[2].min_score=0.9"])
    assert recipe_hash(a) == recipe_hash(b) != recipe_hash(c)


def test_cli_exit_2_with_one_line(tmp_path, base, capsys):
    base["steps"][2]["min_score"] = [1]
    path = write(tmp_path, base)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == f"sftforge: {path}: steps[2].min_score: expected a number\n"
    assert main(["run", str(path)]) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert main(["run", str(tmp_path / "none.yaml")]) == 2
    assert main(["validate", str(path), "--input", "broken"]) == 2


def test_cli_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2
    assert capsys.readouterr().err.startswith("sftforge: ")
