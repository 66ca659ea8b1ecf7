"""OpenChat's training files: conversations → [token_id_list, supervise_mask_list] per example.

    OUT/export/<name>.train.json        [[ids, mask], …]  (OpenChat v1's generate_dataset format)
    OUT/export/<name>.train.text.json   [decoded text, …] (what the model reads, for eyeballing)
    OUT/export/<name>.train.parquet     id, piece, input_ids, supervise_mask, length, truncated
    …and the same for .eval when the recipe's split sends records there.

`<name>` defaults to the template's name, OpenChat's `model_type`. The train/eval decision is
made per conversation, before any splitting, so the pieces of one conversation never land in
both. Records are read in batches (`batch_size` conversations): memory does not grow with input.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from schemas.training import OpenChatTokensOutput
from tasks.chat_templates import ConversationEncoder, resolve_template
from tasks.long_conversations import Piece, fit
from tasks.prefetch import ahead
from tasks.prompt_templates import record_messages
from tasks.token_checks import (
    check_ids_and_mask,
    check_special_tokens,
    check_supervised_text,
    supervised_runs,
)
from tasks.tokenizer import load_tokenizer
from tasks.training_io import FileSet, JsonListWriter, ParquetWriter, dumps, remove_files

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


def _messages(batch: list[dict[str, Any]]) -> list[list[dict[str, str]]]:
    return [record_messages(r) for r in batch]


def split_paths(
    folder: Path, name: str, split: str, text_files: bool = True, parquet: bool = True
) -> list[Path]:
    paths = [folder / f"{name}.{split}.json"]
    if text_files:
        paths.append(folder / f"{name}.{split}.text.json")
    if parquet:
        paths.append(folder / f"{name}.{split}.parquet")
    return paths


class _SplitFiles:
    def __init__(self, paths: list[Path], config: OpenChatTokensOutput, files: FileSet) -> None:
        it = iter(paths)
        self.tokens = files.add(JsonListWriter(next(it)))
        self.text = files.add(JsonListWriter(next(it))) if config.text_files else None
        self.parquet = (
            files.add(ParquetWriter(next(it), PARQUET_SCHEMA)) if config.parquet else None
        )


def write_openchat_tokens(
    out: Path,
    config: OpenChatTokensOutput,
    records: Callable[[], Iterator[dict[str, Any]]],
    splitter: Callable[[dict[str, Any]], str],
) -> dict[str, Any]:
    tok = load_tokenizer(config.tokenizer)
    template = resolve_template(config.template)
    max_length = config.max_length or template.max_length
    encoder = ConversationEncoder(tok, template)
    name = config.name or template.name
    folder = out / "export"
    files = FileSet()
    splits: dict[str, _SplitFiles] = {}
    counts: Counter[str] = Counter()

    def paths_of(split: str) -> list[Path]:
        return split_paths(folder, name, split, config.text_files, config.parquet)

    try:
        splits["train"] = _SplitFiles(paths_of("train"), config, files)
        batches = batched(records(), config.batch_size)
        for batch, contents in ahead(batches, lambda b: encoder.encode_contents(_messages(b))):
            encoded = encoder.assemble(_messages(batch), contents)
            kept: list[tuple[dict[str, Any], str, int, Piece]] = []
            for record, conv in zip(batch, encoded, strict=True):
                split = splitter(record)  # whole conversations, before any splitting
                if split not in splits:
                    splits[split] = _SplitFiles(paths_of(split), config, files)
                counts[f"{split}_conversations"] += 1
                pieces = fit(conv, max_length, config.long_conversations)
                counts["split_pieces"] += len(pieces) - 1
                for index, piece in enumerate(pieces):
                    if not any(piece.mask):
                        counts["dropped_no_supervision"] += 1
                        continue
                    kept.append((record, split, index, piece))
            _check(kept, tok, encoder, template.eot_token, max_length, config.check_decode)
            texts = tok.decode_batch([p.ids for *_, p in kept]) if config.text_files else None
            for i, (record, split, index, piece) in enumerate(kept):
                target = splits[split]
                target.tokens.write_json(dumps([piece.ids, piece.mask]))
                if target.text is not None and texts is not None:
                    target.text.write_json(dumps(texts[i]))
                if target.parquet is not None:
                    target.parquet.write_row(
                        {
                            "id": record["id"],
                            "piece": index,
                            "input_ids": piece.ids,
                            "supervise_mask": piece.mask,
                            "length": len(piece.ids),
                            "truncated": piece.truncated,
                        }
                    )
                counts[f"{split}_examples"] += 1
                counts[f"{split}_tokens"] += len(piece.ids)
                counts[f"{split}_supervised_tokens"] += sum(piece.mask)
                counts["truncated"] += piece.truncated
    except BaseException:
        files.abort()
        raise
    files.commit()
    # Files an earlier run wrote and this one did not (an eval split, text files turned off).
    written = {p for s in splits for p in paths_of(s)}
    remove_files(
        [p for s in ("train", "eval") for p in split_paths(folder, name, s) if p not in written]
    )
    return {
        "format": config.format,
        "name": name,
        "path": str(folder / name),
        "files": sorted(str(p) for p in written),
        "template": template.name,
        "max_length": max_length,
        "long_conversations": config.long_conversations,
        "vocab_size": tok.vocab_size,
        "added_special_tokens": tok.added_special_tokens,
        "counts": dict(sorted(counts.items())),
    }


def _check(
    kept: list[tuple[dict[str, Any], str, int, Piece]],
    tok: Any,
    encoder: ConversationEncoder,
    eot_token: str,
    max_length: int,
    check_decode: bool,
) -> None:
    """§6 on every example of the batch, before anything of it is written."""
    runs_of: list[list[tuple[int, int]]] = []
    for record, _, index, piece in kept:
        where = f"{record['id']} piece {index}"
        check_ids_and_mask(
            piece.ids, piece.mask, vocab_size=tok.vocab_size, max_length=max_length, where=where
        )
        messages = piece.header_end + piece.end - piece.start
        expected = {encoder.eot: messages}
        if encoder.bos is not None:
            expected[encoder.bos] = expected.get(encoder.bos, 0) + 1
        check_special_tokens(
            piece.ids,
            expected=expected,
            special_ids=tok.special_ids,
            truncated=piece.truncated,
            where=where,
        )
        runs_of.append(supervised_runs(piece.mask))
    if not check_decode:
        return
    decoded = tok.decode_batch(
        [p.ids[a:b] for (*_, p), runs in zip(kept, runs_of, strict=True) for a, b in runs]
    )
    at = 0
    for (record, _, index, piece), runs in zip(kept, runs_of, strict=True):
        messages = record_messages(record)[piece.start : piece.end]
        want = [m["content"] + eot_token for m in messages if m["role"] == "assistant"]
        check_supervised_text(
            decoded[at : at + len(runs)],
            want,
            truncated=piece.truncated,
            where=f"{record['id']} piece {index}",
        )
        at += len(runs)
