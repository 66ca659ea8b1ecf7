"""The one registry of output formats: for each `format:` of a recipe's `outputs`, the record
kinds it takes, the files it writes (and so its name after defaults), and its writer.

The pipeline asks only this module: `check_outputs` when a recipe is validated (kinds, and no
two outputs writing the same files or manifest entry), `write_outputs` at the end of a run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sftforge.schemas.recipe import OutputConfig, Recipe
from sftforge.schemas.training import InstructionTokensOutput, LlamaFactoryOutput, TrainingOutput
from sftforge.tasks.outputs import calibration, instruction_tokens, json_exports, token_files
from sftforge.tasks.outputs import trainer_exports as exports
from sftforge.tasks.outputs.final_records import FinalRecords
from sftforge.tasks.outputs.prompt_templates import TEMPLATE_KINDS
from sftforge.tasks.outputs.split_files import Layout

AnyOutput = OutputConfig | TrainingOutput
ANY_KIND = frozenset({"conversation", "instruction", "augmented"})
_INSTRUCTIONS = frozenset({"instruction", "augmented"})
_SPLITS = ("train", "eval")


@dataclass(frozen=True)
class OutputFormat:
    """One value of `format:`."""

    # The output's manifest entry: a dict of its files and counts (training files), or the path
    # its files share (sftforge's own formats, `training=False`).
    write: Callable[[FinalRecords, Any], Any]
    # Its files in a folder, for (config, split_used); None: the dataset folder (parquet).
    layout: Callable[[Path, Any, bool], Layout] | None
    kinds: Callable[[Any], frozenset[str]] = lambda config: ANY_KIND
    training: bool = True
    # What else it writes or replaces beside its split files (relative to OUT/export).
    extra: Callable[[Any, str], list[str]] = lambda config, name: []
    # One line for `sftforge steps` and `--help` (flows/step_list.py).
    summary: str = ""


def _training(write: Callable[..., Any]) -> Callable[[FinalRecords, Any], Any]:
    """A training writer's (out, config, records, splitter) from the run's final records."""
    return lambda final, config: write(final.out, config, final.records, final.splitter)


def _llama_factory_entries(config: LlamaFactoryOutput, name: str) -> list[str]:
    # dataset_info.json is shared by every LLaMA-Factory output; its keys are each one's own.
    return [f"dataset_info.json[{key}]" for key in (name, f"{name}_eval")]


_EXPORT = OutputFormat(json_exports.write_export, json_exports.output_layout, training=False)
FORMATS: dict[str, OutputFormat] = {
    "parquet": OutputFormat(
        json_exports.write_parquet,
        None,
        training=False,
        summary="the final records as OUT/dataset/[<split>/]part-NNNNN.parquet (always written)",
    ),
    "jsonl": replace(_EXPORT, summary="OUT/export/<name>.jsonl in sftforge's own record schema"),
    "sharegpt_json": replace(
        _EXPORT, summary="FastChat/OpenChat's [{id, conversations: [{from, value}]}] JSON"
    ),
    "guanaco_jsonl": replace(
        _EXPORT, summary='Guanaco/QLoRA\'s {"text": "### Human: …### Assistant: …"} lines'
    ),
    "alpaca_json": OutputFormat(
        _EXPORT.write,
        _EXPORT.layout,
        lambda c: _INSTRUCTIONS,
        training=False,
        summary="Alpaca/SelFee/DreamerGPT's [{instruction, input, output}] JSON",
    ),
    "openchat_tokens": OutputFormat(
        _training(token_files.write_openchat_tokens),
        # every file it may write or remove (text files and parquet even when turned off)
        lambda folder, c, _: token_files.output_layout(folder, c, every_file=True),
        summary="OpenChat's [[token_ids, supervise_mask], …] training files",
    ),
    "instruction_tokens": OutputFormat(
        _training(instruction_tokens.write_instruction_tokens),
        lambda folder, c, _: instruction_tokens.output_layout(folder, c),
        lambda c: TEMPLATE_KINDS[c.template],
        summary="prompt/target rows {input_ids, attention_mask, labels} by a prompt template",
    ),
    # TRL's standard prompt_completion form takes single-turn conversations only; the others
    # are counted as skipped, so every kind is accepted.
    "trl": OutputFormat(
        _training(exports.write_export),
        lambda folder, c, _: exports.output_layout(folder, c),
        summary='TRL SFTTrainer data: {"messages": […]} or {"prompt", "completion"}',
    ),
    "axolotl": OutputFormat(
        _training(exports.write_export),
        lambda folder, c, _: exports.output_layout(folder, c),
        extra=lambda c, name: [f"{name}.yaml"],
        summary="axolotl `type: chat_template` JSONL and its `datasets:` entry (<name>.yaml)",
    ),
    "llama_factory": OutputFormat(
        _training(exports.write_export),
        lambda folder, c, _: exports.output_layout(folder, c),
        extra=_llama_factory_entries,
        summary="LLaMA-Factory data files and their entries in dataset_info.json",
    ),
    "calibration": OutputFormat(
        lambda final, c: calibration.write_calibration(final.out, c, final.records, final.seed),
        lambda folder, c, _: calibration.output_layout(folder, c),
        summary="GPTQ calibration windows of token ids (as GPTQ-for-LLaMa draws them)",
    ),
}


def output_key(output: AnyOutput) -> str:
    """The name an output is recorded under in the manifest's `outputs`."""
    return "parquet" if output.format == "parquet" else output.name or output.format


def output_name(output: AnyOutput) -> str:
    """The name its files are written under, after defaults (OUT/export/<name>…; `dataset`
    for parquet): a template's name, `alpaca`, `records`, the format's name …"""
    layout = FORMATS[output.format].layout
    return "dataset" if layout is None else layout(Path(), output, False).name


def output_files(output: AnyOutput, split_used: bool | None = None) -> set[str]:
    """Everything the output writes or replaces, relative to OUT, for a recipe that splits its
    records (`split_used`), or does not, or either (None)."""
    fmt = FORMATS[output.format]
    if fmt.layout is None:
        return {"dataset/"}
    found: set[str] = set()
    for used in (True, False) if split_used is None else (split_used,):
        layout = fmt.layout(Path("export"), output, used)
        found.update(str(path) for path in layout.every_path(_SPLITS))
        found.update(f"export/{extra}" for extra in fmt.extra(output, layout.name))
    return found


def _check_kind(output: AnyOutput, kind: str, where: str) -> None:
    fmt = FORMATS[output.format]
    allowed = fmt.kinds(output)
    if kind in allowed:
        return
    if not fmt.training:
        raise ValueError(f"{where}.format: {output.format} cannot hold {kind} records")
    what = output.format
    if isinstance(output, InstructionTokensOutput):
        what = f"{output.format} template {output.template!r}"
    raise ValueError(
        f"{where}: {what} needs {' or '.join(sorted(allowed))} records; "
        f"this recipe's final records are {kind}"
    )


def check_outputs(
    outputs: Sequence[AnyOutput], kind: str, *, split_used: bool | None = None
) -> None:
    """Raise ValueError (one line, for `sftforge validate`) naming the output by index when
    it cannot take `kind` records, and naming both when two of them would write the same file
    or be recorded under the same manifest key (the later would silently replace the other)."""
    for i, output in enumerate(outputs):
        _check_kind(output, kind, f"outputs[{i}]")
    owner: dict[str, int] = {}
    for i, output in enumerate(outputs):
        for path in sorted(output_files(output, split_used)):
            if path in owner:
                raise ValueError(
                    f"outputs[{owner[path]}] and outputs[{i}] both write {path}; "
                    "give one of them another name"
                )
            owner[path] = i
    for i, output in enumerate(outputs):
        for j, earlier in enumerate(outputs[:i]):
            if output_key(output) == output_key(earlier) and not _same_entry(output, earlier):
                raise ValueError(
                    f"outputs[{j}] and outputs[{i}] are both recorded as "
                    f"{output_key(output)!r} in the manifest; give one of them another name"
                )


def _same_entry(a: AnyOutput, b: AnyOutput) -> bool:
    """Exports of one name record the same path, OUT/export/<name> (selfee.json beside
    selfee.jsonl): one manifest entry names both."""
    both_exports = not FORMATS[a.format].training and not FORMATS[b.format].training
    return both_exports and output_name(a) == output_name(b)


def write_output(final: FinalRecords, output: AnyOutput) -> Any:
    """Write one output from the final records; return its manifest entry."""
    _check_kind(output, final.kind, output_key(output))
    return FORMATS[output.format].write(final, output)


def write_outputs(
    out: Path, final_stage: str, kind: str, shards: int, recipe: Recipe
) -> dict[str, Any]:
    """Every output of the recipe from the final stage's shards: {output_key: entry}."""
    final = FinalRecords.of_stage(out, final_stage, kind, shards, recipe.split, recipe.seed)
    return {output_key(output): write_output(final, output) for output in recipe.outputs}
