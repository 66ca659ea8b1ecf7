"""The recipe: one YAML file that declares sources, steps, outputs and the runner."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sftforge.schemas.config_errors import KeyedError
from sftforge.schemas.steps import StepConfig, rebuild_with_steps
from sftforge.schemas.training import TrainingOutput

# Readers that need code rather than a mapping (tasks/converters.py): what each yields.
CONVERTER_KINDS = {
    "guanaco_text": "conversation",  # OASST1 as `### Human: …### Assistant: …` text
    "code_contests": "instruction",  # description -> instruction, a Python solution -> output
}


READ_STAGE = "read"  # the first stage of every run: the sources, read (tasks/pipeline/plan.py)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ShareGPTFields(_Strict):
    """Where a ShareGPT-style record keeps its parts (FastChat's names by default)."""

    id: str = "id"
    conversations: str = "conversations"
    role: str = "from"
    content: str = "value"
    model: str = "model"


Template = str | list[str]  # a list is a choice: the first alternative that renders non-empty


class InstructionMapping(_Strict):
    """How a row becomes {instruction, input, output}: templates over the row's fields.

    `{field}`, `{a.b}`, `{a[0]}`, filters `{x|lines}` (join a list with newlines),
    `{x|nospace}`, `{x|strip}`, `{x|first}`; constant text around them is kept
    (SelFee's CoNaLa prefix). `{{` and `}}` are literal braces.
    """

    instruction: Template
    input: Template = ""
    output: Template = ""
    id: str | None = None  # a template for a stable id; default `<source>-<row>[.<element>]`


class SourceConfig(_Strict):
    # Built at first use, when the registry of steps (for `preprocess`) is complete.
    model_config = ConfigDict(extra="forbid", defer_build=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_\-]+$")
    # sharegpt: JSON list / JSONL dumps and saved share pages (.html), read as a stream.
    # hf: anything datasets.load_dataset reads (an HF dataset id, or local files by path).
    # couplets: a folder with parallel in.txt / out.txt (read with load_dataset("text")).
    format: Literal["sharegpt", "hf", "couplets"]
    # A file, a glob or a directory (relative to the working directory).
    path: str | None = None
    # An HF dataset id (format: hf), e.g. "anon8231489123/ShareGPT_Vicuna_unfiltered".
    dataset: str | None = None
    subset: str | None = None
    split: str = "train"
    fields: ShareGPTFields = ShareGPTFields()
    license: str | None = None

    # --- instruction sources ---
    mapping: InstructionMapping | None = None
    converter: Literal["guanaco_text", "code_contests"] | None = None
    # One row per element of this list field (the element replaces the field in templates).
    explode: str | None = None
    # The `dataset` column (SelFee's merge naming); default: the source's name.
    dataset_name: str | None = None
    # Fields of the input row kept in `meta` (e.g. FLAN's task, Firefly's kind).
    meta_fields: list[str] = Field(default_factory=list)
    # A conversation source feeding an instruction recipe: these steps run on it first
    # (the same steps as a conversation recipe), then its first user/assistant pair is kept.
    first_pair: bool = False
    preprocess: list[StepConfig] = Field(default_factory=list)

    @property
    def kind(self) -> str:
        if self.converter:
            kind = CONVERTER_KINDS[self.converter]
        elif self.mapping is not None or self.format == "couplets":
            kind = "instruction"
        else:
            kind = "conversation"
        return "instruction" if self.first_pair else kind

    @model_validator(mode="after")
    def _path_or_dataset(self) -> SourceConfig:
        if self.format in ("sharegpt", "couplets") and not self.path:
            raise ValueError(f"a {self.format} source needs a path")
        if self.format == "hf" and not (self.path or self.dataset):
            raise ValueError("an hf source needs a dataset id or a path")
        if self.path and self.dataset:
            raise ValueError("give either path or dataset, not both")
        if self.mapping is not None and self.converter:
            raise ValueError("give either a mapping or a converter, not both")
        if self.first_pair and (self.mapping is not None or self.converter == "code_contests"):
            raise ValueError("first_pair applies to conversation sources only")
        if self.preprocess and not self.first_pair:
            raise ValueError("preprocess steps are for first_pair sources")
        return self


class ShardsConfig(_Strict):
    # One file per shard and split; validation lists every file an output may write, so
    # an absurd count would hang `sftforge validate`.
    count: int = Field(ge=1, le=10_000)
    # Spread each value of this field evenly over the shards (`dataset` or a meta field).
    stratify_by: str | None = None


class OutputConfig(_Strict):
    # parquet: OUT/dataset/[<split>/]part-NNNNN.parquet (the final stage's records);
    # jsonl: OUT/export/<name>[.<split>].jsonl in sftforge's schema;
    # sharegpt_json: FastChat/OpenChat's [{id, conversations: [{from, value}]}];
    # alpaca_json: [{instruction, input, output}] (Alpaca-LoRA's / DreamerGPT's finetune.py);
    # guanaco_jsonl: {"text": "### Human: …### Assistant: …"} lines (Guanaco / QLoRA).
    format: Literal["parquet", "jsonl", "sharegpt_json", "alpaca_json", "guanaco_jsonl"]
    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_\-.]+$")  # file stem
    shards: ShardsConfig | None = None
    # Only records of these datasets (DreamerGPT ships one file per set); None: all.
    datasets: list[str] | None = None


# Everything `outputs:` may hold: files in our formats, and training files (schemas/training.py).
AnyOutput = Annotated[OutputConfig | TrainingOutput, Field(discriminator="format")]


class SplitConfig(_Strict):
    """A seeded train/eval split of the final records (by a hash of seed and id)."""

    eval_size: int | None = Field(default=None, ge=0)
    eval_fraction: float | None = Field(default=None, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _one(self) -> SplitConfig:
        if (self.eval_size is None) == (self.eval_fraction is None):
            raise ValueError("give exactly one of eval_size and eval_fraction")
        return self


class RunnerConfig(_Strict):
    # local: a process pool on this machine; dask: an existing Dask cluster at `address`
    # (prefect-dask's DaskTaskRunner), shards as the unit of work, OUT on shared storage.
    kind: Literal["local", "dask"] = "local"
    address: str | None = None  # tcp://scheduler:8786 for kind: dask
    # Worker processes for shard work; None means the machine's cores.
    # Bounded: a process pool starts its workers at once, so a typo would fork-bomb.
    workers: int | None = Field(default=None, ge=1, le=1024)
    # Input records per shard. Shards are the unit of parallel work and of resume.
    shard_size: int = Field(default=2000, ge=1)


class ReadCheckConfig(_Strict):
    """When the records a source loses at read fail the run (`sftforge validate` applies it
    to its sample). A source whose every record is rejected always fails the run."""

    # The largest share of a source's records rejected at read that a run accepts; the
    # default 1.0 fails a run only when every record of a source is rejected.
    max_rejected_share: float = Field(default=1.0, ge=0.0, le=1.0)
    # Per source name, a share of its own in place of `max_rejected_share`.
    per_source: dict[str, Annotated[float, Field(ge=0.0, le=1.0)]] = Field(default_factory=dict)


class PartitionsConfig(_Strict):
    """Backfill partitions: groups of one source's input files, by a date in their path.

    `pattern: dumps/{date}/*.json` — `{date}` matches YYYY-MM-DD; each date is a partition,
    run as its own flow run with that source's path narrowed to the partition's files.
    """

    source: str
    pattern: str


class Recipe(_Strict):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_\-.]+$")
    description: str | None = None
    # Modules that register steps of the recipe's own (`@register_step`), imported first.
    plugins: list[str] = Field(default_factory=list)
    output_dir: str
    seed: int = 0
    sources: list[SourceConfig] = Field(min_length=1)
    steps: list[StepConfig] = Field(default_factory=list)
    outputs: list[AnyOutput] = Field(default_factory=lambda: [OutputConfig(format="parquet")])
    split: SplitConfig | None = None
    runner: RunnerConfig = RunnerConfig()
    partitions: PartitionsConfig | None = None
    read_check: ReadCheckConfig = ReadCheckConfig()

    @property
    def source_kind(self) -> str:
        return self.sources[0].kind

    @property
    def final_kind(self) -> str:
        """The kind of record the last step puts out (what the outputs must hold)."""
        kind = self.source_kind
        for step in self.steps:
            kind = step.output_kind(kind)
        return kind

    @classmethod
    def from_yaml(
        cls,
        path: str | Path,
        sets: list[str] | None = None,
        inputs: dict[str, str] | None = None,
        out: str | None = None,
    ) -> Recipe:
        """A recipe file, validated, with the CLI's `--set`, `--input` and `--out` applied;
        a problem is a ConfigError naming the file and the key, as `sftforge validate` says."""
        from sftforge.schemas.loading import load_recipe  # that module imports this one

        return load_recipe(path, sets=sets, inputs=inputs, out=out)

    @field_validator("output_dir")
    @classmethod
    def _a_folder(cls, value: str) -> str:
        if not value.strip():  # Path("") is the working directory: a run would spill there
            raise ValueError("must name a directory")
        return value

    @model_validator(mode="after")
    def _unique_names(self) -> Recipe:
        seen: set[str] = set()
        for i, source in enumerate(self.sources):
            if source.name in seen:
                raise KeyedError(f"sources[{i}].name", f"two sources are named {source.name!r}")
            seen.add(source.name)
        for name in self.read_check.per_source:
            if name not in seen:
                raise KeyedError(
                    f"read_check.per_source.{name}",
                    f"no source named {name!r} (have {sorted(seen)})",
                )
        if self.partitions is not None and self.partitions.source not in seen:
            raise KeyedError(
                "partitions.source",
                f"no source named {self.partitions.source!r} (have {sorted(seen)})",
            )
        kinds = {s.kind for s in self.sources}
        if len(kinds) > 1:
            named = ", ".join(f"{s.name}: {s.kind}" for s in self.sources)
            raise KeyedError("sources", f"must all give one kind of record ({named})")
        # Stage names are folders of OUT: compared as a case-insensitive file system
        # (macOS, Windows) would, where `Dedup` and `dedup` are one folder. Names the output
        # layout takes are checked where that layout is known (tasks/pipeline/request.py).
        stages: dict[str, int] = {}
        for i, step in enumerate(self.steps):
            key = f"steps[{i}].{'name' if step.name else 'step'}"
            if step.stage.casefold() == READ_STAGE:
                raise KeyedError(key, f"stage name {step.stage!r} is the stage that reads sources")
            folded = step.stage.casefold()
            if folded in stages:
                raise KeyedError(
                    key,
                    f"stage name {step.stage!r} is used twice (steps[{stages[folded]}] too); "
                    "give the step a unique `name`",
                )
            stages[folded] = i
        return self


rebuild_with_steps(SourceConfig, Recipe)
