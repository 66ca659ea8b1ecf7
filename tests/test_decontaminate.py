"""The `decontaminate` step (issue #15 §1): benchmark prompts planted in records are found
verbatim, re-cased, re-spaced, inside a longer prompt (the exact test) and with words changed
(the n-gram test); look-alike prompts are kept; benchmarks load from local files and through
`datasets`; the index reaches workers by its folder, not pickled; and a recipe run through the
real `sftforge` command counts hits per benchmark in the manifest, the summary, the report and
the dataset card."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sftforge.schemas.steps import step_class
from sftforge.tasks.base.outcome import Rejected
from sftforge.tasks.base.shards import records_table
from sftforge.tasks.base.step_protocol import StepContext
from sftforge.tasks.steps.benchmark_index import BenchmarkIndex, Item
from sftforge.tasks.steps.benchmark_load import Benchmark, BenchmarkError, load_benchmarks
from tests.conftest import SHARED_DATA, load_generator
from tests.helpers import conv

REPO = Path(__file__).resolve().parents[1]
VICUNA = SHARED_DATA / "vicuna80_questions.jsonl"
SEED_TASKS = SHARED_DATA / "alpaca_seed_tasks.jsonl"

GSM = [
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips "
    "in May. How many clips did Natalia sell altogether in April and May?",
    "Weng earns 12 dollars an hour for babysitting. Yesterday, she just did 50 minutes of "
    "babysitting. How much did she earn for the time she spent looking after the children?",
    "Betty is saving money for a new wallet which costs 100 dollars. Betty has only half of "
    "the money she needs. Her parents decided to give her 15 dollars for that purpose, and her "
    "grandparents twice as much as her parents. How much more money does Betty need?",
]
MBPP = ["Write a function to find the shared elements from the given two lists."]
CHAT = ["Hi there!", "Compose a haiku about the ocean at dawn."]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def bench_files(tmp_path: Path) -> list[dict[str, Any]]:
    """Three benchmarks as three kinds of local file: JSONL, parquet, a JSON list."""
    gsm = write_jsonl(tmp_path / "gsm.jsonl", [{"question": q, "answer": "x"} for q in GSM])
    pq.write_table(
        pa.Table.from_pylist([{"task_id": 11 + i, "text": t} for i, t in enumerate(MBPP)]),
        tmp_path / "mbpp.parquet",
    )
    chat = tmp_path / "chat.json"
    chat.write_text(json.dumps([{"id": f"c{i}", "turns": [t]} for i, t in enumerate(CHAT)]))
    return [
        {"name": "gsm8k", "path": str(gsm), "text": "question"},
        {"name": "mbpp", "path": str(tmp_path / "mbpp.parquet"), "text": "text", "id": "task_id"},
        {"name": "chat", "path": str(chat), "text": "turns", "id": "id"},
    ]


def run_pass(step: Any, records: list[dict], kind: str, work: Path) -> list[Any]:
    """The step as the engine runs it: pass made once, pickled to a 'worker', scan, decide,
    judge. Per record: the record, or its Rejected."""
    decision = step.make_pass(StepContext(work_dir=work), kind)
    worker = pickle.loads(pickle.dumps(decision))
    table = records_table(records, kind)
    verdict = decision.decide(0, worker.scan(table), list(range(table.num_rows)))
    verdict = decision.finish([verdict], lambda shard: [r["id"] for r in records])[0]
    rejected = worker.judge(table, verdict)
    return [rejected.get(i, record) for i, record in enumerate(records)]


def make_step(benchmarks: list[dict], **options: Any) -> Any:
    return step_class("decontaminate")(step="decontaminate", benchmarks=benchmarks, **options)


def user(text: str, i: int) -> dict:
    return conv(("user", text), ("assistant", "Sure."), id=f"r{i}")


def changed_words(text: str, every: int) -> str:
    """Every `every`-th word replaced by another."""
    words = text.split()
    return " ".join("banana" if i % every == every - 1 else w for i, w in enumerate(words))


def test_planted_items_are_found_and_look_alikes_kept(tmp_path, bench_files):
    long = GSM[2]  # 48 words: the n-gram test applies
    planted = {
        "verbatim": (GSM[0], "gsm8k item 0: exact match in message 0"),
        "recased": (GSM[1].upper(), "gsm8k item 1: exact match in message 0"),
        "respaced": ("\n  ".join(GSM[1].split()).replace(",", " ;"), "gsm8k item 1: exact"),
        "embedded": (f"Homework help please. {MBPP[0]} Use Python 3.", "mbpp item 11: exact"),
        "words changed": (changed_words(long, 17), "gsm8k item 2: 13-gram overlap"),
        "whole short turn": ("hi  THERE", "chat item c0.1: exact match in message 0"),
        "short, 8 words": ("compose a HAIKU about the ocean, at dawn!!", "chat item c1.1: exact"),
    }
    clean = {
        # The same story with a number changed every 10 words: no 13 words in a row remain.
        "look-alike problem": changed_words(long, 10),
        "short item inside a turn": "Hi there, can you help me with my homework?",
        "shorter than the item": "Write a function to find the shared elements.",
        "paraphrase": "Write code that finds the elements two given lists share.",
        "split over two turns": "Compose a haiku about the ocean",
    }
    texts = [t for t, _ in planted.values()] + list(clean.values())
    records = [user(t, i) for i, t in enumerate(texts)]
    records[-1]["messages"].append({"role": "user", "content": "at dawn."})
    results = run_pass(make_step(bench_files), records, "conversation", tmp_path / "work")
    for (case, (_, detail)), result in zip(planted.items(), results, strict=False):
        assert isinstance(result, Rejected), case
        assert result.reason == "contaminated" and result.detail.startswith(detail), (case, result)
    for case, result in zip(clean, results[len(planted) :], strict=True):
        assert not isinstance(result, Rejected), (case, result)


def test_which_text_is_checked(tmp_path, bench_files):
    item = GSM[0]
    records = [
        conv(("user", "Solve this."), ("assistant", item), id="in-answer"),
        conv(
            ("user", "Hello."), ("assistant", "Hi."), ("user", item), ("assistant", "ok"), id="2nd"
        ),
    ]
    found = {}
    for scope in ("user", "first_user", "assistant", "all"):
        step = make_step(bench_files, text=scope)
        results = run_pass(step, records, "conversation", tmp_path / scope)
        found[scope] = [r.detail for r in results if isinstance(r, Rejected)]
    assert found["user"] == ["gsm8k item 0: exact match in message 2"]
    assert found["first_user"] == []
    assert found["assistant"] == ["gsm8k item 0: exact match in message 1"]
    assert len(found["all"]) == 2
    instructions = [
        {"id": "i1", "source": "s", "dataset": "gsm8k", "instruction": "Solve:", "input": item,
         "output": "72", "meta": {}},
        {"id": "i2", "source": "s", "dataset": "alpaca", "instruction": "Solve:", "input": "",
         "output": item, "meta": {}},
    ]  # fmt: skip
    results = run_pass(make_step(bench_files), instructions, "instruction", tmp_path / "i")
    assert [type(r).__name__ for r in results] == ["Rejected", "dict"]
    assert results[0].detail == "gsm8k item 0: exact match in instruction"
    step = make_step(bench_files, text="assistant", datasets=["gsm8k"])
    results = run_pass(step, instructions, "instruction", tmp_path / "j")
    assert not any(isinstance(r, Rejected) for r in results)  # i2's dataset is not checked


def test_n_gram_options(tmp_path, bench_files):
    """`ngram`, `threshold` and `min_item_words` decide what the n-gram test finds."""
    text = changed_words(GSM[2], 17)  # 48 words, 2 changed: 10 of its 36 13-grams remain
    records = [user(text, 0)]

    def found(**options: Any) -> Any:
        folder = tmp_path / str(len(list(tmp_path.iterdir())))
        return run_pass(make_step(bench_files, **options), records, "conversation", folder)[0]

    assert found().detail == "gsm8k item 2: 13-gram overlap 10/36 in message 0"
    assert isinstance(found(threshold=0.25), Rejected)
    assert not isinstance(found(threshold=0.3), Rejected)
    assert not isinstance(found(min_item_words=60), Rejected)  # exact test only: not whole
    assert not isinstance(found(ngram=20), Rejected)  # no 20 words in a row survive
    assert found(ngram=8).detail.startswith("gsm8k item 2: 8-gram overlap")


def test_real_vicuna80_questions(tmp_path):
    """The 80 questions OpenChat and SelFee were evaluated on, planted in three forms, are all
    found with their ids; the 175 human-written Alpaca seed tasks are all kept."""
    if not VICUNA.is_file() or not SEED_TASKS.is_file():
        pytest.skip("../shared/data is not here")
    questions = [json.loads(line) for line in VICUNA.read_text().splitlines()]
    bench = [{"name": "vicuna80", "path": str(VICUNA), "text": "text", "id": "question_id"}]
    forms = [
        lambda q: q,
        lambda q: f"Question from my teacher:\n\n{q.upper()}\n\nPlease answer in detail.",
        lambda q: "  ".join(q.replace("?", " ?").split()),
    ]
    records = [
        user(form(q["text"]), i * 3 + k)
        for i, q in enumerate(questions)
        for k, form in enumerate(forms)
    ]
    seeds = [json.loads(line) for line in SEED_TASKS.read_text().splitlines()]
    records += [user(s["instruction"], 1000 + i) for i, s in enumerate(seeds)]
    results = run_pass(make_step(bench), records, "conversation", tmp_path / "w")
    details = [r.detail for r in results[: 3 * len(questions)]]
    expected = [f"vicuna80 item {q['question_id']}: exact match in message 0" for q in questions]
    assert details == [d for d in expected for _ in forms]
    assert not any(isinstance(r, Rejected) for r in results[3 * len(questions) :])


def test_index_reaches_workers_by_its_folder(tmp_path):
    """A large benchmark's index is written once; the pass that each shard's call carries
    holds its folder's name only, whatever the index's size."""
    rows = [
        {"q": f"question {i} about topic {i * 7} with several more words here"} for i in range(5000)
    ]
    bench = [{"name": "big", "path": str(write_jsonl(tmp_path / "big.jsonl", rows)), "text": "q"}]
    decision = make_step(bench).make_pass(StepContext(work_dir=tmp_path / "w"), "conversation")
    (folder,) = (tmp_path / "w").iterdir()
    assert sum(p.stat().st_size for p in folder.iterdir()) > 200_000
    assert len(pickle.dumps(decision)) < 2_000
    assert decision.folder == str(folder)


def test_hashing_is_the_same_in_every_process():
    """The index's keys come from xxhash and uint64 arithmetic, never Python's salted hash():
    another process with another PYTHONHASHSEED builds the same bytes."""
    code = (
        "from sftforge.tasks.steps.benchmark_index import BenchmarkIndex, Item;"
        f"items = [Item('g', str(i), t) for i, t in enumerate({GSM!r})];"
        "print(BenchmarkIndex.build(items).digest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True, text=True, check=True,
        ).stdout.strip()
        for seed in ("1", "2")
    }  # fmt: skip
    here = BenchmarkIndex.build([Item("g", str(i), t) for i, t in enumerate(GSM)]).digest()
    assert digests == {here}


def test_benchmarks_load_from_files_and_datasets(tmp_path, bench_files):
    """Local JSON/JSONL/parquet files, and `datasets.load_dataset` (a dataset folder with a
    test split; the json builder with data files) — the code that loads Hub ids."""
    loaded = load_benchmarks([Benchmark(**b) for b in bench_files])
    assert loaded.benchmarks["chat"] == {"source": bench_files[2]["path"], "items": 2}
    assert [i.item_id for i in loaded.items if i.benchmark == "mbpp"] == ["11"]
    folder = tmp_path / "hub_like"
    folder.mkdir()
    pq.write_table(pa.Table.from_pylist([{"problem": q} for q in GSM]), folder / "test.parquet")
    pq.write_table(pa.Table.from_pylist([{"problem": "train only"}]), folder / "train.parquet")
    hub = Benchmark(name="math", dataset=str(folder), split="test", text="problem")
    builder = Benchmark(
        name="alpaca_eval", dataset="json", data_files=bench_files[0]["path"], split="train",
        text="question",
    )  # fmt: skip
    loaded = load_benchmarks([hub, builder])
    assert (
        loaded.benchmarks["math"]["items"] == 3 and loaded.benchmarks["alpaca_eval"]["items"] == 3
    )
    assert {i.text for i in loaded.items} == set(GSM)
    with pytest.raises(
        BenchmarkError, match=r"benchmark bad: .*row 0 has no field 'prompt' \(answer, question\)"
    ):
        load_benchmarks([Benchmark(name="bad", path=bench_files[0]["path"], text="prompt")])


def test_an_unreachable_hub_skips_optional_benchmarks_at_once(tmp_path, monkeypatch, bench_files):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    mt = {"name": "mt_bench", "dataset": "HuggingFaceH4/mt_bench_prompts", "split": "train",
          "text": "prompt", "optional": True}  # fmt: skip
    loaded = load_benchmarks([Benchmark(**mt), Benchmark(**bench_files[0])])
    assert list(loaded.benchmarks) == ["gsm8k"]
    assert loaded.skipped["mt_bench"].startswith("HuggingFaceH4/mt_bench_prompts:train: the Hub")
    with pytest.raises(BenchmarkError, match="benchmark mt_bench: the Hub .* is unreachable"):
        load_benchmarks([Benchmark(**{**mt, "optional": False})])


# ------------------------------------------------------------------ a recipe, end to end

SHIPPED_VICUNA = REPO / "data" / "benchmarks" / "vicuna80_questions.jsonl"


def sharegpt(text: str, i: int) -> dict:
    turns = [{"from": "human", "value": text}, {"from": "gpt", "value": f"<p>Answer {i}.</p>"}]
    return {"id": f"planted{i}", "model": "Model: GPT-4", "conversations": turns}


def write_run_inputs(folder: Path) -> tuple[Path, Path]:
    """300 generated conversations with five planted benchmark prompts among them."""
    questions = [json.loads(line) for line in SHIPPED_VICUNA.read_text().splitlines()]
    planted = [
        sharegpt(questions[0]["text"], 0),
        sharegpt(questions[41]["text"].upper(), 1),
        sharegpt(f"My friend asked me this: {questions[79]['text']} What do you think?", 2),
        sharegpt("\n".join(questions[10]["text"].split()), 3),
        sharegpt(changed_words(GSM[2], 17), 4),
    ]
    generated = list(load_generator().generate(300, seed=11, flawed_share=0.05))
    for k, record in enumerate(planted):
        generated.insert(40 + 60 * k, record)  # spread over the shards
    data = folder / "dump.jsonl"
    data.write_text("".join((g if isinstance(g, str) else json.dumps(g)) + "\n" for g in generated))
    gsm = folder / "gsm.parquet"
    pq.write_table(pa.Table.from_pylist([{"question": q} for q in GSM]), gsm)
    recipe = {
        "name": "decont",
        "output_dir": str(folder / "out"),
        "sources": [{"name": "sharegpt", "format": "sharegpt", "path": str(data)}],
        "steps": [
            {"step": "html_to_markdown"},
            {"step": "check_structure"},
            {"step": "dedup_exact"},
            {
                "step": "decontaminate",
                "benchmarks": [
                    {
                        "name": "vicuna80",
                        "path": str(SHIPPED_VICUNA),
                        "text": "text",
                        "id": "question_id",
                    },
                    {"name": "gsm8k", "path": str(gsm), "text": "question"},
                    {
                        "name": "mt_bench",
                        "dataset": "HuggingFaceH4/mt_bench_prompts",
                        "split": "train",
                        "text": "prompt",
                        "optional": True,
                    },
                ],
            },  # fmt: skip
        ],
        "outputs": [{"format": "parquet"}],
        "runner": {"shard_size": 90, "workers": 2},
    }
    path = folder / "decont.yaml"
    path.write_text(json.dumps(recipe))  # YAML reads JSON
    return path, folder / "out"


def test_a_recipe_counts_hits_per_benchmark_everywhere(tmp_path, prefect_harness):
    from prefect.settings import PREFECT_API_URL

    from tests.test_flow import parquet_files

    recipe, out = write_run_inputs(tmp_path)
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "COLUMNS": "250"}
    env["HF_ENDPOINT"] = "http://127.0.0.1:9"  # the Hub is unreachable: mt_bench is skipped

    def sftforge(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "sftforge.flows.cli", *args]
        done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    done = sftforge("run", str(recipe))
    assert (
        "sftforge: decontaminate: benchmark mt_bench skipped: HuggingFaceH4/mt_bench_prompts"
        in (done.stderr)
    )
    summary = " ".join(done.stdout.split())  # the caption wraps to the table's width
    assert "decontaminate hits: vicuna80 4, gsm8k 1 (skipped: mt_bench)" in summary
    manifest = json.loads((out / "manifest.json").read_text())
    stage = next(s for s in manifest["stages"] if s["name"] == "decontaminate")
    assert stage["rejected"] == {"contaminated": 5}
    counts = stage["contamination"]
    assert counts["hits"] == {"vicuna80": 4, "gsm8k": 1}
    assert counts["tests"] == {"exact": 4, "ngram": 1}
    assert counts["benchmarks"]["vicuna80"] == {
        "source": str(SHIPPED_VICUNA), "items": 80, "hits": 4
    }  # fmt: skip
    assert list(counts["skipped"]) == ["mt_bench"]
    rejects = pq.read_table(out / "rejects" / "decontaminate").to_pylist()
    assert {r["id"]: r["detail"] for r in rejects} == {
        "planted0": "vicuna80 item 1: exact match in message 0",
        "planted1": "vicuna80 item 42: exact match in message 0",
        "planted2": "vicuna80 item 80: exact match in message 0",
        "planted3": "vicuna80 item 11: exact match in message 0",
        "planted4": "gsm8k item 2: 13-gram overlap 10/36 in message 0",
    }
    (index,) = (out / ".sftforge" / "decontaminate" / "decontaminate").glob("index-*")
    assert (index / "ngram_keys.npy").is_file()

    sftforge("report", str(out))
    page = (out / "report.html").read_text()
    assert 'id="benchmark-hits"' in page and "<td>vicuna80</td>" in page and "skipped:" in page
    sftforge("push", str(out), "--repo-id", "org/decont", "--dry-run", str(tmp_path / "hub"))
    card = (tmp_path / "hub" / "README.md").read_text()
    assert "## Decontamination" in card
    assert f"| `decontaminate` | vicuna80 | `{SHIPPED_VICUNA}` | 80 | 4 |" in card
    assert "Not checked (could not be loaded): `mt_bench` (" in card

    # One worker, another output directory: the same records and rejects, byte for byte.
    sftforge(
        "run", str(recipe), "--out", str(tmp_path / "one"), "--set", "runner.workers=1", "--quiet"
    )
    assert parquet_files(tmp_path / "one") == parquet_files(out)


def test_turns_read_in_arrow_are_the_record_parts(sample_jsonl):
    """The scan reads a shard's turns in Arrow (only the checked ones become Python strings):
    the same texts, in the same order, as the per-record reading of them, for every scope."""
    from sftforge.tasks.readers.sources import iter_sharegpt_file
    from sftforge.tasks.steps.decontaminate import conversation_parts, record_parts

    records = []
    for item in iter_sharegpt_file(sample_jsonl):
        value = item.value if isinstance(item.value, dict) else None
        turns = value.get("conversations") if value else None
        if isinstance(turns, list) and all(isinstance(t, dict) for t in turns):
            messages = [
                {
                    "role": "user" if t.get("from") == "human" else "assistant",
                    "content": str(t.get("value")),
                }
                for t in turns
            ]
            records.append(conv(id=str(len(records))) | {"messages": messages})
    assert len(records) > 400
    table = records_table(records, "conversation")
    for scope in ("user", "first_user", "assistant", "all"):
        expected = [
            ((row, where), text)
            for row, record in enumerate(records)
            for where, text in record_parts(record, scope)
        ]
        owners, texts = conversation_parts(table.slice(3).column("messages"), scope)
        shifted = [((row - 3, where), text) for (row, where), text in expected if row >= 3]
        assert list(zip(owners, texts, strict=True)) == shifted, scope
