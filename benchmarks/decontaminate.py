"""What decontamination costs: the `openchat_sharegpt` recipe with and without its
`decontaminate` step, on generated conversations, against five benchmarks.

    python benchmarks/decontaminate.py                       # 100,000 conversations, 3 repeats
    python benchmarks/decontaminate.py --records 20000 --repeats 1 --text all

The input is made once with the demo generator (data/make_sharegpt_sample.py, seed 1234,
flawed_share 0.1), with one conversation in 1,000 replaced by a planted benchmark prompt (half
verbatim, half with every 17th word changed). The five benchmarks: Vicuna-80 (the shipped
file) and four generated ones the size of the real sets — MT-bench (80 questions x 2 turns),
AlpacaEval (805), MBPP test (500), GSM8K test (1,319) — of words drawn from the generated
conversations' own vocabulary, so that many of their n-grams' words are known words.

Figures (medians of --repeats):

* index build: loading the five files, building the index and writing it (in this process);
* conversations/s per core: the step's scan (normalise, hash every window, look up) over
  every shard of the step's input, in this process, on one core — and the manifest's figure
  (stage `in` / its `seconds`, work time summed over shards: the rate of one worker, with
  reading and writing the stage's parts);
* the step's share of the work: its stage seconds over all stages' seconds (work time, which
  other load on the machine skews less than wall time);
* added wall time: the flow's wall time (the manifest's `wall_seconds`: no Prefect start-up)
  of the recipe with the step over the recipe without it, runs interleaved (A, B, A, B …).

Nothing is asserted: these are measurements.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sftforge.schemas.steps import step_class  # noqa: E402
from sftforge.tasks.base.step_protocol import StepContext  # noqa: E402
from tests.conftest import load_generator  # noqa: E402

VICUNA = ROOT / "data" / "benchmarks" / "vicuna80_questions.jsonl"
ANSWER = "<p>Here is a detailed answer to your question, with the reasoning step by step.</p>"
SIZES = {"mt_bench": (80, 2, 20, 90), "alpaca_eval": (805, 1, 6, 60),
         "mbpp_test": (500, 1, 12, 30), "gsm8k_test": (1319, 1, 30, 90)}  # fmt: skip


def prompt(rng: random.Random, vocabulary: list[str], shortest: int, longest: int) -> str:
    return " ".join(rng.choices(vocabulary, k=rng.randint(shortest, longest))).capitalize() + "?"


def make_benchmarks(folder: Path, vocabulary: list[str], rng: random.Random) -> list[dict]:
    """Vicuna-80 and four generated benchmarks, as recipe entries."""
    entries = [{"name": "vicuna80", "path": str(VICUNA), "text": "text", "id": "question_id"}]
    for name, (rows, turns, shortest, longest) in SIZES.items():
        items = [
            {"id": i, "prompt": [prompt(rng, vocabulary, shortest, longest) for _ in range(turns)]}
            for i in range(rows)
        ]
        path = folder / f"{name}.jsonl"
        path.write_text("".join(json.dumps(item) + "\n" for item in items))
        entries.append({"name": name, "path": str(path), "text": "prompt", "id": "id"})
    return entries


def make_input(folder: Path, records: int, benchmarks: list[dict]) -> tuple[Path, int]:
    """The generated dump, one record in 1,000 a planted benchmark prompt."""
    generator = load_generator()
    prompts = [
        turn
        for entry in benchmarks
        for line in Path(entry["path"]).read_text().splitlines()
        for turn in (lambda row: row if isinstance(row, list) else [row])(
            json.loads(line)[entry["text"]]
        )
    ]
    rng = random.Random(7)
    path = folder / "dump.jsonl"
    planted = 0
    with path.open("w") as fh:
        for i, item in enumerate(generator.generate(records, seed=1234, flawed_share=0.1)):
            if i % 1000 == 500:
                text = rng.choice(prompts)
                if planted % 2:
                    text = " ".join(
                        w if k % 17 != 16 else "zebra" for k, w in enumerate(text.split())
                    )
                turns = [{"from": "human", "value": text}, {"from": "gpt", "value": ANSWER}]
                item = {"id": f"planted{i}", "model": "Model: GPT-4", "conversations": turns}
                planted += 1
            fh.write((item if isinstance(item, str) else json.dumps(item)) + "\n")
    return path, planted


def english_vocabulary() -> list[str]:
    """English words: those of the Vicuna-80 questions (the generator's mix has German,
    French and Spanish too, which the recipe's language filter would take out first)."""
    words: dict[str, None] = {}
    for line in VICUNA.read_text().splitlines():
        words.update(
            dict.fromkeys(w.strip("?.,!:;()\"'").lower() for w in json.loads(line)["text"].split())
        )
    return sorted(w for w in words if w.isalpha())


def recipes(folder: Path, data: Path, step: dict) -> dict[str, Path]:
    base = yaml.safe_load((ROOT / "configs" / "openchat_sharegpt.yaml").read_text())
    base["sources"][0]["path"] = str(data)
    without = [s for s in base["steps"] if s["step"] != "decontaminate"]
    paths = {}
    for label, steps in (("without", without), ("with", [*without, step])):
        path = folder / f"{label}.yaml"
        path.write_text(yaml.safe_dump({**base, "steps": steps}))
        paths[label] = path
    return paths


def run(recipe: Path, out: Path, env: dict[str, str], workers: int | None) -> dict[str, Any]:
    command = [sys.executable, "-m", "sftforge.flows.cli", "run", str(recipe), "--quiet"]
    command += ["--out", str(out)]
    if workers:
        command += ["--set", f"runner.workers={workers}"]
    subprocess.run(command, cwd=ROOT, env=env, check=True)
    return json.loads((out / "manifest.json").read_text())


def index_build_seconds(step: Any, folder: Path, repeats: int) -> list[float]:
    seconds = []
    for i in range(repeats):
        began = time.perf_counter()
        step.make_pass(StepContext(work_dir=folder / f"index{i}"), "conversation")
        seconds.append(time.perf_counter() - began)
    return seconds


def scan_rate(step: Any, out: Path, folder: Path) -> tuple[int, float]:
    """Conversations and seconds of the step's scan over every shard of its input, here."""
    decision = step.make_pass(StepContext(work_dir=folder / "scan"), "conversation")
    parts = sorted((out / "filter_language").glob("part-*.parquet"))
    tables = [pq.read_table(p, columns=decision.columns) for p in parts]
    decision.scan(tables[0].slice(0, 10))  # the index mapped, the powers table made
    began = time.perf_counter()
    for table in tables:
        decision.scan(table)
    return sum(t.num_rows for t in tables), time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=None, help="runner.workers (all CPUs)")
    parser.add_argument("--text", default="user", choices=["user", "first_user", "all"])
    parser.add_argument("--keep", type=Path, default=None, help="keep inputs and outputs here")
    parser.add_argument("--json", type=Path, default=None, help="write every figure here")
    args = parser.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="sftforge-decont-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    home = work / "home"
    env = {**os.environ, "SFTFORGE_HOME": str(home), "PREFECT_HOME": str(home / "prefect")}
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"

    rng = random.Random(3)
    benchmarks = make_benchmarks(work, english_vocabulary(), rng)
    data, planted = make_input(work, args.records, benchmarks)
    entry = {"step": "decontaminate", "text": args.text, "benchmarks": benchmarks}
    paths = recipes(work, data, entry)
    step = step_class("decontaminate")(**entry)
    print(f"input: {args.records} conversations ({planted} planted), benchmarks: "
          + ", ".join(b["name"] for b in benchmarks), flush=True)  # fmt: skip

    walls: dict[str, list[float]] = {"without": [], "with": []}
    stage: list[dict[str, Any]] = []
    try:
        for i in range(args.repeats):
            for label in ("without", "with"):
                out = work / f"out-{label}-{i}"
                manifest = run(paths[label], out, env, args.workers)
                walls[label].append(manifest["wall_seconds"])
                print(f"run {i + 1}/{args.repeats} {label}: {manifest['wall_seconds']:.1f} s")
                if label == "with":
                    stages = manifest["stages"]
                    entry = next(s for s in stages if s["name"] == "decontaminate")
                    entry["share"] = entry["seconds"] / sum(s["seconds"] for s in stages)
                    stage.append(entry)
    finally:
        subprocess.run([sys.executable, "-m", "sftforge.flows.cli", "server", "stop"], env=env)

    builds = index_build_seconds(step, work, 5)
    n, seconds = scan_rate(step, work / f"out-with-{args.repeats - 1}", work)
    a, b = statistics.median(walls["without"]), statistics.median(walls["with"])
    figures = {
        "records": args.records,
        "planted": planted,
        "text": args.text,
        "index_items": sum(s["contamination"]["benchmarks"][k]["items"] for s in stage[:1]
                           for k in s["contamination"]["benchmarks"]),
        "index_build_seconds": statistics.median(builds),
        "scan_conversations_per_second_one_core": n / seconds,
        "stage_conversations_per_second_per_worker": statistics.median(
            s["in"] / s["seconds"] for s in stage
        ),
        "stage_share_of_work": statistics.median(s["share"] for s in stage),
        "hits": stage[-1]["contamination"]["hits"],
        "wall_without": walls["without"],
        "wall_with": walls["with"],
        "added_wall_share": (b - a) / a,
    }  # fmt: skip
    print(f"index: {figures['index_items']} items, built in {figures['index_build_seconds']:.2f} s")
    print(f"scan, one core: {figures['scan_conversations_per_second_one_core']:,.0f} conv/s "
          f"({n} conversations into the step)")  # fmt: skip
    print(f"stage, per worker (manifest): "
          f"{figures['stage_conversations_per_second_per_worker']:,.0f} conv/s")  # fmt: skip
    print(
        "the step's share of the run's work time (all stages' seconds, summed over shards): "
        f"{100 * figures['stage_share_of_work']:.1f} %"
    )
    print(f"hits: {figures['hits']}")
    print(f"flow wall, median of {args.repeats}: without {a:.1f} s, with {b:.1f} s "
          f"({100 * figures['added_wall_share']:+.1f} %)")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
