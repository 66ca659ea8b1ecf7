"""OpenChat's training files: conversations → [token_id_list, supervise_mask_list] per example.

    OUT/export/<name>.train.json        [[ids, mask], …]  (OpenChat v1's generate_dataset format)
    OUT/export/<name>.train.text.json   [decoded text, …] (what the model reads, for eyeballing)
    OUT/export/<name>.train.parquet     id, piece, input_ids, supervise_mask, length, truncated
    …and the same for .eval, always: OpenChat v1's trainer opens <model_type>.eval.json
    whatever the data (its generate_dataset held out 1% by default), so a recipe without a
    split gets an empty eval list rather than a trainer that dies on a missing file.

`<name>` defaults to the template's name, OpenChat's `model_type`. The train/eval decision is
made per conversation, before any splitting, so the pieces of one conversation never land in
both. Records are read in batches (`batch_size` conversations): memory does not grow with input.
After the first batch, batches are encoded, checked and serialized on worker processes
(tasks/base/pool.py) and written here in input order, so the files do not depend on `workers`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from sftforge.tasks.base.pool import cpu_count, ordered_map
from sftforge.tasks.outputs.chat_templates import (
    ChatTemplate,
    ConversationEncoder,
    resolve_template,
)
from sftforge.tasks.outputs.file_writers import dumps
from sftforge.tasks.outputs.long_conversations import Piece, fit
from sftforge.tasks.outputs.prompt_templates import record_messages
from sftforge.tasks.outputs.split_files import (
    BatchDone,
    BatchPart,
    FileSpec,
    Layout,
    files_entry,
    write_batches,
)
from sftforge.tasks.outputs.token_batch import TokenBatch, TokenJson, check_batch
from sftforge.tasks.outputs.token_checks import check_supervised_text
from sftforge.tasks.outputs.tokenizer import LoadedTokenizer, load_tokenizer

if TYPE_CHECKING:
    from sftforge.schemas.training import OpenChatTokensOutput

PARQUET_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("piece", pa.int32()),
        ("input_ids", pa.list_(pa.int32())),
        ("supervise_mask", pa.list_(pa.bool_())),
        ("length", pa.int32()),
        ("truncated", pa.bool_()),
    ]
)


def batched(items: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def output_layout(folder: Path, config: OpenChatTokensOutput, every_file: bool = False) -> Layout:
    """`<name>.<split>.json`, then `.text.json` and `.parquet` when they are on (`every_file`:
    all three, as an earlier run may have left them). <name> defaults to the template's."""
    name = config.name or resolve_template(config.template).name
    specs = [FileSpec(".json")]
    if every_file or config.text_files:
        specs.append(FileSpec(".text.json"))
    if every_file or config.parquet:
        specs.append(FileSpec(".parquet", PARQUET_SCHEMA))
    return Layout(folder, name, tuple(specs))


def write_openchat_tokens(
    out: Path,
    config: OpenChatTokensOutput,
    records: Callable[[], Iterator[dict[str, Any]]],
    splitter: Callable[[dict[str, Any]], str],
) -> dict[str, Any]:
    tok = load_tokenizer(config.tokenizer)
    template = resolve_template(config.template)
    max_length = config.max_length or template.max_length
    folder = out / "export"

    def jobs() -> Iterator[list[_Conversation]]:
        for batch in batched(records(), config.batch_size):
            # whole conversations, before any splitting
            yield [(r["id"], record_messages(r), splitter(r)) for r in batch]

    options = BatchOptions(
        config.long_conversations, config.check_decode, config.text_files, config.parquet
    )
    make_work = partial(OpenChatBatch, tok, template, max_length, options)
    # an empty eval part first opens the eval files, so they exist when no record goes there
    no_eval = BatchDone({"eval": BatchPart([[] for _ in options.json_files])}, Counter())
    files, counts = write_batches(
        output_layout(folder, config),
        chain([no_eval], ordered_map(make_work, jobs(), workers=config.workers or cpu_count())),
        # and remove what an earlier run left: text files or parquet since turned off
        stale=output_layout(folder, config, every_file=True),
    )
    return files_entry(
        config,
        files,
        counts,
        template=template.name,
        max_length=max_length,
        long_conversations=config.long_conversations,
        vocab_size=tok.vocab_size,
        added_special_tokens=tok.added_special_tokens,
    )


_Conversation = tuple[str, list[dict[str, str]], str]  # id, messages, split


@dataclass(frozen=True)
class BatchOptions:
    """What a worker needs of the output's config (plain values: no pydantic to import)."""

    long_conversations: str
    check_decode: bool
    text_files: bool
    parquet: bool

    @property
    def json_files(self) -> list[str]:
        return ["tokens", "text"] if self.text_files else ["tokens"]


@dataclass
class _Example:
    id: str
    messages: list[dict[str, str]]
    split: str
    index: int  # piece number within its conversation
    piece: Piece


class OpenChatBatch:
    """Conversations → checked, serialized examples (runs in a worker process for long inputs)."""

    def __init__(
        self, tok: LoadedTokenizer, template: ChatTemplate, max_length: int, config: BatchOptions
    ) -> None:
        self.tok, self.template, self.max_length, self.config = tok, template, max_length, config
        self.encoder = ConversationEncoder(tok, template)
        self.token_json = TokenJson(tok.vocab_size)
        self.json_files = config.json_files

    def __call__(self, batch: list[_Conversation]) -> BatchDone:
        counts: Counter[str] = Counter()
        messages = [m for _, m, _ in batch]
        encoded = self.encoder.encode(messages)
        kept: list[_Example] = []
        for (record_id, msgs, split), conv in zip(batch, encoded, strict=True):
            counts[f"{split}_conversations"] += 1
            pieces = fit(conv, self.max_length, self.config.long_conversations)
            counts["split_pieces"] += len(pieces) - 1
            for index, piece in enumerate(pieces):
                if not any(piece.mask):
                    counts["dropped_no_supervision"] += 1
                    continue
                kept.append(_Example(record_id, msgs, split, index, piece))
        parts = {split: BatchPart([[] for _ in self.json_files]) for _, _, split in batch}
        if not kept:
            return BatchDone(parts, counts)
        tokens = TokenBatch.of([(e.piece.ids, e.piece.mask) for e in kept])
        runs = tokens.runs()
        self._check(kept, tokens, runs)
        supervised = tokens.count(tokens.mask).tolist()
        for example, n in zip(kept, supervised, strict=True):
            counts[f"{example.split}_examples"] += 1
            counts[f"{example.split}_tokens"] += len(example.piece.ids)
            counts[f"{example.split}_supervised_tokens"] += n
            counts["truncated"] += example.piece.truncated
        self._serialize(kept, tokens, runs, parts)
        return BatchDone(parts, counts)

    def _check(
        self, kept: list[_Example], tokens: TokenBatch, runs: list[list[tuple[int, int]]]
    ) -> None:
        """§6 on every example of the batch, before anything of it is written."""
        encoder, tok = self.encoder, self.tok
        messages = np.array([e.piece.header_end + e.piece.end - e.piece.start for e in kept])
        expected = {encoder.eot: messages}
        if encoder.bos is not None:
            expected[encoder.bos] = expected.get(encoder.bos, 0) + 1
        check_batch(
            tokens,
            vocab_size=tok.vocab_size,
            max_length=self.max_length,
            expected=expected,
            special_ids=tok.special_ids,
            truncated=np.array([e.piece.truncated for e in kept], dtype=bool),
            where=[f"{e.id} piece {e.index}" for e in kept],
        )
        if not self.config.check_decode:
            return
        decoded = tok.decode_batch(
            [e.piece.ids[a:b] for e, spans in zip(kept, runs, strict=True) for a, b in spans]
        )
        at, eot = 0, self.template.eot_token
        for e, spans in zip(kept, runs, strict=True):
            want = [
                m["content"] + eot
                for m in e.messages[e.piece.start : e.piece.end]
                if m["role"] == "assistant"
            ]
            check_supervised_text(
                decoded[at : at + len(spans)],
                want,
                truncated=e.piece.truncated,
                where=f"{e.id} piece {e.index}",
            )
            at += len(spans)

    def _serialize(
        self,
        kept: list[_Example],
        tokens: TokenBatch,
        runs: list[list[tuple[int, int]]],
        parts: dict[str, BatchPart],
    ) -> None:
        texts = self.tok.decode_batch([e.piece.ids for e in kept]) if self.config.text_files else []
        for i, e in enumerate(kept):
            lines = parts[e.split].lines
            lines[0].append(self.token_json.line(e.piece.ids, runs[i]))
            if texts:
                lines[1].append(dumps(texts[i]))
        if self.config.parquet:
            input_ids, supervise_mask = tokens.arrow_lists()
            table = pa.table(
                {
                    "id": [e.id for e in kept],
                    "piece": pa.array([e.index for e in kept], pa.int32()),
                    "input_ids": input_ids,
                    "supervise_mask": supervise_mask,
                    "length": pa.array(tokens.lengths(), pa.int32()),
                    "truncated": [e.piece.truncated for e in kept],
                },
                schema=PARQUET_SCHEMA,
            )
            for split, part in parts.items():
                part.rows = table if len(parts) == 1 else table.filter(split_mask(kept, split))


def split_mask(examples: list[Any], split: str) -> pa.Array:
    return pa.array([e.split == split for e in examples])
