"""The recipe: one YAML file that declares sources, steps, outputs and the runner."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.steps import StepConfig


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ShareGPTFields(_Strict):
    """Where a ShareGPT-style record keeps its parts (FastChat's names by default)."""

    id: str = "id"
    conversations: str = "conversations"
    role: str = "from"
    content: str = "value"
    model: str = "model"


class SourceConfig(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_\-]+$")
    # sharegpt: JSON list / JSONL dumps and saved share pages (.html), read as a stream.
    # hf: anything datasets.load_dataset reads (an HF dataset id, or local files by path).
    format: Literal["sharegpt", "hf"]
    # A file, a glob or a directory (relative to the working directory).
    path: str | None = None
    # An HF dataset id (format: hf), e.g. "anon8231489123/ShareGPT_Vicuna_unfiltered".
    dataset: str | None = None
    subset: str | None = None
    split: str = "train"
    fields: ShareGPTFields = ShareGPTFields()
    license: str | None = None

    @model_validator(mode="after")
    def _path_or_dataset(self) -> SourceConfig:
        if self.format == "sharegpt" and not self.path:
            raise ValueError("a sharegpt source needs a path")
        if self.format == "hf" and not (self.path or self.dataset):
            raise ValueError("an hf source needs a dataset id or a path")
        if self.path and self.dataset:
            raise ValueError("give either path or dataset, not both")
        return self


class OutputConfig(_Strict):
    # parquet: OUT/dataset/part-NNNNN.parquet (the final stage's records);
    # sharegpt_json: OUT/export/sharegpt.json, FastChat/OpenChat's
    #   {id, conversations: [{from, value}]};
    # jsonl: OUT/export/conversations.jsonl, one record per line in sftforge's schema.
    format: Literal["parquet", "sharegpt_json", "jsonl"]


class RunnerConfig(_Strict):
    kind: Literal["local"] = "local"
    # Worker processes for shard work; None means the machine's cores.
    workers: int | None = Field(default=None, ge=1)
    # Input records per shard. Shards are the unit of parallel work and of resume.
    shard_size: int = Field(default=2000, ge=1)


class Recipe(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_\-.]+$")
    description: str | None = None
    output_dir: str
    seed: int = 0
    sources: list[SourceConfig] = Field(min_length=1)
    steps: list[StepConfig] = Field(default_factory=list)
    outputs: list[OutputConfig] = Field(default_factory=lambda: [OutputConfig(format="parquet")])
    runner: RunnerConfig = RunnerConfig()

    @model_validator(mode="after")
    def _unique_names(self) -> Recipe:
        seen: set[str] = set()
        for source in self.sources:
            if source.name in seen:
                raise ValueError(f"two sources are named {source.name!r}")
            seen.add(source.name)
        stages: set[str] = {"read"}
        for step in self.steps:
            if step.stage in stages:
                raise ValueError(
                    f"stage name {step.stage!r} is used twice; give the step a unique `name`"
                )
            stages.add(step.stage)
        return self
