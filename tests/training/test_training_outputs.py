"""The config models, and training outputs written through the format registry."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError
from training_support import TOKENIZER_DIR, conv, instruction, records_fn

from sftforge.schemas.recipe import AnyOutput, SplitConfig
from sftforge.schemas.training import (
    TRAINING_FORMATS,
    AxolotlOutput,
    CalibrationOutput,
    InstructionTokensOutput,
    LlamaFactoryOutput,
    OpenChatTokensOutput,
    TrainingOutputConfig,
    TrlOutput,
)
from sftforge.tasks.outputs.final_records import FinalRecords, Splitter
from sftforge.tasks.outputs.prompt_templates import INSTRUCTION_TEMPLATES, TEMPLATE_KINDS
from sftforge.tasks.outputs.registry import check_outputs, write_output


class _Outputs(BaseModel):
    """The recipe's `outputs:` once the training models join OutputConfig's union."""

    outputs: list[AnyOutput]


RECIPE_OUTPUTS = f"""
outputs:
  - format: parquet
  - format: sharegpt_json
  - format: openchat_tokens
    template: openchat_8192
    long_conversations: split
    tokenizer: {{path: {TOKENIZER_DIR}, special_tokens: ["<|end_of_turn|>"]}}
  - format: openchat_tokens
    name: mine
    template:
      name: mine
      user_prefix: "USER: "
      assistant_prefix: "ASSISTANT: "
      eot_token: "</s>"
      max_length: 4096
  - format: instruction_tokens
    template: guanaco
    mask_human: true
  - format: trl
    style: prompt_completion
  - format: axolotl
  - format: llama_factory
    style: alpaca
  - format: calibration
    dataset: wikitext
    subset: wikitext-2-raw-v1
"""


def test_training_outputs_join_the_recipes_output_union() -> None:
    parsed = _Outputs.model_validate(yaml.safe_load(RECIPE_OUTPUTS))
    kinds = [type(o).__name__ for o in parsed.outputs]
    assert kinds == [
        "OutputConfig",
        "OutputConfig",
        "OpenChatTokensOutput",
        "OpenChatTokensOutput",
        "InstructionTokensOutput",
        "TrlOutput",
        "AxolotlOutput",
        "LlamaFactoryOutput",
        "CalibrationOutput",
    ]
    assert parsed.outputs[3].template.eot_token == "</s>"
    # the union alone validates too
    assert isinstance(
        TypeAdapter(TrainingOutputConfig).validate_python({"format": "trl"}), TrlOutput
    )
    assert {typing.get_args(m.model_fields["format"].annotation)[0] for m in (
        OpenChatTokensOutput, InstructionTokensOutput, TrlOutput, AxolotlOutput,
        LlamaFactoryOutput, CalibrationOutput)} == TRAINING_FORMATS  # fmt: skip


@pytest.mark.parametrize(
    "bad",
    [
        {"format": "openchat_tokens", "context": 2048},  # unknown key
        {"format": "openchat_tokens", "template": "vicuna"},
        {"format": "openchat_tokens", "long_conversations": "drop"},
        {"format": "instruction_tokens", "template": "alpaca", "cutoff_len": 1},
        {"format": "trl", "style": "text"},
        {"format": "calibration", "nsamples": 0},
        {"format": "axolotl", "field_messages": "bad name"},
    ],
)
def test_bad_options_are_rejected(bad) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(TrainingOutputConfig).validate_python(bad)


def test_template_names_agree_with_the_renderers() -> None:
    literal = typing.get_args(InstructionTokensOutput.model_fields["template"].annotation)
    assert set(literal) == set(INSTRUCTION_TEMPLATES) == set(TEMPLATE_KINDS)


def test_kinds_are_checked_up_front() -> None:
    selfee = InstructionTokensOutput(format="instruction_tokens", template="selfee")
    check_outputs([selfee], "augmented")
    with pytest.raises(
        ValueError, match="template 'selfee' needs augmented records; .* conversation"
    ):
        check_outputs([selfee], "conversation")
    alpaca = InstructionTokensOutput(format="instruction_tokens", template="alpaca")
    with pytest.raises(ValueError, match="augmented or instruction"):
        check_outputs([alpaca], "conversation")
    for kind in ("conversation", "instruction", "augmented"):
        check_outputs([OpenChatTokensOutput(format="openchat_tokens")], kind)


def test_every_format_through_the_entry_point_with_the_recipes_splitter(tmp_path: Path) -> None:
    records = [
        conv(("user", f"Question {i}?"), ("assistant", f"Answer {i}. " * 30), id=f"c{i}")
        for i in range(20)
    ]
    splitter = Splitter(SplitConfig(eval_size=4), seed=1)
    splitter.prepare(iter(records))
    tokenizer = {"path": str(TOKENIZER_DIR)}
    specs = [
        {
            "format": "openchat_tokens",
            "tokenizer": {**tokenizer, "special_tokens": ["<|end_of_turn|>"]},
        },
        {"format": "instruction_tokens", "template": "guanaco", "tokenizer": tokenizer},
        {"format": "trl"},
        {"format": "axolotl"},
        {"format": "llama_factory"},
        {"format": "calibration", "nsamples": 3, "seqlen": 16, "tokenizer": tokenizer},
    ]
    adapter = TypeAdapter(TrainingOutputConfig)
    for spec in specs:
        config = adapter.validate_python(spec)
        entry = write_output(
            FinalRecords.of_records(tmp_path, "conversation", 5, splitter, records_fn(records)),
            config,
        )
        assert entry["format"] == spec["format"] and entry["counts"]
        assert all(Path(f).exists() for f in entry["files"])
        if spec["format"] != "calibration":
            assert any(".eval." in f for f in entry["files"]), entry["files"]
            evals = sum(v for k, v in entry["counts"].items() if k.startswith("eval_") and (
                k.endswith("_rows") or k.endswith("_examples")))  # fmt: skip
            assert evals == 4


def test_instruction_records_through_the_entry_point(tmp_path: Path) -> None:
    records = [instruction(f"Say {i}.", output=f"{i}", id=f"i{i}") for i in range(3)]
    config = InstructionTokensOutput(
        format="instruction_tokens", template="alpaca", tokenizer={"path": str(TOKENIZER_DIR)}
    )
    entry = write_output(
        FinalRecords.of_records(tmp_path, "instruction", 0, lambda r: "train", records_fn(records)),
        config,
    )
    assert entry["counts"]["train_examples"] == 3
    assert entry["files"] == [
        str(tmp_path / "export" / "alpaca.train.jsonl"),
        str(tmp_path / "export" / "alpaca.train.parquet"),
    ]
