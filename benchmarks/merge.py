"""Instruction path throughput: load → map → filter → dedup → merge → parquet.

    python benchmarks/merge.py --records 1000000 [--repeats 3] [--workers 2]

Generates `--records` rows spread over five SelFee-style sources (Alpaca, FLAN, GSM8K,
CoNaLa, MBPP) in their real formats with data/make_selfee_samples.py, writes a recipe
that maps them into instruction/input/output, drops answers that are questions,
deduplicates user queries, caps FLAN at ten per task and writes parquet + Alpaca JSON, and
runs it with `sftforge run` (a real Prefect flow). Reported (medians of `--repeats` runs):
records/s end to end by the flow's wall time and by the whole command (which includes the
Prefect temporary server's start-up), records/s of each stage (per worker: work time summed
over shards), and peak RSS of the process tree (sum over processes, sampled every 0.1 s).
Not a test: it never fails on time.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import psutil
import yaml

REPO = Path(__file__).resolve().parents[1]
SOURCES = {  # source name -> (sample generator name, file, mapping)
    "alpaca": (
        "alpaca",
        "alpaca.jsonl",
        {"instruction": "{instruction}", "input": "{input}", "output": "{output}"},
    ),
    "flan": ("flan", "flan.jsonl", {"instruction": "{inputs}", "output": "{targets}"}),
    "gsm8k": ("gsm8k", "gsm8k.jsonl", {"instruction": "{question}", "output": "{answer}"}),
    "conala": (
        "conala",
        "conala.jsonl",
        {
            "instruction": [
                "generate the python code snippet from the following natural "
                "language:\n{rewritten_intent}",
                "generate the python code snippet from the following natural language:\n{intent}",
            ],
            "output": "{snippet}",
        },
    ),
    "mbpp": ("mbpp", "mbpp.jsonl", {"instruction": "{text}", "output": "{code}"}),
}


def load_generator() -> ModuleType:
    path = REPO / "data" / "make_selfee_samples.py"
    spec = importlib.util.spec_from_file_location("make_selfee_samples", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_inputs(folder: Path, records: int, seed: int) -> dict[str, Path]:
    generator = load_generator()
    per_source = records // len(SOURCES)
    paths = {}
    for i, (name, (dataset, file, _)) in enumerate(SOURCES.items()):
        n = per_source + (records - per_source * len(SOURCES) if i == 0 else 0)
        path = folder / file
        with path.open("w", encoding="utf-8") as fh:
            for row in generator.generate(dataset, n, seed + i):
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        paths[name] = path
    return paths


def write_recipe(folder: Path, inputs: dict[str, Path], workers: int | None) -> Path:
    recipe = {
        "name": "merge_benchmark",
        "output_dir": str(folder / "out"),
        "seed": 1,
        "sources": [
            {
                "name": name,
                "format": "hf",
                "path": str(inputs[name]),
                "mapping": mapping,
                **({"meta_fields": ["task"]} if name == "flan" else {}),
            }
            for name, (_, _, mapping) in SOURCES.items()
        ],
        "steps": [
            {"step": "filter_question"},
            {"step": "dedup_exact"},
            {"step": "sample_per_group", "by": "meta.task", "max": 10, "datasets": ["flan"]},
        ],
        "outputs": [{"format": "parquet"}, {"format": "alpaca_json", "name": "merged"}],
        "runner": {"shard_size": 50_000, **({"workers": workers} if workers else {})},
    }
    path = folder / "merge.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def run_once(recipe: Path, out: Path, prefect_home: Path) -> dict:
    env = {
        **os.environ,
        "PREFECT_HOME": str(prefect_home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    sftforge = Path(sys.executable).parent / "sftforge"
    began = time.perf_counter()
    proc = subprocess.Popen(
        [str(sftforge), "run", str(recipe), "--out", str(out), "--quiet"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    peak = 0
    per_process: dict[str, int] = {}  # role -> its largest RSS (which process grows with N?)
    root = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            sizes = {p: p.memory_info().rss for p in tree if p.is_running()}
            peak = max(peak, sum(sizes.values()))
            for p, rss in sizes.items():
                role = _role(p, root)
                per_process[role] = max(per_process.get(role, 0), rss)
        except psutil.Error:
            pass
        time.sleep(0.1)
    elapsed = time.perf_counter() - began
    output = proc.stdout.read() if proc.stdout else ""
    if proc.returncode != 0:
        raise SystemExit(f"sftforge failed ({proc.returncode}):\n{output}")
    manifest = json.loads((out / "manifest.json").read_text())
    return {
        "command_seconds": elapsed,
        "peak_rss_mb": peak / 2**20,
        "per_process_mb": {k: v / 2**20 for k, v in sorted(per_process.items())},
        "manifest": manifest,
    }


def _role(process: psutil.Process, root: psutil.Process) -> str:
    if process.pid == root.pid:
        return "flow process"
    cmdline = " ".join(process.cmdline())
    if "uvicorn" in cmdline or "prefect" in cmdline and "server" in cmdline:
        return "prefect server"
    if "multiprocessing" in cmdline:
        return "worker (largest)"
    return "other"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="sftforge-merge-") as tmp:
        folder = Path(tmp)
        began = time.perf_counter()
        inputs = write_inputs(folder, args.records, args.seed)
        size = sum(p.stat().st_size for p in inputs.values()) / 2**20
        print(
            f"generated {args.records:,} rows ({size:,.0f} MB) in "
            f"{time.perf_counter() - began:.0f} s"
        )
        recipe = write_recipe(folder, inputs, args.workers)
        runs = [
            run_once(recipe, folder / f"out{i}", folder / "prefect") for i in range(args.repeats)
        ]

    def median(key: str) -> float:
        return statistics.median(r[key] for r in runs)

    flow_wall = statistics.median(r["manifest"]["wall_seconds"] for r in runs)
    n = runs[0]["manifest"]["stages"][0]["in"]
    print(f"\nrecords in: {n:,}   out: {runs[0]['manifest']['stages'][-1]['out']:,}")
    print(
        f"end to end (flow wall, median of {len(runs)}):    {n / flow_wall:>10,.0f} records/s"
        f"  ({flow_wall:.1f} s)"
    )
    print(
        f"end to end (command, incl. Prefect start-up): {n / median('command_seconds'):>10,.0f}"
        f" records/s  ({median('command_seconds'):.1f} s)"
    )
    print(f"peak RSS (process tree):                      {median('peak_rss_mb'):>10,.0f} MB")
    for role in runs[0]["per_process_mb"]:
        mb = statistics.median(r["per_process_mb"].get(role, 0.0) for r in runs)
        print(f"  peak RSS of the {role + ':':<37}{mb:>9,.0f} MB")
    print("\nper stage (records/s of one worker; median):")
    for i, stage in enumerate(runs[0]["manifest"]["stages"]):
        seconds = statistics.median(r["manifest"]["stages"][i]["seconds"] for r in runs)
        rejected = ", ".join(f"{k}: {v:,}" for k, v in stage["rejected"].items()) or "-"
        print(f"  {stage['name']:<18} {stage['in'] / max(seconds, 1e-9):>12,.0f}   {rejected}")


if __name__ == "__main__":
    main()
