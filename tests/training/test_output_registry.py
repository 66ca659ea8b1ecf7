"""The one registry of output formats (names after defaults, files, kinds, collisions) and the
one split-file writer every format writes through."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from sftforge.flows.cli import main
from sftforge.schemas.recipe import AnyOutput, OutputConfig
from sftforge.schemas.training import TRAINING_FORMATS
from sftforge.tasks.outputs.registry import (
    FORMATS,
    check_outputs,
    output_files,
    output_key,
    output_name,
)
from sftforge.tasks.outputs.split_files import BatchPart, FileSpec, Layout, SplitFiles


class _Outputs(BaseModel):
    outputs: list[AnyOutput]


def outputs(*specs: dict) -> list:
    return _Outputs.model_validate({"outputs": list(specs)}).outputs


def test_every_format_of_the_recipe_schema_is_registered() -> None:
    own = set(typing.get_args(OutputConfig.model_fields["format"].annotation))
    assert set(FORMATS) == own | TRAINING_FORMATS


def test_names_after_defaults_and_manifest_keys() -> None:
    found = outputs(
        {"format": "parquet"},
        {"format": "alpaca_json"},
        {"format": "jsonl", "name": "selfee"},
        {"format": "openchat_tokens"},
        {"format": "openchat_tokens", "template": "opencoder"},
        {"format": "instruction_tokens", "template": "guanaco"},
        {"format": "trl"},
        {"format": "calibration", "name": "cal"},
    )
    assert [output_key(o) for o in found] == [
        "parquet", "alpaca_json", "selfee", "openchat_tokens", "openchat_tokens",
        "instruction_tokens", "trl", "cal",
    ]  # fmt: skip
    assert [output_name(o) for o in found] == [
        "dataset", "alpaca", "selfee", "openchat", "opencoder", "guanaco", "trl", "cal",
    ]  # fmt: skip
    assert output_files(found[1], split_used=True) == {
        "export/alpaca-train.json",
        "export/alpaca-eval.json",
    }
    assert output_files(found[1], split_used=False) == {"export/alpaca.json"}
    # token files own every file they may write or remove, whatever the split
    assert output_files(found[3], split_used=False) == {
        f"export/openchat.{split}.{suffix}"
        for split in ("train", "eval")
        for suffix in ("json", "text.json", "parquet")
    }


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        # the example: both write openchat.train.json …
        (
            [{"format": "openchat_tokens"}, {"format": "openchat_tokens", "max_length": 256}],
            r"outputs\[0\] and outputs\[1\] both write export/openchat\.eval\.json",
        ),
        # … also when only the name given matches the other's default
        (
            [{"format": "openchat_tokens"}, {"format": "openchat_tokens", "name": "openchat"}],
            r"outputs\[0\] and outputs\[1\] both write export/openchat\.",
        ),
        (
            [
                {"format": "parquet"},
                {"format": "trl", "name": "x"},
                {"format": "axolotl", "name": "x"},
            ],
            r"outputs\[1\] and outputs\[2\] both write export/x\.eval\.jsonl",
        ),
        (
            [{"format": "trl", "name": "x"}, {"format": "jsonl", "name": "x"}],
            r"outputs\[0\] and outputs\[1\] are both recorded as 'x' in the manifest",
        ),
        (
            [{"format": "parquet"}, {"format": "parquet"}],
            r"outputs\[0\] and outputs\[1\] both write dataset/",
        ),
        (
            [{"format": "jsonl"}, {"format": "alpaca_json"}],
            r"outputs\[1\]\.format: alpaca_json cannot hold conversation records",
        ),
    ],
)
def test_collisions_and_kinds_name_the_outputs(specs, message) -> None:
    with pytest.raises(ValueError, match=message):
        check_outputs(outputs(*specs), "conversation")


def test_outputs_that_do_not_collide() -> None:
    check_outputs(
        outputs(
            {"format": "parquet"},
            {"format": "openchat_tokens"},
            {"format": "openchat_tokens", "name": "short", "max_length": 256},
            {"format": "llama_factory"},
            {"format": "llama_factory", "name": "lf_alpaca", "style": "alpaca"},
            # selfee.yaml: one name, two files; the manifest's path OUT/export/selfee names both
            {"format": "alpaca_json", "name": "selfee"},
            {"format": "jsonl", "name": "selfee"},
        ),
        "instruction",
    )
    # dreamer_zh.yaml's sharded exports
    check_outputs(
        outputs(
            {"format": "alpaca_json", "name": "firefly", "shards": {"count": 5}},
            {"format": "alpaca_json", "name": "firefly-train"},
        ),
        "instruction",
        split_used=False,
    )


def test_a_collision_is_a_config_error_naming_both(tmp_path, capsys) -> None:
    repo = Path(__file__).resolve().parents[2]
    recipe = {
        "name": "t",
        "output_dir": str(tmp_path / "out"),
        "sources": [
            {
                "name": "s",
                "format": "sharegpt",
                "path": str(repo / "data" / "sharegpt_sample.jsonl"),
            }
        ],
        "outputs": [
            {"format": "openchat_tokens"},
            {"format": "openchat_tokens", "max_length": 256},
        ],
    }
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"sftforge: {path}: outputs[0] and outputs[1] both write ")
    assert err.count("\n") == 1


def test_split_files_commit_together_or_not_at_all(tmp_path) -> None:
    layout = Layout(tmp_path, "x", (FileSpec(".json"), FileSpec(".jsonl")), split_sep="-")
    with SplitFiles(layout) as files:
        files.write("train", BatchPart([["1", "2"], ["3"]]))
        files.write_json("eval", "4")
    assert (tmp_path / "x-train.json").read_text() == "[\n1,\n2\n]\n"
    assert (tmp_path / "x-train.jsonl").read_text() == "3\n"
    assert (tmp_path / "x-eval.json").read_text() == "[\n4\n]\n"
    assert (tmp_path / "x-eval.jsonl").read_text() == ""
    assert files.splits == ["train", "eval"]
    before = {p.name: p.read_text() for p in tmp_path.iterdir()}
    with pytest.raises(RuntimeError), SplitFiles(layout) as files:
        files.write("train", BatchPart([["5"], []]))
        raise RuntimeError("a writer failed")
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == before  # no temporaries left
    with SplitFiles(layout) as files:
        files.open("train")
    files.remove_unwritten(layout.every_path(["train", "eval"]))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x-train.json", "x-train.jsonl"]
    assert (tmp_path / "x-train.json").read_text() == "[]\n"
