"""Alpaca-LoRA, SelFee and Guanaco examples against hand-computed ids on the project's tokenizer."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from training_support import all_train, conv, every_third_eval, instruction, records_fn

from sftforge.schemas.training import InstructionTokensOutput
from sftforge.tasks.outputs.instruction_tokens import IGNORE_INDEX, write_instruction_tokens
from sftforge.tasks.outputs.prompt_templates import (
    ALPACA_TEMPLATES,
    SELFEE_PROMPT,
    alpaca_prompt,
    selfee_target,
)

PREAMBLE = [  # "Below is an instruction that describes a task. Write … the request.\n\n"
    "Below", "Ġis", "Ġan", "Ġinstruction", "Ġthat", "Ġdescribes", "Ġa", "Ġtask", ".",
    "ĠWrite", "Ġa", "Ġresponse", "Ġthat", "Ġappropriately", "Ġcompletes", "Ġthe",
    "Ġrequest", ".", "Ċ", "Ċ",
]  # fmt: skip
PREAMBLE_INPUT = [  # "…a task, paired with an input that provides further context. Write …"
    "Below", "Ġis", "Ġan", "Ġinstruction", "Ġthat", "Ġdescribes", "Ġa", "Ġtask", ",",
    "Ġpaired", "Ġwith", "Ġan", "Ġinput", "Ġthat", "Ġprovides", "Ġfurther", "Ġcontext", ".",
    "ĠWrite", "Ġa", "Ġresponse", "Ġthat", "Ġappropriately", "Ġcompletes", "Ġthe",
    "Ġrequest", ".", "Ċ", "Ċ",
]  # fmt: skip
INSTRUCTION = ["###", "ĠInstruction", ":", "Ċ", "A", "d", "d", "Ġ2", "Ġand", "Ġ3", ".", "Ċ", "Ċ"]
INPUT = ["###", "ĠInput", ":", "Ċ", "2", "Ġ+", "Ġ3", "Ċ", "Ċ"]  # "### Input:\n2 + 3\n\n"
RESPONSE = ["###", "ĠResponse", ":", "Ċ"]  # "### Response:\n"


def _write(tmp_path, tok_config, records, splitter=all_train, **options):
    config = InstructionTokensOutput(format="instruction_tokens", tokenizer=tok_config, **options)
    result = write_instruction_tokens(tmp_path, config, records_fn(records), splitter)
    name = config.name or config.template
    rows = [
        json.loads(line)
        for line in (tmp_path / "export" / f"{name}.train.jsonl").read_text().splitlines()
    ]
    return result, rows


def _labels(ids: list[int], masked: int) -> list[int]:
    return [IGNORE_INDEX] * masked + ids[masked:]


def test_template_strings_are_alpaca_loras_and_selfees() -> None:
    assert alpaca_prompt(ALPACA_TEMPLATES["alpaca"], "Do X", "") == (
        "Below is an instruction that describes a task. Write a response that appropriately "
        "completes the request.\n\n### Instruction:\nDo X\n\n### Response:\n"
    )
    assert alpaca_prompt(ALPACA_TEMPLATES["alpaca_legacy"], "Do X", "on Y") == (
        "Below is an instruction that describes a task, paired with an input that provides "
        "further context. Write a response that appropriately completes the request.\n\n"
        "### Instruction:\nDo X\n\n### Input:\non Y\n\n### Response:"
    )
    assert alpaca_prompt(ALPACA_TEMPLATES["alpaca_short"], "Do X", "on Y") == (
        "### Instruction:\nDo X\n\n### Input:\non Y\n\n### Response:\n"
    )
    assert alpaca_prompt(SELFEE_PROMPT, "{braces} stay", "") .endswith(
        "### Instruction:\n{braces} stay\n\n### Answer:\n"
    )  # fmt: skip
    # SelFee's own example (train/feedback_utils.py), through make_full_target
    outputs = [
        {"output": "This is the first model output.", "feedback": "This is the feedback 1."},
        {"output": "This is the second output.", "feedback": "This is the feedback 2."},
    ]
    assert selfee_target(outputs) == (
        "This is the first model output.\n\n### Feedback 1:\nThis is the feedback 1."
        "\n\n### Revision 1:\nThis is the second output."
        "\n\n### Feedback 2:\nThis is the feedback 2."
    )


def test_alpaca_masks_the_prompt_and_appends_eos(tmp_path, tok_config, ids) -> None:
    record = instruction("Add 2 and 3.", output="5")
    result, (row,) = _write(tmp_path, tok_config, [record], template="alpaca")
    prompt = ["<s>", *PREAMBLE, *INSTRUCTION, *RESPONSE]
    expected = ids(*prompt, "5", "</s>")
    assert row["input_ids"] == expected
    assert row["labels"] == _labels(expected, len(prompt))
    assert row["attention_mask"] == [1] * len(expected)
    assert result["cutoff_len"] == 256 and result["counts"]["train_supervised_tokens"] == 2


def test_alpaca_with_input(tmp_path, tok_config, ids) -> None:
    record = instruction("Add 2 and 3.", input="2 + 3", output="5")
    _, (row,) = _write(tmp_path, tok_config, [record], template="alpaca")
    prompt = ["<s>", *PREAMBLE_INPUT, *INSTRUCTION, *INPUT, *RESPONSE]
    assert row["input_ids"] == ids(*prompt, "5", "</s>")
    assert row["labels"] == _labels(row["input_ids"], len(prompt))


def test_alpaca_legacy_and_short(tmp_path, tok_config, ids) -> None:
    record = instruction("Add 2 and 3.", output="5")
    _, (legacy,) = _write(tmp_path, tok_config, [record], template="alpaca_legacy")
    prompt = ["<s>", *PREAMBLE, *INSTRUCTION, "###", "ĠResponse", ":"]  # no newline
    assert legacy["input_ids"] == ids(*prompt, "5", "</s>")
    assert legacy["labels"] == _labels(legacy["input_ids"], len(prompt))
    _, (short,) = _write(tmp_path, tok_config, [record], template="alpaca_short")
    prompt = ["<s>", *INSTRUCTION, *RESPONSE]
    assert short["input_ids"] == ids(*prompt, "5", "</s>")
    assert short["labels"] == _labels(short["input_ids"], len(prompt))


def test_train_on_inputs_supervises_everything_but_bos(tmp_path, tok_config) -> None:
    record = instruction("Add 2 and 3.", output="5")
    _, (row,) = _write(tmp_path, tok_config, [record], template="alpaca", train_on_inputs=True)
    assert row["labels"] == [IGNORE_INDEX] + row["input_ids"][1:]


def test_eos_only_when_it_fits_and_truncation_at_cutoff(tmp_path, tok_config, ids) -> None:
    record = instruction("Add 2 and 3.", output="5")
    prompt = ["<s>", *INSTRUCTION, *RESPONSE]  # alpaca_short: 18 tokens, "5" is the 19th
    _, (exact,) = _write(tmp_path, tok_config, [record], template="alpaca_short", cutoff_len=19)
    assert exact["input_ids"] == ids(*prompt, "5")  # no room for EOS: not appended
    _, (room,) = _write(tmp_path, tok_config, [record], template="alpaca_short", cutoff_len=20)
    assert room["input_ids"] == ids(*prompt, "5", "</s>")
    long = instruction("Add 2 and 3.", output="5 " * 50)
    result, (cut,) = _write(tmp_path, tok_config, [long], template="alpaca_short", cutoff_len=30)
    assert len(cut["input_ids"]) == 30 and cut["input_ids"][-1] != ids("</s>")[0]
    assert result["counts"]["truncated"] == 1
    short_prompt = instruction("Add 2 and 3. " * 40, output="5")  # the prompt fills the cutoff
    result, rows = _write(tmp_path, tok_config, [short_prompt], template="alpaca", cutoff_len=32)
    assert rows == [] and result["counts"]["dropped_no_supervision"] == 1


def test_a_token_across_the_prompt_boundary_is_retokenized(tmp_path, tok_config, ids) -> None:
    # "### Response:\n" + "    return x": the newline and the indentation tokenize as one
    # token (ĊĠĠĠ). Alpaca-LoRA masked len(tokenize(prompt)) tokens and so never learned the
    # indentation; here the segments are tokenized apart and the boundary is exact.
    record = instruction("Add 2 and 3.", output="    return x")
    result, (row,) = _write(tmp_path, tok_config, [record], template="alpaca_short")
    prompt = ["<s>", *INSTRUCTION, *RESPONSE]
    assert row["input_ids"] == ids(*prompt, "ĠĠĠ", "Ġreturn", "Ġx", "</s>")
    assert row["labels"] == _labels(row["input_ids"], len(prompt))
    assert result["counts"]["retokenized_at_boundaries"] == 1


SELFEE_RECORD = instruction(
    "Add 2 and 3.",
    output="5",
    outputs=[
        {"output": "4", "feedback": "Wrong."},
        {"output": "5", "feedback": "Revision is not needed."},
    ],
    iteration=2,
    iteration_truncated=False,
)
SELFEE_SOURCE = ["<s>", *PREAMBLE, *INSTRUCTION, "###", "ĠAnswer", ":", "Ċ"]


def test_selfee_target_is_answer_feedback_revision_feedback(tmp_path, tok_config, ids) -> None:
    _, (row,) = _write(tmp_path, tok_config, [SELFEE_RECORD], template="selfee")
    target = [
        "4", "Ċ", "Ċ", "###", "ĠFeedback", "Ġ1", ":", "Ċ", "W", "r", "ong", ".",
        "Ċ", "Ċ", "###", "ĠRevision", "Ġ1", ":", "Ċ", "5",
        "Ċ", "Ċ", "###", "ĠFeedback", "Ġ2", ":", "Ċ",
        "R", "ev", "ision", "Ġis", "Ġn", "ot", "Ġn", "e", "e", "de", "d", ".",
    ]  # fmt: skip
    assert row["input_ids"] == ids(*SELFEE_SOURCE, *target, "</s>")
    assert row["labels"] == _labels(row["input_ids"], len(SELFEE_SOURCE))


def test_selfee_answer_only_and_failed_augmentations(tmp_path, tok_config, ids) -> None:
    failed = {**SELFEE_RECORD, "id": "i2", "outputs": [], "status": "failed"}
    result, (row,) = _write(
        tmp_path, tok_config, [SELFEE_RECORD, failed], template="selfee_answer_only"
    )
    assert row["input_ids"] == ids(*SELFEE_SOURCE, "4", "</s>")  # SelFee: outputs[0]
    assert row["labels"] == _labels(row["input_ids"], len(SELFEE_SOURCE))
    assert result["counts"]["skipped_no_outputs"] == 1


GUANACO = conv(
    ("user", "Hi"), ("assistant", "Hello."), ("user", "Tell me a joke."), ("assistant", "No.")
)
# "### Human: Hi### Assistant: Hello.### Human: Tell me a joke.### Assistant: No."
GUANACO_TOKENS = [
    "###", "ĠHuman", ":", "Ġ", "H", "i",
    "###", "ĠAssistant", ":", "Ġ", "H", "el", "lo", ".",
    "###", "ĠHuman", ":", "ĠT", "el", "l", "Ġme", "Ġa", "Ġj", "o", "ke", ".",
    "###", "ĠAssistant", ":", "ĠNo", ".",
]  # fmt: skip


def test_guanaco_trains_on_the_whole_dialogue(tmp_path, tok_config, ids) -> None:
    _, (row,) = _write(tmp_path, tok_config, [GUANACO], template="guanaco")
    assert row["input_ids"] == ids("<s>", *GUANACO_TOKENS, "</s>")
    assert row["labels"] == _labels(row["input_ids"], 1)  # all but BOS, as QLoRA's oasst1 setup


def test_guanaco_can_mask_the_human_turns(tmp_path, tok_config, ids) -> None:
    _, (row,) = _write(tmp_path, tok_config, [GUANACO], template="guanaco", mask_human=True)
    assert row["input_ids"] == ids("<s>", *GUANACO_TOKENS, "</s>")  # same ids either way
    supervised = [t for t, label in zip(row["input_ids"], row["labels"], strict=True) if label >= 0]
    assert supervised == ids("Ġ", "H", "el", "lo", ".", "ĠNo", ".", "</s>")


def test_files_splits_and_parquet_twin(tmp_path, tok_config) -> None:
    records = [instruction(f"Task {i}.", output=f"Done {i}.", id=f"i{i}") for i in range(9)]
    result, rows = _write(tmp_path, tok_config, records, every_third_eval, template="alpaca")
    export = tmp_path / "export"
    evals = [json.loads(line) for line in (export / "alpaca.eval.jsonl").read_text().splitlines()]
    assert [r["id"] for r in evals] == ["i0", "i3", "i6"] and len(rows) == 6
    table = pq.read_table(export / "alpaca.train.parquet").to_pylist()
    assert [{k: v for k, v in r.items() if k != "truncated"} for r in table] == rows
    assert result["counts"]["eval_examples"] == 3 and result["counts"]["train_examples"] == 6


def test_options_must_fit_the_template() -> None:
    with pytest.raises(ValueError, match="mask_human"):
        InstructionTokensOutput(format="instruction_tokens", template="alpaca", mask_human=True)
    with pytest.raises(ValueError, match="mask_human"):
        InstructionTokensOutput(
            format="instruction_tokens", template="guanaco", train_on_inputs=True
        )


def test_real_selfee_records(tmp_path, tok_config, selfee_records) -> None:
    """All 2,777 SelFee CoNaLa chains: checks pass, targets decode to make_full_target + EOS."""
    from sftforge.tasks.outputs.tokenizer import load_tokenizer

    tok = load_tokenizer(tok_config)
    result, rows = _write(tmp_path, tok_config, selfee_records, template="selfee", cutoff_len=2048)
    assert len(rows) == len(selfee_records) == 2777
    for record, row in zip(selfee_records, rows, strict=True):
        supervised = [t for t in row["labels"] if t != IGNORE_INDEX]
        want = selfee_target(record["outputs"])
        if row["input_ids"][-1] == tok.eos_id:
            assert tok.decode(supervised) == want + "</s>"
        else:  # cut at cutoff_len
            assert want.startswith(tok.decode(supervised).rstrip("\ufffd"))
    counts = result["counts"]
    assert counts["train_examples"] == 2777 and counts["retokenized_at_boundaries"] >= 0


def test_a_broken_example_stops_the_write_and_is_named(tmp_path, tok_config, monkeypatch) -> None:
    """§6 runs over the whole batch at once; the failing example is still named, and no file
    is left behind for a trainer to pick up."""
    from sftforge.tasks.outputs import instruction_tokens
    from sftforge.tasks.outputs.token_checks import TrainingFileError

    real, calls = instruction_tokens.build_example, []

    def stray_eos_in_the_fifth(ids, mask, *, eos_id, **kw):  # a writer bug, in record i4
        ids, mask, truncated, eos_added = real(ids, mask, eos_id=eos_id, **kw)
        calls.append(1)
        if len(calls) == 5:
            ids = [ids[0], eos_id, *ids[2:]]
        return ids, mask, truncated, eos_added

    records = [instruction(f"Task {i}.", output=f"Done {i}.", id=f"i{i}") for i in range(8)]
    monkeypatch.setattr(instruction_tokens, "build_example", stray_eos_in_the_fifth)
    with pytest.raises(TrainingFileError, match="^i4: special token id .* occurs 2 times"):
        _write(tmp_path, tok_config, records, template="alpaca")
    assert not list((tmp_path / "export").iterdir())
