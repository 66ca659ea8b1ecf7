"""GPTQ calibration windows as GPT-Q-for-LLaMa's datautils draws them."""

from __future__ import annotations

import json
import random

import pyarrow.parquet as pq
import pytest
from training_support import conv, records_fn

from sftforge.schemas.training import CalibrationOutput
from sftforge.tasks.outputs.calibration import CalibrationError, draw_starts, write_calibration


def _gptq_starts(n_tokens: int, nsamples: int, seqlen: int, seed: int) -> list[int]:
    """datautils.get_wikitext2's loop, on the global RNG (its state restored afterwards)."""
    state = random.getstate()
    try:
        random.seed(seed)
        return [random.randint(0, n_tokens - seqlen - 1) for _ in range(nsamples)]
    finally:
        random.setstate(state)


def test_starts_are_gptqs_draws() -> None:
    for seed, n, seqlen in [(0, 10_000, 2048), (42, 3000, 512), (7, 129, 128)]:
        assert draw_starts(n, 128, seqlen, seed) == _gptq_starts(n, 128, seqlen, seed)


def test_corpus_too_short_is_a_clear_error() -> None:
    with pytest.raises(CalibrationError, match="has 2048 tokens; windows of seqlen=2048 need"):
        draw_starts(2048, 4, 2048, 0)
    draw_starts(2049, 4, 2048, 0)  # N = seqlen + 1: randint(0, 0)


def test_windows_from_a_local_text_corpus(tmp_path, plain_tok_config, tok) -> None:
    lines = ["", " = Valkyria Chronicles = ", "", " The game began development in 2010 . "]
    corpus = tmp_path / "wiki.train.txt"
    corpus.write_text("\n".join(lines * 40) + "\n", encoding="utf-8")
    config = CalibrationOutput(
        format="calibration",
        tokenizer=plain_tok_config,
        path=str(corpus),
        nsamples=6,
        seqlen=32,
        seed=3,
    )
    result = write_calibration(tmp_path, config, records_fn([]), seed=0)
    # datautils: tokenizer("\n\n".join(texts)) — with LLaMA-style <s> in front
    (expected_ids,) = tok.encode(["\n\n".join(lines * 40)])
    expected_ids = [tok.bos_id, *expected_ids]
    starts = _gptq_starts(len(expected_ids), 6, 32, 3)
    rows = json.loads((tmp_path / "export" / "calibration.json").read_text())
    assert [r["start"] for r in rows] == starts
    assert [r["input_ids"] for r in rows] == [expected_ids[s : s + 32] for s in starts]
    assert [r["text"] for r in rows] == [tok.decode(r["input_ids"]) for r in rows]
    assert pq.read_table(tmp_path / "export" / "calibration.parquet").to_pylist() == rows
    assert result["counts"]["corpus_tokens"] == len(expected_ids)
    assert result["seed"] == 3


def test_windows_from_the_recipes_records_use_the_recipe_seed(tmp_path, plain_tok_config) -> None:
    records = [conv(("user", f"Question {i}?"), ("assistant", f"Answer {i}.")) for i in range(50)]
    config = CalibrationOutput(
        format="calibration", tokenizer=plain_tok_config, nsamples=4, seqlen=64
    )
    first = write_calibration(tmp_path / "a", config, records_fn(records), seed=9)
    again = write_calibration(tmp_path / "b", config, records_fn(records), seed=9)
    a = (tmp_path / "a" / "export" / "calibration.json").read_bytes()
    assert a == (tmp_path / "b" / "export" / "calibration.json").read_bytes()
    assert first["seed"] == again["seed"] == 9
    assert all(len(r["input_ids"]) == 64 for r in json.loads(a))
    short = CalibrationOutput(format="calibration", tokenizer=plain_tok_config, seqlen=100_000)
    with pytest.raises(CalibrationError, match="seqlen=100000"):
        write_calibration(tmp_path / "c", short, records_fn(records), seed=9)
    assert not (tmp_path / "c" / "export" / "calibration.json").exists()


def test_source_options() -> None:
    with pytest.raises(ValueError, match="either dataset or path"):
        CalibrationOutput(format="calibration", dataset="wikitext", path="x.txt")
    config = CalibrationOutput(
        format="calibration", dataset="wikitext", subset="wikitext-2-raw-v1"
    )  # the real call: datasets.load_dataset("wikitext", "wikitext-2-raw-v1", split="train")
    assert (config.nsamples, config.seqlen, config.split) == (128, 2048, "train")
