"""SelFee's filters on instruction records, group caps, and the split/shard outputs."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from sftforge.schemas.recipe import OutputConfig, Recipe, ShardsConfig, SplitConfig
from sftforge.tasks.base.outcome import Rejected
from sftforge.tasks.base.shards import records_table, stage_part, write_table_atomic
from sftforge.tasks.outputs.final_records import Splitter
from sftforge.tasks.outputs.registry import write_outputs
from sftforge.tasks.steps.dedup_exact import DedupExactStep
from sftforge.tasks.steps.filter_language import make_language_filter
from sftforge.tasks.steps.filter_question import filter_question
from sftforge.tasks.steps.sample_per_group import SamplePerGroupStep
from tests.helpers import run_filter_pass


def inst(
    id: str,
    instruction: str,
    output: str = "An answer.",
    input: str = "",
    dataset: str = "alpaca",
    **meta,
) -> dict:
    return {
        "id": id,
        "source": dataset,
        "dataset": dataset,
        "instruction": instruction,
        "input": input,
        "output": output,
        "meta": meta,
    }


def test_filter_question_drops_answers_that_are_questions():
    assert isinstance(
        filter_question(inst("a", "Tell me a joke", "Why did the chicken?")), Rejected
    )
    assert filter_question(inst("b", "Tell me a joke", "Because. "))["id"] == "b"
    assert (
        filter_question(inst("c", "Is it?", "Yes."))["id"] == "c"
    )  # the question may be a question


def test_query_dedup_is_on_instruction_and_input_normalised():
    records = [
        inst("a", "Sort  a list", input="[3,1]"),
        inst("b", "Sort a list", input="[3,1]\n", output="different answer"),
        inst("c", "Sort a list", input="[1,3]"),
    ]
    a, out, c = run_filter_pass(DedupExactStep(step="dedup_exact"), [records], "instruction")
    assert a["id"] == "a"
    assert isinstance(out, Rejected) and out.detail == "a"
    assert c["id"] == "c"


def test_language_filter_on_instruction_and_output():
    keep = make_language_filter(["en"], min_score=0.3, scopes=["user", "assistant"])
    good = inst(
        "a",
        "Explain why the sky is blue in simple words.",
        "Sunlight scatters off air molecules, and blue light scatters the most.",
    )
    assert keep(good)["meta"]["language"]["assistant"]["lang"] == "en"
    spanish_answer = inst(
        "b",
        "Explain why the sky is blue in simple words.",
        "La luz del sol se dispersa en el aire y la luz azul se dispersa más.",
    )
    out = keep(spanish_answer)
    assert isinstance(out, Rejected) and out.detail.startswith("assistant: es")


def sample(records, by, max_per_group, datasets, seed):
    step = SamplePerGroupStep(step="sample_per_group", by=by, max=max_per_group, datasets=datasets)
    results = run_filter_pass(step, [records[:20], records[20:]], "instruction", seed)
    return [r["id"] for r in results if not isinstance(r, Rejected)]


def test_group_cap_is_seeded_and_order_independent():
    records = [
        inst(f"f{i}", f"task question {i}", dataset="flan", task=f"t{i % 3}") for i in range(45)
    ]
    records += [inst(f"a{i}", f"alpaca {i}") for i in range(5)]
    kept = sample(records, by="meta.task", max_per_group=10, datasets=["flan"], seed=1)
    per_task = Counter(
        next(r["meta"]["task"] for r in records if r["id"] == k) for k in kept if k.startswith("f")
    )
    assert per_task == {"t0": 10, "t1": 10, "t2": 10}
    assert [k for k in kept if k.startswith("a")] == [f"a{i}" for i in range(5)]  # not capped
    reversed_kept = sample(
        records[::-1], by="meta.task", max_per_group=10, datasets=["flan"], seed=1
    )
    assert sorted(reversed_kept) == sorted(kept)
    other_seed = sample(records, by="meta.task", max_per_group=10, datasets=["flan"], seed=2)
    assert sorted(other_seed) != sorted(kept)


def test_splitter_exact_eval_size_and_fraction():
    records = [inst(f"r{i}", f"q{i}") for i in range(1000)]
    exact = Splitter(SplitConfig(eval_size=37), seed=3)
    exact.prepare(iter(records))
    assert sum(exact(r) == "eval" for r in records) == 37
    frac = Splitter(SplitConfig(eval_fraction=0.1), seed=3)
    frac.prepare(iter(records))
    assert 60 < sum(frac(r) == "eval" for r in records) < 140
    assert Splitter(None, 0).names == ["train"]


def test_outputs_split_and_stratified_shards(tmp_path: Path):
    kinds = ["Couplet"] * 50 + ["Poetry"] * 23 + ["NER"] * 7
    records = [
        inst(f"r{i}", f"instruction {i}", dataset="firefly", kind=k) for i, k in enumerate(kinds)
    ]
    for shard in range(2):
        part = records[shard * 40 : (shard + 1) * 40]
        write_table_atomic(records_table(part, "instruction"), stage_part(tmp_path, "last", shard))
    recipe = Recipe.model_validate(
        {
            "name": "t",
            "output_dir": str(tmp_path),
            "seed": 5,
            "sources": [
                {
                    "name": "firefly",
                    "format": "hf",
                    "path": "x.json",
                    "mapping": {"instruction": "{input}", "output": "{target}"},
                }
            ],
            "split": {"eval_size": 10},
            "outputs": [
                {"format": "parquet"},
                {
                    "format": "alpaca_json",
                    "name": "firefly",
                    "shards": {"count": 5, "stratify_by": "meta.kind"},
                },
            ],
        }
    )
    write_outputs(tmp_path, "last", "instruction", 2, recipe)
    export = tmp_path / "export"
    train = [json.loads((export / f"firefly-train-{i}.json").read_text()) for i in range(5)]
    evals = [json.loads((export / f"firefly-eval-{i}.json").read_text()) for i in range(5)]
    assert sum(map(len, train)) == 70 and sum(map(len, evals)) == 10
    assert set(train[0][0]) == {"instruction", "input", "output"}
    kind_of = {r["instruction"]: r["meta"]["kind"] for r in records}
    for kind in ("Couplet", "Poetry", "NER"):
        counts = [sum(kind_of[r["instruction"]] == kind for r in shard) for shard in train]
        assert max(counts) - min(counts) <= 1, (kind, counts)
    import pyarrow.parquet as pq

    n_train = sum(
        pq.read_table(p).num_rows for p in (tmp_path / "dataset" / "train").glob("*.parquet")
    )
    assert n_train == 70
    # Same inputs, same bytes.
    first = {p.name: p.read_bytes() for p in export.iterdir()}
    write_outputs(tmp_path, "last", "instruction", 2, recipe)
    assert first == {p.name: p.read_bytes() for p in export.iterdir()}
    assert OutputConfig(format="alpaca_json", shards=ShardsConfig(count=2)).shards.count == 2
