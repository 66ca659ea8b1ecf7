"""Instruction-style training examples: Alpaca-LoRA, SelFee and Guanaco, prompt tokens masked.

    OUT/export/<name>.train.jsonl    {"id", "input_ids", "attention_mask", "labels"} per line
    OUT/export/<name>.train.parquet  the same columns + truncated
    …and .eval.* when the recipe's split sends records there.

Labels are the ids with -100 where the loss is masked (Alpaca-LoRA's and SelFee's
IGNORE_INDEX), so a Hugging Face Trainer with DataCollatorForSeq2Seq trains on the files as is.

How the trainers built them, and what is kept:
- The whole text (prompt + target) is tokenized as one string, as Alpaca-LoRA, SelFee and
  QLoRA's collator effectively do, so ids match what the model sees at inference. BOS goes in
  front when tokenizer(text) would add it (`bos: auto`).
- Truncation at `cutoff_len` tokens, BOS included; EOS appended only if the example is still
  shorter than `cutoff_len` (Alpaca-LoRA's `tokenize`).
- The prompt is masked by character offsets, not by the length of the separately tokenized
  prompt as Alpaca-LoRA and SelFee did: when the prompt's last token merges with the target's
  first, their count is off by one and a target token is lost (or a prompt token learned).
  If a token straddles the boundary, that record's segments are tokenized separately and
  concatenated instead, so the boundary is exact; the manifest counts these.
  (tasks/outputs/segment_tokens.py)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from sftforge.schemas.training import InstructionTokensOutput
from sftforge.tasks.base.pool import cpu_count, ordered_map
from sftforge.tasks.outputs.arrow_rows import rows_table
from sftforge.tasks.outputs.file_writers import dumps
from sftforge.tasks.outputs.prompt_templates import Segment, Skip, render
from sftforge.tasks.outputs.segment_tokens import build_example, expected_runs, tokenize_segments
from sftforge.tasks.outputs.split_files import (
    BatchDone,
    BatchPart,
    FileSpec,
    Layout,
    files_entry,
    write_batches,
)
from sftforge.tasks.outputs.token_batch import TokenBatch, check_batch
from sftforge.tasks.outputs.token_checks import check_supervised_text
from sftforge.tasks.outputs.token_files import batched
from sftforge.tasks.outputs.tokenizer import LoadedTokenizer, load_tokenizer, resolve_bos

IGNORE_INDEX = -100

# Alpaca-LoRA's cutoff_len default; SelFee's train.py model_max_length default.
DEFAULT_CUTOFF = {"selfee": 512, "selfee_answer_only": 512}
# QLoRA's Guanaco scripts (--dataset oasst1 --target_max_len 512): the source is BOS alone and
# the target, text + EOS, is cut at 512 tokens, so BOS comes on top of the 512.
GUANACO_TARGET_MAX_LEN = 512


def default_cutoff(template: str, bos_id: int | None) -> int:
    """cutoff_len when the recipe gives none (it counts BOS, so Guanaco's adds one for it);
    cut there, with EOS only when it fits, the ids are exactly QLoRA's."""
    if template == "guanaco":
        return GUANACO_TARGET_MAX_LEN + (bos_id is not None)
    return DEFAULT_CUTOFF.get(template, 256)


PARQUET_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("input_ids", pa.list_(pa.int32())),
        ("attention_mask", pa.list_(pa.int8())),
        ("labels", pa.list_(pa.int32())),
        ("truncated", pa.bool_()),
    ]
)


def output_layout(folder: Path, config: InstructionTokensOutput) -> Layout:
    """`<name>.<split>.jsonl` and `.parquet`; <name> defaults to the template's."""
    specs = (FileSpec(".jsonl"), FileSpec(".parquet", PARQUET_SCHEMA))
    return Layout(folder, config.name or config.template, specs)


def write_instruction_tokens(
    out: Path,
    config: InstructionTokensOutput,
    records: Callable[[], Iterator[dict[str, Any]]],
    splitter: Callable[[dict[str, Any]], str],
) -> dict[str, Any]:
    tok = load_tokenizer(config.tokenizer)
    bos_id = resolve_bos(tok, config.bos)
    cutoff = config.cutoff_len or default_cutoff(config.template, bos_id)
    folder = out / "export"

    def jobs() -> Iterator[list[tuple[dict[str, Any], str]]]:
        for batch in batched(records(), config.batch_size):
            yield [(record, splitter(record)) for record in batch]

    make_work = partial(
        InstructionBatch,
        tok,
        config,
        bos_id,
        tok.require("eos") if config.add_eos else None,
        tok.hf.eos_token if config.add_eos else None,
        cutoff,
    )
    files, counts = write_batches(
        output_layout(folder, config),
        ordered_map(make_work, jobs(), workers=config.workers or cpu_count()),
    )
    return files_entry(
        config,
        files,
        counts,
        template=config.template,
        cutoff_len=cutoff,
        vocab_size=tok.vocab_size,
        added_special_tokens=tok.added_special_tokens,
    )


class InstructionBatch:
    """Records → checked, serialized examples (runs in a worker process for long inputs)."""

    def __init__(
        self,
        tok: LoadedTokenizer,
        config: InstructionTokensOutput,
        bos_id: int | None,
        eos_id: int | None,
        eos_text: str | None,
        cutoff: int,
    ) -> None:
        self.tok, self.config, self.cutoff = tok, config, cutoff
        self.bos_id, self.eos_id, self.eos_text = bos_id, eos_id, eos_text

    def __call__(self, batch: list[tuple[dict[str, Any], str]]) -> BatchDone:
        config, counts = self.config, Counter[str]()
        parts = {split: BatchPart([[]]) for _, split in batch}
        rendered: list[tuple[dict[str, Any], str, list[Segment]]] = []
        for record, split in batch:
            segments = render(
                config.template,
                record,
                train_on_inputs=config.train_on_inputs,
                mask_human=config.mask_human,
            )
            if isinstance(segments, Skip):
                counts[f"skipped_{segments.reason}"] += 1
                continue
            rendered.append((record, split, segments))
        tokenized = tokenize_segments(self.tok, [segs for *_, segs in rendered])
        examples = []
        for (record, split, segments), (ids, mask, retokenized) in zip(
            rendered, tokenized, strict=True
        ):
            ids, mask, truncated, eos_added = build_example(
                ids, mask, bos_id=self.bos_id, eos_id=self.eos_id, cutoff_len=self.cutoff
            )
            counts["retokenized_at_boundaries"] += retokenized
            if not any(mask):
                counts["dropped_no_supervision"] += 1  # the prompt alone filled cutoff_len
                continue
            eos_text = self.eos_text if eos_added else None
            want = expected_runs(segments, eos_text, bool(segments[-1][1]))
            examples.append((record, split, ids, mask, truncated, eos_added, want))
        _check(examples, self.tok, self.bos_id, self.eos_id, self.cutoff, config.check_decode)
        rows: dict[str, list[dict[str, Any]]] = {split: [] for split in parts}
        for record, split, ids, mask, truncated, _, _ in examples:
            labels = [t if m else IGNORE_INDEX for t, m in zip(ids, mask, strict=True)]
            row = {
                "id": record["id"],
                "input_ids": ids,
                "attention_mask": [1] * len(ids),
                "labels": labels,
            }
            parts[split].lines[0].append(dumps(row))
            rows[split].append({**row, "truncated": truncated})
            counts[f"{split}_examples"] += 1
            counts[f"{split}_tokens"] += len(ids)
            counts[f"{split}_supervised_tokens"] += sum(mask)
            counts["truncated"] += truncated
        for split, part in parts.items():
            if rows[split]:
                part.rows = rows_table(rows[split], PARQUET_SCHEMA)
        return BatchDone(parts, counts)


def _check(
    examples: list[tuple[Any, ...]],
    tok: LoadedTokenizer,
    bos_id: int | None,
    eos_id: int | None,
    cutoff: int,
    check_decode: bool,
) -> None:
    """§6 on the whole batch as arrays (tasks/outputs/token_batch.py); a failing example is
    re-checked alone, so its error names it as before."""
    count = len(examples)
    expected: dict[int, np.ndarray] = {}
    if bos_id is not None:
        expected[bos_id] = np.ones(count, dtype=np.int64)
    if eos_id is not None:
        eos_added = np.array([ex[5] for ex in examples], dtype=np.int64)
        expected[eos_id] = expected.get(eos_id, 0) + eos_added
    batch = TokenBatch.of([(ex[2], ex[3]) for ex in examples])
    check_batch(
        batch,
        vocab_size=tok.vocab_size,
        max_length=cutoff,
        expected=expected,
        special_ids=tok.special_ids,
        # never "truncated" here, even when cut: the specials are BOS and EOS, always complete
        truncated=np.zeros(count, dtype=bool),
        where=[str(ex[0]["id"]) for ex in examples],
    )
    runs_of = batch.runs()
    if not check_decode:
        return
    decoded = tok.decode_batch(
        [ex[2][a:b] for ex, runs in zip(examples, runs_of, strict=True) for a, b in runs]
    )
    at = 0
    for (record, _, _, _, truncated, _, want), runs in zip(examples, runs_of, strict=True):
        check_supervised_text(
            decoded[at : at + len(runs)], want, truncated=truncated, where=str(record["id"])
        )
        at += len(runs)
