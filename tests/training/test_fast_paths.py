"""The fast paths of the token writers against the slow, obvious versions they replace: the
byte-table decoder against the tokenizer's decoder, the batch-wide checks against the
per-example ones, the JSON lines against json.dumps, worker processes against in-process."""

from __future__ import annotations

import os
import pickle
import random

import numpy as np
import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from training_support import EOT, conv, digest, every_third_eval, records_fn

from sftforge.schemas.training import OpenChatTokensOutput
from sftforge.tasks.base.pool import ordered_map
from sftforge.tasks.outputs.byte_decode import byte_table_decoder
from sftforge.tasks.outputs.file_writers import dumps
from sftforge.tasks.outputs.token_batch import TokenBatch, TokenJson, check_batch
from sftforge.tasks.outputs.token_checks import TrainingFileError, supervised_runs
from sftforge.tasks.outputs.token_files import write_openchat_tokens


def test_table_decoder_equals_the_tokenizers_decoder(tok) -> None:
    assert tok.table is not None  # the project's tokenizer is byte-level
    rng = random.Random(7)
    size = tok.vocab_size
    batches = [[rng.randrange(size) for _ in range(rng.randint(0, 300))] for _ in range(300)]
    batches += [[tok.special_id(EOT)], [], tok.encode(["héllo 你好 🙂 </s> <|end_of_turn|>"])[0]]
    assert tok.table.decode_batch(batches) == tok.backend.decode_batch(
        batches, skip_special_tokens=False
    )
    # cut inside a multi-byte character: both give U+FFFD for the broken sequence
    smile = tok.encode(["🙂"])[0]
    assert len(smile) > 1
    assert tok.decode(smile[:-1]) == tok.backend.decode(smile[:-1], skip_special_tokens=False)


def test_no_table_for_a_decoder_that_is_not_byte_level() -> None:
    sp = Tokenizer(models.BPE(unk_token="<unk>"))
    sp.pre_tokenizer = pre_tokenizers.Metaspace()
    sp.decoder = decoders.Metaspace()
    sp.train_from_iterator(
        ["hello world"] * 10, trainers.BpeTrainer(vocab_size=40, special_tokens=["<unk>"])
    )
    assert byte_table_decoder(sp) is None


def test_loaded_tokenizer_pickles_without_transformers_and_keeps_specials_as_text(tok) -> None:
    copy = pickle.loads(pickle.dumps(tok))
    assert copy.hf is None and copy.table is not None
    text = f"a user typing {EOT} and </s>"
    assert copy.encode([text]) == tok.encode([text])
    assert tok.special_id(EOT) not in copy.encode([text])[0]


def _examples(rng: random.Random, n: int, vocab: int) -> list[tuple[list[int], list[bool]]]:
    out = []
    for _ in range(n):
        length = rng.randint(1, 40)
        out.append(
            (
                [rng.randrange(vocab) for _ in range(length)],
                [rng.random() < 0.5 for _ in range(length)],
            )
        )
    return out


def test_batch_runs_counts_and_arrow_columns_match_per_example() -> None:
    rng = random.Random(3)
    examples = _examples(rng, 200, 50)
    batch = TokenBatch.of(examples)
    assert batch.runs() == [supervised_runs(mask) for _, mask in examples]
    assert batch.count(batch.mask).tolist() == [sum(mask) for _, mask in examples]
    ids, mask = batch.arrow_lists()
    assert ids.to_pylist() == [e[0] for e in examples]
    assert mask.to_pylist() == [e[1] for e in examples]
    with pytest.raises(TrainingFileError, match="3 ids but 2 mask values"):
        TokenBatch.of([([1, 2, 3], [True, False])])


def test_token_json_lines_are_what_json_dumps_writes() -> None:
    rng = random.Random(5)
    examples = _examples(rng, 100, 30) + [([7], [True]), ([7], [False])]
    lines = TokenJson(30)
    for ids, mask in examples:
        assert lines.line(ids, supervised_runs(mask)) == dumps([ids, mask])


def _check(batch: TokenBatch, expected: dict[int, list[int]], truncated: list[bool]) -> None:
    check_batch(
        batch,
        vocab_size=10,
        max_length=6,
        expected={k: np.array(v) for k, v in expected.items()},
        special_ids=frozenset({0, 9}),
        truncated=np.array(truncated),
        where=[f"ex{i}" for i in range(len(batch))],
    )


def test_batch_checks_name_the_failing_example() -> None:
    good = ([0, 4, 5, 9], [False, True, True, True])
    _check(TokenBatch.of([good, good]), {0: [1, 1], 9: [1, 1]}, [False, False])
    cases = [
        (([0, 4, 10, 9], good[1]), "out of range"),  # id 10 is not in a 10-token vocabulary
        (([0, 4, 5, 9, 9], [False] * 5), "9 occurs 2 times"),  # a special token in the text
        (([0, 1, 2, 3, 4, 5, 9], [False] * 7), "longer than the context 6"),
        (([4, 5, 9, 3], good[1]), "0 occurs 0 times"),  # BOS missing, not truncated
    ]
    for bad, message in cases:
        with pytest.raises(TrainingFileError, match=f"ex1: .*{message}"):
            _check(TokenBatch.of([good, bad]), {0: [1, 1], 9: [1, 1]}, [False, False])
    # a truncated example may have fewer specials than the template put, never more
    _check(
        TokenBatch.of([good, ([0, 4, 5], [False, True, True])]),
        {0: [1, 1], 9: [1, 1]},
        [False, True],
    )


def _square(x: int) -> tuple[int, int]:
    return x * x, os.getpid()


def _make_square():  # what ordered_map pickles to each worker
    return _square


def test_ordered_map_keeps_order_and_starts_processes_only_for_long_inputs() -> None:
    assert list(ordered_map(_make_square, [], workers=2)) == []
    short = list(ordered_map(_make_square, range(1), workers=2))
    assert short == [(0, os.getpid())]  # one batch: no process started
    long = list(ordered_map(_make_square, range(40), workers=2))
    assert [v for v, _ in long] == [i * i for i in range(40)]
    assert long[0][1] == os.getpid()  # the first runs here while the workers start
    pids = {p for _, p in long[1:]}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2


def _loaded_libraries(_: int) -> str:
    with open("/proc/self/maps") as maps:
        return maps.read()


def _make_loaded_libraries():
    return _loaded_libraries


def test_workers_start_with_mimalloc_preloaded_and_the_caller_keeps_its_environment(
    monkeypatch,
) -> None:
    from sftforge.tasks.base import pool as ordered_pool

    ordered_pool.worker_malloc.cache_clear()
    if ordered_pool.worker_malloc() is None:
        pytest.skip("mimalloc is not installed (Debian: apt-get install libmimalloc2.0)")
    monkeypatch.delenv("LD_PRELOAD", raising=False)
    maps = list(ordered_map(_make_loaded_libraries, range(6), workers=2))
    assert "mimalloc" not in maps[0]  # the first item ran here, under the C library's malloc
    assert all("mimalloc" in m for m in maps[1:])
    assert "LD_PRELOAD" not in os.environ
    # an empty setting turns it off
    monkeypatch.setenv("SFTFORGE_WORKER_MALLOC", "")
    ordered_pool.worker_malloc.cache_clear()
    try:
        maps = list(ordered_map(_make_loaded_libraries, range(6), workers=2))
    finally:
        ordered_pool.worker_malloc.cache_clear()
    assert not any("mimalloc" in m for m in maps)


def _fail_on_seven(x: int) -> int:
    if x == 7:
        raise TrainingFileError("example 7 is wrong")
    return x


def _make_failing():
    return _fail_on_seven


def test_ordered_map_raises_a_workers_error_in_the_caller() -> None:
    with pytest.raises(TrainingFileError, match="example 7 is wrong"):
        list(ordered_map(_make_failing, range(20), workers=2))


def test_worker_processes_write_the_same_bytes_as_one_process(tmp_path, tok_config) -> None:
    rng = random.Random(11)
    words = ["alpha", "beta", "```py\nx = 1\n```", "你好", EOT, "</s>", "\n\n", "?"]
    records = [
        conv(
            *[
                (role, " ".join(rng.choice(words) for _ in range(rng.randint(1, 30))))
                for _ in range(rng.randint(1, 4))
                for role in ("user", "assistant")
            ],
            id=f"c{i}",
        )
        for i in range(300)
    ]
    results = {}
    for workers in (1, 2):
        config = OpenChatTokensOutput(
            format="openchat_tokens",
            tokenizer=tok_config,
            batch_size=16,  # 19 batches: 1 in-process, 18 on the workers
            max_length=64,
            long_conversations="split",
            workers=workers,
        )
        out = tmp_path / f"w{workers}"
        results[workers] = write_openchat_tokens(out, config, records_fn(records), every_third_eval)
        results[workers]["digest"] = digest(out / "export")
    assert results[1]["counts"] == results[2]["counts"]
    assert results[1]["counts"]["eval_conversations"] == 100
    assert results[1]["digest"] == results[2]["digest"]
    assert len(results[1]["digest"]) == 6  # train/eval × json, text.json, parquet


def test_instruction_tokens_on_worker_processes_write_the_same_bytes(tmp_path, tok) -> None:
    from training_support import instruction

    from sftforge.schemas.training import InstructionTokensOutput
    from sftforge.tasks.outputs.instruction_tokens import write_instruction_tokens

    rng = random.Random(12)
    words = ["Add", "two", "numbers", "```py\nx = 1\n```", "你好", "</s>", "\n", "?"]
    records = [
        instruction(
            " ".join(rng.choice(words) for _ in range(rng.randint(1, 20))),
            input=" ".join(rng.choice(words) for _ in range(rng.randint(0, 5))),
            output=" ".join(rng.choice(words) for _ in range(rng.randint(0, 30))),
            id=f"i{i}",
        )
        for i in range(300)
    ]
    digests, counts = [], []
    for workers in (1, 2):
        config = InstructionTokensOutput(
            format="instruction_tokens",
            template="alpaca",
            tokenizer={"path": tok.name},
            cutoff_len=48,
            batch_size=16,
            workers=workers,
        )
        out = tmp_path / f"w{workers}"
        result = write_instruction_tokens(out, config, records_fn(records), every_third_eval)
        digests.append(digest(out / "export"))
        counts.append(result["counts"])
    assert digests[0] == digests[1] and counts[0] == counts[1]
    assert counts[0]["eval_examples"] > 0 and counts[0]["truncated"] > 0
    assert len(digests[0]) == 4  # train/eval × jsonl, parquet


def _in_daemon(n: int) -> list[tuple[int, int]]:
    return list(ordered_map(_make_square, range(n), workers=2))


def test_ordered_map_inside_a_daemonic_process_stays_in_that_process() -> None:
    import multiprocessing

    # multiprocessing.Pool's workers are daemonic, as Dask's worker processes are
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        results = pool.apply(_in_daemon, (12,))
    assert [v for v, _ in results] == [i * i for i in range(12)]
    assert len({p for _, p in results}) == 1 and results[0][1] != os.getpid()
