"""`dedup_near` with `hashes: datatrove`: datatrove 0.10.1's signatures, hence its pairs.

The vectors in tests/data/datatrove_minhash_vectors.json were computed by datatrove itself
(benchmarks/datatrove_minhash_vectors.py)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow as pa

from sftforge.tasks.base.outcome import Rejected
from sftforge.tasks.steps import minhash_datatrove
from tests.helpers import run_filter_pass
from tests.test_dedup_near import chat, prompt, step

VECTORS = Path(__file__).parent / "data" / "datatrove_minhash_vectors.json"


def test_signatures_are_datatroves_own():
    cases = json.loads(VECTORS.read_text())
    texts = [c["text"] for c in cases]
    signed = minhash_datatrove.sign(pa.array(texts), 1, 5, 112, 14, 8)
    for i, case in enumerate(cases):
        if case["signature"] is None:  # fewer than 5 words: datatrove signs nothing
            assert not signed.signed[i], case["text"]
            continue
        assert signed.signed[i], case["text"]
        assert [str(v) for v in signed.signatures[i].tolist()] == case["signature"], case["text"]
    assert sum(c["signature"] is None for c in cases) == 2  # the short one and the empty one
    assert len(cases) == 13


def test_simplification_folds_numbers_case_punctuation_and_diacritics():
    words = minhash_datatrove.simplified_words(
        pa.array(["Pay 4.50, not 1,200 — OK?", "Déjà  vu\tCAFÉ", None])
    ).to_pylist()
    assert words == [["pay", "0", "not", "0", "ok"], ["deja", "vu", "cafe"], [""]]


def test_a_run_with_datatroves_hashes_finds_the_planted_near_duplicates():
    rng = random.Random(3)
    originals = [prompt(rng) for _ in range(4)]
    edited = originals[1].split()
    edited[40] = "zzzchanged"
    records = [chat(i, p, "answer") for i, p in enumerate(originals)]
    records += [
        chat(4, originals[0], "another answer"),  # the same user turn, regenerated answer
        chat(5, " ".join(edited), "answer"),  # one word changed
        chat(6, originals[2].replace("a", "a 7"), "numbers put in"),  # not a duplicate
        chat(7, "Hi there", "Hello!"),  # too short to sign: kept
    ]
    options = {"bands": 14, "rows": 8, "permutations": 112, "verify": False}
    results = run_filter_pass(
        step(hashes="datatrove", **options), [records[:4], records[4:]], "conversation"
    )
    rejected = {
        r["id"]: v.detail for r, v in zip(records, results, strict=True) if isinstance(v, Rejected)
    }
    assert set(rejected) == {"r4", "r5"}
    assert rejected["r4"].startswith("r0 (estimated Jaccard 1.00")
    assert rejected["r5"].startswith("r1 ")
