"""GPTQ calibration windows, drawn as GPTQ-for-LLaMa's datautils.get_wikitext2 draws them.

    trainenc = tokenizer("\\n\\n".join(traindata["text"]))
    random.seed(seed)
    for _ in range(nsamples):
        i = random.randint(0, trainenc.input_ids.shape[1] - seqlen - 1)
        window = trainenc.input_ids[:, i:i + seqlen]

Here the RNG is one `random.Random(seed)` (the same draws as seeding the global one, without
touching it), the documents are an HF dataset, local files or the recipe's own records, and a
corpus too short for one window is a clear error instead of randint's ValueError.

    OUT/export/<name>.json     [{"start", "input_ids", "text"}, …] (nsamples windows of seqlen)
    OUT/export/<name>.parquet  the same columns

The corpus is joined and tokenized in one piece, as datautils does, so its tokens are held in
memory (wikitext-2's train split is ~2.4M LLaMA tokens); calibration sets are small by nature.
"""

from __future__ import annotations

import glob
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from sftforge.schemas.training import CalibrationOutput
from sftforge.tasks.outputs.arrow_rows import rows_table
from sftforge.tasks.outputs.file_writers import dumps
from sftforge.tasks.outputs.split_files import BatchPart, FileSpec, Layout, SplitFiles, files_entry
from sftforge.tasks.outputs.token_checks import check_ids_in_vocab
from sftforge.tasks.outputs.tokenizer import load_tokenizer, resolve_bos

PARQUET_SCHEMA = pa.schema(
    [("start", pa.int64()), ("input_ids", pa.list_(pa.int32())), ("text", pa.string())]
)
_BUILDERS = {
    ".txt": "text",
    ".json": "json",
    ".jsonl": "json",
    ".parquet": "parquet",
    ".csv": "csv",
}


class CalibrationError(ValueError):
    pass


def record_texts(record: dict[str, Any]) -> Iterator[str]:
    """A record's documents: each message, or instruction / input / output."""
    if "messages" in record:
        for message in record["messages"]:
            yield message["content"]
        return
    for key in ("instruction", "input", "output"):
        if record.get(key):
            yield record[key]


def documents(
    config: CalibrationOutput, records: Callable[[], Iterator[dict[str, Any]]]
) -> Iterable[str]:
    if config.dataset is None and config.path is None:
        return (text for record in records() for text in record_texts(record))
    import datasets

    if config.dataset is not None:
        data = datasets.load_dataset(config.dataset, config.subset, split=config.split)
    else:
        assert config.path is not None
        files = sorted(glob.glob(config.path)) or [config.path]
        builder = _BUILDERS.get(Path(files[0]).suffix.lower())
        if builder is None:
            raise CalibrationError(f"calibration path {config.path!r}: unknown file type")
        data = datasets.load_dataset(builder, data_files=files, split="train")
    if config.text_field not in data.column_names:
        raise CalibrationError(
            f"calibration text field {config.text_field!r} not in columns {data.column_names}"
        )
    return data[config.text_field]


def draw_starts(n_tokens: int, nsamples: int, seqlen: int, seed: int) -> list[int]:
    """Window starts: randint(0, N - seqlen - 1) from one seeded RNG, nsamples times."""
    if n_tokens <= seqlen:
        raise CalibrationError(
            f"calibration corpus has {n_tokens} tokens; windows of seqlen={seqlen} need at "
            f"least {seqlen + 1} (start = randint(0, N - seqlen - 1))"
        )
    rng = random.Random(seed)
    return [rng.randint(0, n_tokens - seqlen - 1) for _ in range(nsamples)]


def windows(ids: Sequence[int], starts: Sequence[int], seqlen: int) -> list[list[int]]:
    return [list(ids[s : s + seqlen]) for s in starts]


def output_layout(folder: Path, config: CalibrationOutput) -> Layout:
    """`<name>.json` and `<name>.parquet`: windows are not split train/eval."""
    specs = (FileSpec(".json"), FileSpec(".parquet", PARQUET_SCHEMA))
    return Layout(folder, config.name or "calibration", specs, split_sep=None)


def write_calibration(
    out: Path,
    config: CalibrationOutput,
    records: Callable[[], Iterator[dict[str, Any]]],
    seed: int,
) -> dict[str, Any]:
    tok = load_tokenizer(config.tokenizer)
    seed = config.seed if config.seed is not None else seed
    corpus = "\n\n".join(documents(config, records))
    ids = tok.encode([corpus])[0]
    bos = resolve_bos(tok, config.bos)
    if bos is not None:
        ids.insert(0, bos)  # tokenizer(corpus) puts BOS in front of the whole corpus
    starts = draw_starts(len(ids), config.nsamples, config.seqlen, seed)
    chosen = windows(ids, starts, config.seqlen)
    for start, window in zip(starts, chosen, strict=True):
        where = f"calibration window at {start}"
        check_ids_in_vocab(window, vocab_size=tok.vocab_size, where=where)
        if len(window) != config.seqlen:
            raise CalibrationError(f"{where}: {len(window)} tokens, expected {config.seqlen}")
    texts = tok.decode_batch(chosen)
    folder = out / "export"
    rows = [
        {"start": start, "input_ids": window, "text": text}
        for start, window, text in zip(starts, chosen, texts, strict=True)
    ]
    part = BatchPart([[dumps(row) for row in rows]], rows_table(rows, PARQUET_SCHEMA))
    with SplitFiles(output_layout(folder, config)) as files:
        files.write("all", part)  # one split: the layout leaves it out of the names
    counts = {
        "corpus_characters": len(corpus),
        "corpus_tokens": len(ids),
        "windows": len(chosen),
        "seqlen": config.seqlen,
    }
    return files_entry(config, files, counts, seed=seed, vocab_size=tok.vocab_size)
