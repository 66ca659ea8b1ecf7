"""Recipe `outputs` that write training files: token files, trainer exports, calibration windows.

One model per output, told apart by `format`. They join the recipe's output list in one
discriminated union with the existing OutputConfig,

    Annotated[OutputConfig | OpenChatTokensOutput | … | CalibrationOutput,
              Field(discriminator="format")]

and are written through the format registry, tasks/outputs/registry.py.
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

_NAME = r"^[A-Za-z0-9_\-.]+$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TokenizerConfig(_Strict):
    """A Hugging Face tokenizer: a local directory or a hub id (AutoTokenizer.from_pretrained)."""

    # Relative paths are relative to the working directory; the project's own tokenizer is
    # data/tokenizer (data/make_tokenizer.py), so the demo and tests run offline.
    path: str = "data/tokenizer"
    revision: str | None = None
    # Added as special tokens (OpenChat's "<|end_of_turn|>"); the manifest reports the new
    # vocabulary size, which the model's embeddings must be resized to.
    special_tokens: list[str] = Field(default_factory=list)


class ChatTemplateConfig(_Strict):
    """A conversation template as data: BOS?, role prefixes, an end-of-turn special token after
    every message. Only assistant content and its end-of-turn token are supervised."""

    name: str = Field(pattern=_NAME)
    bos: bool = True
    system_prefix: str = ""
    user_prefix: str
    assistant_prefix: str
    eot_token: str = "<|end_of_turn|>"
    max_length: int = Field(default=2048, ge=2)  # the model's context


def _eot_tokenizer() -> TokenizerConfig:
    return TokenizerConfig(special_tokens=["<|end_of_turn|>"])


class OpenChatTokensOutput(_Strict):
    """OpenChat's training files: OUT/export/<name>.<split>.json = [[token_ids, supervise_mask]…],
    `.text.json` (decoded text) and `.parquet`."""

    format: Literal["openchat_tokens"]
    name: str | None = Field(default=None, pattern=_NAME)  # default: the template's name
    template: Literal["openchat", "openchat_8192", "opencoder"] | ChatTemplateConfig = "openchat"
    tokenizer: TokenizerConfig = Field(default_factory=_eot_tokenizer)
    max_length: int | None = Field(default=None, ge=2)  # default: the template's context
    # truncate: cut at max_length (OpenChat). split: cut at turn boundaries into pieces that
    # each fit (FastChat's split_long_conversation, without its dropped last pair).
    long_conversations: Literal["truncate", "split"] = "truncate"
    text_files: bool = True
    parquet: bool = True
    # Check that the supervised tokens decode to the assistant contents; turn off only for a
    # tokenizer whose decode is not the inverse of encode (e.g. a normalizing one).
    check_decode: bool = True
    batch_size: int = Field(default=256, ge=1)
    # Processes for long inputs (the first batches always run in-process); default: one per CPU.
    workers: int | None = Field(default=None, ge=1)


class InstructionTokensOutput(_Strict):
    """Prompt/target examples as trainers tokenized them: OUT/export/<name>.<split>.jsonl and
    .parquet rows {id, input_ids, attention_mask, labels} with labels -100 where masked."""

    format: Literal["instruction_tokens"]
    name: str | None = Field(default=None, pattern=_NAME)  # default: the template's name
    template: Literal[
        "alpaca", "alpaca_legacy", "alpaca_short", "selfee", "selfee_answer_only", "guanaco"
    ]
    tokenizer: TokenizerConfig = Field(default_factory=TokenizerConfig)
    # Tokens per example, BOS and EOS included; EOS is appended only when it fits (Alpaca-LoRA).
    # Default: Alpaca-LoRA's 256 for alpaca*, SelFee's model_max_length 512, 513 for Guanaco
    # (BOS + QLoRA's target_max_len 512).
    cutoff_len: int | None = Field(default=None, ge=2)
    train_on_inputs: bool = False  # alpaca*/selfee*: supervise the prompt too
    mask_human: bool = False  # guanaco: supervise only the assistant replies
    bos: Literal["auto"] | bool = "auto"  # auto: as tokenizer(text) does for this model
    add_eos: bool = True
    check_decode: bool = True
    batch_size: int = Field(default=256, ge=1)
    workers: int | None = Field(default=None, ge=1)  # as for openchat_tokens

    @model_validator(mode="after")
    def _options_fit_template(self) -> InstructionTokensOutput:
        if self.mask_human and self.template != "guanaco":
            raise ValueError("mask_human applies to the guanaco template only")
        if self.train_on_inputs and self.template == "guanaco":
            raise ValueError("guanaco trains on the whole text by default; use mask_human")
        return self


class TrlOutput(_Strict):
    """TRL's SFTTrainer datasets: {"messages": […]} or {"prompt": …, "completion": …}."""

    format: Literal["trl"]
    name: str | None = Field(default=None, pattern=_NAME)  # default: trl
    style: Literal["messages", "prompt_completion"] = "messages"
    # prompt_completion: lists of {role, content} (TRL's conversational form) or plain strings
    # (standard form, instruction records only).
    conversational: bool = True
    keep_id: bool = False  # an extra `id` column (trainers ignore or drop unknown columns)


class AxolotlOutput(_Strict):
    """axolotl `type: chat_template` JSONL plus the `datasets:` entry (<name>.yaml)."""

    format: Literal["axolotl"]
    name: str | None = Field(default=None, pattern=_NAME)  # default: axolotl
    field_messages: str = Field(default="messages", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    keep_id: bool = False


class LlamaFactoryOutput(_Strict):
    """LLaMA-Factory data files plus their entries in OUT/export/dataset_info.json."""

    format: Literal["llama_factory"]
    name: str | None = Field(default=None, pattern=_NAME)  # default: llama_factory
    style: Literal["alpaca", "sharegpt"] = "sharegpt"


class CalibrationOutput(_Strict):
    """GPTQ calibration windows, as GPTQ-for-LLaMa's datautils draws them from wikitext-2."""

    format: Literal["calibration"]
    name: str | None = Field(default=None, pattern=_NAME)  # default: calibration
    tokenizer: TokenizerConfig = Field(default_factory=TokenizerConfig)
    nsamples: int = Field(default=128, ge=1)
    seqlen: int = Field(default=2048, ge=1)
    seed: int | None = None  # default: the recipe's seed
    # The text: an HF dataset (e.g. wikitext / wikitext-2-raw-v1), local files (json, jsonl,
    # parquet, csv or txt), or neither: the recipe's final records.
    dataset: str | None = None
    subset: str | None = None
    split: str = "train"
    path: str | None = None
    text_field: str = "text"
    bos: Literal["auto"] | bool = "auto"  # auto: as tokenizer(corpus) does for this model

    @model_validator(mode="after")
    def _one_source(self) -> CalibrationOutput:
        if self.dataset and self.path:
            raise ValueError("give either dataset or path, not both")
        return self


# Every training output; a recipe's `outputs:` is OutputConfig | TrainingOutput (schemas/recipe.py).
TrainingOutput = (
    OpenChatTokensOutput
    | InstructionTokensOutput
    | TrlOutput
    | AxolotlOutput
    | LlamaFactoryOutput
    | CalibrationOutput
)
TrainingOutputConfig = Annotated[TrainingOutput, Field(discriminator="format")]

TRAINING_FORMATS = frozenset(
    fmt
    for model in get_args(TrainingOutput)
    for fmt in get_args(model.model_fields["format"].annotation)
)
