"""The shipped instruction recipes, end to end on the samples in data/instructions/."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest

from sftforge.flows.recipe_flow import flow_for
from sftforge.schemas.recipe import SourceConfig
from sftforge.tasks.pipeline.read_stage import SourceConverter
from sftforge.tasks.pipeline.request import RunRequest
from sftforge.tasks.readers.converters import to_guanaco_text
from sftforge.tasks.readers.sources import iter_source
from sftforge.tasks.steps.dedup_exact import query_key
from sftforge.tasks.steps.filter_language import detect_language

pytestmark = pytest.mark.usefixtures("prefect_harness")

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "data" / "instructions"

SELFEE_INPUTS = {
    "alpaca": "alpaca.json",
    "flan": "flan.jsonl",
    "gsm8k": "gsm8k.jsonl",
    "aqua": "aqua_rat.jsonl",
    "hendrycks": "competition_math.jsonl",
    "conala": "conala.jsonl",
    "mbpp": "mbpp.jsonl",
    "dmcc": "code_contests.jsonl",
    "repair": "drrepair.jsonl",
    "sharegpt": "sharegpt.json",
}
DREAMER_INPUTS = {
    "firefly": "firefly.jsonl",
    "coig": "coig.jsonl",
    "psyqa": "psyqa.json",
    "alpaca_gpt4": "alpaca_gpt4_zh.json",
}


def run(recipe: str, out: Path, inputs: dict[str, str], sets: list[str] | None = None) -> dict:
    request = RunRequest(
        recipe_path=str(REPO / "configs" / recipe),
        inputs={name: str(SAMPLES / file) for name, file in inputs.items()},
        out=str(out),
        sets=["runner.workers=1", *(sets or [])],
    )
    return flow_for(1)(request=request, quiet=True)


def parquet_rows(folder: Path) -> list[dict]:
    return [r for p in sorted(folder.rglob("part-*.parquet")) for r in pq.read_table(p).to_pylist()]


# The augment steps with nothing to do: data preparation only (tests/test_augment_flow.py
# runs the loop itself against a real local server).
NO_CALLS = [f"steps[{i}].datasets=[]" for i in (4, 5, 6)]  # the augment steps


def test_selfee_recipe(tmp_path):
    body = run("selfee.yaml", tmp_path, SELFEE_INPUTS, NO_CALLS)
    for stage in body["stages"]:
        assert stage["in"] == stage["out"] + sum(stage["rejected"].values())
    rows = parquet_rows(tmp_path / "dataset")
    assert {r["dataset"] for r in rows} == set(SELFEE_INPUTS)
    # SelFee's filters are for the ShareGPT pairs only (share_gpt_preprocess.py) ...
    sharegpt = [r for r in rows if r["dataset"] == "sharegpt"]
    assert sharegpt and not any(r["output"].rstrip().endswith("?") for r in sharegpt)
    for r in sharegpt:
        assert detect_language(r["instruction"])[0] == "en" or len(r["instruction"]) < 40
    assert not any("<div" in r["output"] or "<p>" in r["output"] for r in sharegpt)
    # ... Alpaca and FLAN go in as they are: answers that are questions, other languages,
    # repeated queries (SelFee deduplicated nothing).
    others = [r for r in rows if r["dataset"] in ("alpaca", "flan")]
    assert any(r["output"].rstrip().endswith("?") for r in others)
    assert any(detect_language(r["instruction"])[0] != "en" for r in others)
    keys = [query_key(r) for r in rows if r["dataset"] == "alpaca"]
    assert len(keys) > len(set(keys))
    flan_tasks = Counter(json.loads(r["meta"])["task"] for r in rows if r["dataset"] == "flan")
    assert flan_tasks and max(flan_tasks.values()) <= 10
    conala = [r for r in rows if r["dataset"] == "conala"]
    prefix = "generate the python code snippet from the following natural language:\n"
    assert conala and all(
        r["instruction"].startswith(prefix) and len(r["instruction"]) > len(prefix) for r in conala
    )
    source = [json.loads(line) for line in (SAMPLES / "conala.jsonl").read_text().splitlines()]
    assert len(conala) == sum(row["rewritten_intent"] is not None for row in source)
    rejected = {reason for s in body["stages"] for reason in s["rejected"]}
    assert {"answer_is_question", "over_group_cap", "wrong_type"} <= rejected
    assert "duplicate" not in rejected
    # Alpaca-LoRA's finetune.py: load_dataset("json", data_files=...) with these exact keys.
    alpaca = datasets.load_dataset(
        "json", data_files=str(tmp_path / "export" / "selfee.json"), split="train"
    )
    assert alpaca.column_names == ["instruction", "input", "output"]
    assert alpaca.num_rows == len(rows)


def test_selfee_recipe_is_deterministic(tmp_path):
    run("selfee.yaml", tmp_path / "a", SELFEE_INPUTS, NO_CALLS)
    run("selfee.yaml", tmp_path / "b", SELFEE_INPUTS, NO_CALLS)
    for name in ("selfee.json", "selfee.jsonl"):
        assert (tmp_path / "a" / "export" / name).read_bytes() == (
            tmp_path / "b" / "export" / name
        ).read_bytes()


def test_dreamer_zh_recipe(tmp_path):
    run("dreamer_zh.yaml", tmp_path, DREAMER_INPUTS)
    export = tmp_path / "export"
    shards = [json.loads((export / f"firefly-train-{i}.json").read_text()) for i in range(5)]
    source = [json.loads(line) for line in (SAMPLES / "firefly.jsonl").read_text().splitlines()]
    kind_of = {r["input"]: r["kind"] for r in source}
    for kind in set(kind_of.values()):
        counts = [sum(kind_of.get(r["instruction"]) == kind for r in shard) for shard in shards]
        assert max(counts) - min(counts) <= 1, (kind, counts)
    for name in ("coig-train.json", "psyqa-5-train.json", "alpaca-gpt4-train.json"):
        ds = datasets.load_dataset("json", data_files=str(export / name), split="train")
        assert ds.column_names == ["instruction", "input", "output"] and ds.num_rows > 0
    psyqa = json.loads((export / "psyqa-5-train.json").read_text())
    assert all(r["input"] for r in psyqa)  # variant 5: the description is the input


def test_guanaco_recipe_round_trips_the_text(tmp_path):
    run("guanaco_oasst1.yaml", tmp_path, {"oasst1": "openassistant_guanaco.jsonl"})
    original = {
        json.loads(line)["text"]
        for line in (SAMPLES / "openassistant_guanaco.jsonl").read_text().splitlines()
    }
    written = [
        json.loads(line)["text"]
        for line in (tmp_path / "export" / "openassistant-guanaco.jsonl").read_text().splitlines()
    ]
    assert written and set(written) <= original
    assert len(written) == len(set(written))


def convert_all(source: SourceConfig, path: Path) -> tuple[list[dict], list[dict]]:
    convert = SourceConverter(source)
    kept, rejects = [], []
    for item in iter_source(source, [path] if path.is_file() else sorted(path.iterdir())):
        for record, reject in convert(item):
            (kept if record is not None else rejects).append(record or reject)
    return kept, rejects


PSYQA_VARIANTS = {
    0: ("answers", {"instruction": "{question}", "output": "{answers.answer_text}"}),
    1: (None, {"instruction": "{question}", "output": "{answers[0].answer_text}"}),
    2: ("answers", {"instruction": "{question}\n{description}", "output": "{answers.answer_text}"}),
    3: (None, {"instruction": "{question}\n{description}", "output": "{answers[0].answer_text}"}),
    4: (
        "answers",
        {"instruction": "{question}", "input": "{description}", "output": "{answers.answer_text}"},
    ),
    5: (
        None,
        {
            "instruction": "{question}",
            "input": "{description}",
            "output": "{answers[0].answer_text}",
        },
    ),
}


@pytest.mark.parametrize("variant", sorted(PSYQA_VARIANTS))
def test_psyqa_variants(variant):
    explode_field, mapping = PSYQA_VARIANTS[variant]
    source = SourceConfig(
        name="psyqa",
        format="hf",
        path=str(SAMPLES / "psyqa.json"),
        mapping=mapping,
        explode=explode_field,
    )
    kept, rejects = convert_all(source, SAMPLES / "psyqa.json")
    rows = json.loads((SAMPLES / "psyqa.json").read_text())
    answers = sum(len(r["answers"]) for r in rows)
    assert len(kept) + len(rejects) == (answers if explode_field else len(rows))
    first = kept[0]
    assert first["instruction"].startswith(rows[0]["question"])
    assert (first["input"] == rows[0]["description"]) == (variant in (4, 5))
    assert ("\n" + rows[0]["description"] in first["instruction"]) == (variant in (2, 3))
    assert first["output"] == rows[0]["answers"][0]["answer_text"]


def test_couplets_remove_spaces():
    source = SourceConfig(name="couplets", format="couplets", path=str(SAMPLES / "couplets"))
    kept, rejects = convert_all(source, SAMPLES / "couplets")
    first_in = (SAMPLES / "couplets" / "in.txt").read_text(encoding="utf-8").splitlines()[0]
    assert not rejects and kept[0]["instruction"] == first_in.replace(" ", "")
    assert " " not in kept[0]["output"] and kept[0]["dataset"] == "couplets"


@pytest.mark.parametrize("file", ["belle.json", "alpaca_gpt4_zh.json", "coig.jsonl", "alpaca.json"])
def test_alpaca_shaped_sets(file):
    mapping = {"instruction": "{instruction}", "input": "{input}", "output": "{output}"}
    source = SourceConfig(name="s", format="hf", path=str(SAMPLES / file), mapping=mapping)
    kept, rejects = convert_all(source, SAMPLES / file)
    assert kept and not rejects


def test_guanaco_parse_and_back_is_identity_on_the_sample():
    source = SourceConfig(
        name="oasst1",
        format="hf",
        converter="guanaco_text",
        path=str(SAMPLES / "openassistant_guanaco.jsonl"),
    )
    kept, _ = convert_all(source, SAMPLES / "openassistant_guanaco.jsonl")
    texts = [
        json.loads(line)["text"]
        for line in (SAMPLES / "openassistant_guanaco.jsonl").read_text().splitlines()
    ]
    assert [to_guanaco_text(r["messages"]) for r in kept] == texts[: len(kept)]
