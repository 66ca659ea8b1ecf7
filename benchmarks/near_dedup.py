"""Near-duplicate dedup: sftforge's `dedup_near` against datatrove's MinHash pipeline.

    python benchmarks/near_dedup.py --records 100000
    python benchmarks/near_dedup.py --records 1000000 --repeats 1 --keep /tmp/near

Run it with the project's interpreter; it needs psutil (a dev dependency). The input is made
once with `data/make_near_dup_sample.py` (ShareGPT conversations, 10 % planted
near-duplicates). Both tools compare the same text (each conversation's user turns, joined
by newlines), with the same shingles (5 words), permutations (112) and bands (14 × 8,
datatrove's defaults), and no verification (datatrove has none): every LSH candidate pair
is a duplicate, clusters by union-find. sftforge runs twice so: with `hashes: datatrove`
(datatrove's hash functions: its pairs, bar text normalisation corner cases) and with its
own hash functions (another random draw of the same LSH: pairs near the threshold differ).

- sftforge: `sftforge run` of a recipe read → dedup_near → parquet, and the same recipe
  without dedup_near; the step's wall time is the difference of the two flows'
  `wall_seconds`. Also a run with the step's defaults (18 × 7 of 128, verified at 0.8).
- datatrove (`--no-datatrove` skips it): `datatrove==0.10.1` installed into
  `benchmarks/.datatrove-venv` on first use (from PyPI, with `uv` when the project has it),
  its four stages (signatures, buckets, cluster, filter) with LocalPipelineExecutor on the
  same cores, on a JSONL of `{"id", "text"}` written beforehand (one file per core), with a
  whitespace word tokenizer (its English one needs NLTK's punkt data, a download).

Reported: duplicates each found, the pairs (duplicate, first record of its cluster) of each
and their agreement (|both| / |either|), planted near-duplicates found, records/s, peak RSS
(the flow process, and the whole process tree). Medians over --repeats; nothing is asserted.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / "benchmarks" / ".datatrove-venv"
# datatrove 0.10.1 imports regex, tokenizers and orjson without declaring them (its `processing`
# extra is far larger), and hashes str with xxhash, which xxhash 4 rejects: xxhash<4.
DATATROVE = ["datatrove==0.10.1", "xxhash<4", "regex", "tokenizers", "orjson"]
MB = 1024 * 1024
SAME_AS_DATATROVE = {
    "shingle": 5,
    "permutations": 112,
    "bands": 14,
    "rows": 8,
    "verify": False,
    "hashes": "datatrove",  # its hash functions (seed 1, as its MinhashConfig): its pairs
}
OWN_HASHES = {**SAME_AS_DATATROVE, "hashes": "sftforge"}  # the same LSH, sftforge's hashing


def load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


PEER = load(ROOT / "benchmarks" / "sharegpt_pipeline.py", "sharegpt_pipeline")  # sampling
GENERATOR = load(ROOT / "data" / "make_near_dup_sample.py", "make_near_dup_sample")


def user_text(record: dict[str, Any]) -> str:
    return "\n".join(t["value"] for t in record["conversations"] if t["from"] == "human")


def write_inputs(work: Path, records: int, files: int) -> tuple[Path, Path]:
    """The ShareGPT JSONL for sftforge, and datatrove's `{"id", "text"}` files (contiguous
    chunks, so that file i, document d is record offset(i) + d)."""
    jsonl = work / "near.jsonl"
    GENERATOR.write(jsonl, records)
    folder = work / "datatrove-input"
    folder.mkdir(exist_ok=True)
    per_file = -(-records // files)
    with jsonl.open() as source:
        for i in range(files):
            with (folder / f"{i:05d}.jsonl").open("w") as out:
                for line in (source.readline() for _ in range(per_file)):
                    if line:
                        r = json.loads(line)
                        out.write(json.dumps({"id": r["id"], "text": user_text(r)}) + "\n")
    return jsonl, folder


def recipe(work: Path, jsonl: Path, step: dict[str, Any] | None, workers: int) -> Path:
    body = {
        "name": "near_dedup_bench",
        "output_dir": str(work / "out"),
        "sources": [{"name": "near", "format": "sharegpt", "path": str(jsonl)}],
        "steps": [] if step is None else [{"step": "dedup_near", "text": "user", **step}],
        "outputs": [{"format": "parquet"}],
        "runner": {"workers": workers, "shard_size": 5000},
        "seed": 1,  # datatrove's default seed, for `hashes: datatrove`
    }
    name = "none" if step is None else "-".join(f"{k}{v}" for k, v in step.items())
    path = work / f"recipe-{name}.json"
    path.write_text(json.dumps(body))
    return path


def run_sftforge(work: Path, path: Path, label: str) -> dict[str, Any]:
    out = work / label
    shutil.rmtree(out, ignore_errors=True)
    cmd = [*PEER.sftforge_executable(), "run", str(path), "--out", str(out), "--quiet"]
    began = children_cpu()
    run = PEER.run_sampled(cmd, PEER.prefect_env(work / "prefect-home"), work / f"{label}.log")
    PEER.check(run, f"sftforge {label}")
    manifest = json.loads((out / "manifest.json").read_text())
    pairs: set[tuple[int, int]] = set()
    rejects = out / "rejects" / "dedup_near"
    if rejects.exists():
        for r in pq.read_table(rejects, columns=["id", "detail"]).to_pylist():
            pairs.add((int(r["id"][4:]), int(r["detail"].split(" ")[0][4:])))
    shutil.rmtree(out, ignore_errors=True)
    return {
        "wall": manifest["wall_seconds"],
        "cpu": children_cpu() - began,
        "command": run.seconds,
        "usage": run.usage,
        "stages": manifest["stages"],
        "pairs": pairs,
    }


# ---------------------------------------------------------------- datatrove

SCRIPT = """
import json, struct, sys, time
from pathlib import Path
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup.minhash import (MinhashConfig, MinhashDedupBuckets,
    MinhashDedupCluster, MinhashDedupFilter, MinhashDedupSignature)
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter
from datatrove.utils.word_tokenizers import WordTokenizer

class Words(WordTokenizer):  # the text is simplified first: lower case, no punctuation
    def word_tokenize(self, text): return text.split()
    def sent_tokenize(self, text): return [text]
    def span_tokenize(self, text): return [(0, len(text))]

def main():
    src, work, workers, shingle, bands, rows = sys.argv[1:7]
    workers, files = int(workers), len(list(Path(src).glob("*.jsonl")))
    config = MinhashConfig(n_grams=int(shingle), num_buckets=int(bands),
                           hashes_per_bucket=int(rows))
    logs = f"{work}/logs"
    stages = [
        ([JsonlReader(src), MinhashDedupSignature(f"{work}/sigs", config=config, language=Words())],
         files),
        ([MinhashDedupBuckets(f"{work}/sigs", f"{work}/buckets", config=config)], int(bands)),
        ([MinhashDedupCluster(f"{work}/buckets", f"{work}/remove", config=config,
                              save_cluster_id=True)], 1),
        ([JsonlReader(src), MinhashDedupFilter(f"{work}/remove"),
          JsonlWriter(f"{work}/out")], files),
    ]
    seconds = []
    for i, (pipeline, tasks) in enumerate(stages):
        began = time.perf_counter()
        LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=min(workers, tasks),
                              logging_dir=f"{logs}/{i}").run()
        seconds.append(time.perf_counter() - began)
    clusters = {}
    for path in sorted(Path(f"{work}/remove").glob("*.clusters")):
        data = path.read_bytes()
        for doc, cid in struct.iter_unpack("<II", data):
            clusters.setdefault(cid, []).append((int(path.stem), doc))
    print(json.dumps({"seconds": seconds, "clusters": list(clusters.values())}))


if __name__ == "__main__":  # the executor spawns processes that import this file
    main()
"""


def ensure_venv() -> Path:
    python = VENV / "bin" / "python"
    probe = [str(python), "-c", "import datatrove.pipeline.dedup.minhash, xxhash; xxhash.xxh64('')"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    print(f"creating {VENV.relative_to(ROOT)} ({' '.join(DATATROVE)}) ...", flush=True)
    uv = Path(sys.executable).with_name("uv")
    if uv.exists():
        venv = [str(uv), "venv", "-q", "--clear", "-p", sys.executable, str(VENV)]
        subprocess.run(venv, check=True)
        subprocess.run(
            [str(uv), "pip", "install", "-q", "--python", str(python), *DATATROVE], check=True
        )
    else:
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *DATATROVE], check=True)
    return python


def run_datatrove(
    python: Path, folder: Path, work: Path, workers: int, index: int, per_file: int
) -> dict[str, Any]:
    scratch = work / f"datatrove-{index}"
    shutil.rmtree(scratch, ignore_errors=True)
    script = work / "datatrove_minhash.py"
    script.write_text(SCRIPT)
    s = SAME_AS_DATATROVE
    cmd = [
        str(python),
        str(script),
        str(folder),
        str(scratch),
        str(workers),
        str(s["shingle"]),
        str(s["bands"]),
        str(s["rows"]),
    ]
    log = work / f"datatrove-{index}.log"
    env = {**os.environ, "DATATROVE_COLORIZE_LOGS": "0", "HF_HUB_OFFLINE": "1"}
    with log.open("w") as err:
        began, cpu_began = time.perf_counter(), children_cpu()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
        with PEER.TreeSampler(proc.pid) as sampler:
            stdout, _ = proc.communicate()
        seconds = time.perf_counter() - began
    if proc.returncode != 0:
        raise SystemExit(f"datatrove failed:\n{log.read_text()[-3000:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    pairs = set()
    for members in result["clusters"]:
        rows = sorted(f * per_file + d for f, d in members)
        pairs.update((r, rows[0]) for r in rows[1:])
    shutil.rmtree(scratch, ignore_errors=True)
    return {
        "wall": sum(result["seconds"]),
        # Its pool's processes are not all waited for: their sampled CPU time counts too.
        "cpu": max(children_cpu() - cpu_began, sum(sampler.usage.cpu_seconds_by_role.values())),
        "stages": result["seconds"],
        "command": seconds,
        "usage": sampler.usage,
        "pairs": pairs,
    }


# ---------------------------------------------------------------- report


def median(values: list[float]) -> float:
    return statistics.median(values)


def planted_found(pairs: set[tuple[int, int]], planted: list[dict[str, Any]]) -> str:
    duplicates = {d for d, _ in pairs}
    hit = sum(1 for p in planted if int(p["id"][4:]) in duplicates)
    return f"{hit}/{len(planted)}"


def cpu(run: dict[str, Any]) -> float:
    return run["cpu"]


def children_cpu() -> float:
    """CPU seconds of every waited-for child process tree so far (a command's workers are
    waited for by it; a Prefect server it leaves running is not, and does not count)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def describe(
    label: str,
    runs: list[dict[str, Any]],
    records: int,
    base: list[dict[str, Any]] | None,
    planted: list[dict[str, Any]],
) -> dict[str, Any]:
    """One table row. sftforge's dedup is its run less the run without the step (`base`):
    wall time of the flows, and CPU seconds of the process trees (steadier on a busy
    machine: other processes' load stretches wall time, not CPU time)."""
    wall, used = median([r["wall"] for r in runs]), median([cpu(r) for r in runs])
    if base is not None:
        wall -= median([r["wall"] for r in base])
        used -= median([cpu(r) for r in base])
    stages = [s for s in runs[0]["stages"] if isinstance(s, dict)]  # datatrove's: seconds
    stage = next((s for s in stages if s.get("name") == "dedup_near"), None)
    row = {
        "tool": label,
        "duplicates": len(runs[0]["pairs"]),
        "planted found": planted_found(runs[0]["pairs"], planted),
        "dedup wall s": round(wall, 1),
        "rec/s (wall)": round(records / wall) if wall > 0 else None,
        "dedup CPU s": round(used, 1),
        "rec/CPU-s": round(records / used) if used > 0 else None,
        "step worker-s": round(stage["seconds"], 1) if stage else None,
        "main RSS MB": round(median([r["usage"].rss_by_role.get("main", 0) for r in runs]) / MB),
        "tree RSS MB": round(median([r["usage"].rss_total for r in runs]) / MB),
    }
    print("  ".join(f"{k}: {v}" for k, v in row.items()), flush=True)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--no-datatrove", action="store_true")
    parser.add_argument("--keep", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    work = args.keep or Path(tempfile.mkdtemp(prefix="near-dedup-"))
    work.mkdir(parents=True, exist_ok=True)
    jsonl, folder = write_inputs(work, args.records, args.workers)
    planted = [json.loads(line) for line in Path(f"{jsonl}.planted.jsonl").read_text().splitlines()]
    per_file = -(-args.records // args.workers)
    print(
        f"{args.records} records, {len(planted)} planted near-duplicates, "
        f"{args.workers} workers, work dir {work}",
        flush=True,
    )
    rows, results = [], {}
    base = [
        run_sftforge(work, recipe(work, jsonl, None, args.workers), "base")
        for _ in range(args.repeats)
    ]
    print(
        f"sftforge read + parquet, no dedup: {median([r['wall'] for r in base]):.1f} s "
        f"wall, {median([cpu(r) for r in base]):.1f} CPU s",
        flush=True,
    )
    same = [
        run_sftforge(work, recipe(work, jsonl, SAME_AS_DATATROVE, args.workers), "same")
        for _ in range(args.repeats)
    ]
    rows.append(describe("sftforge 14x8, datatrove's hashes", same, args.records, base, planted))
    results["sftforge, datatrove's hashes"] = same[0]["pairs"]
    own = [
        run_sftforge(work, recipe(work, jsonl, OWN_HASHES, args.workers), "own")
        for _ in range(args.repeats)
    ]
    rows.append(describe("sftforge 14x8, own hashes", own, args.records, base, planted))
    results["sftforge, own hashes"] = own[0]["pairs"]
    defaults = [
        run_sftforge(work, recipe(work, jsonl, {}, args.workers), "defaults")
        for _ in range(args.repeats)
    ]
    rows.append(
        describe("sftforge defaults (18x7, verified 0.8)", defaults, args.records, base, planted)
    )
    if not args.no_datatrove:
        try:
            python = ensure_venv()
        except (subprocess.CalledProcessError, OSError) as exc:
            print(f"datatrove could not be installed: {exc}", flush=True)
        else:
            runs = [
                run_datatrove(python, folder, work, args.workers, i, per_file)
                for i in range(args.repeats)
            ]
            rows.append(describe("datatrove 14x8", runs, args.records, None, planted))
            print("datatrove stages (s): " + ", ".join(f"{s:.1f}" for s in runs[0]["stages"]))
            b = runs[0]["pairs"]
            for label, a in results.items():
                agreement = len(a & b) / max(len(a | b), 1)
                print(
                    f"pairs: {label} {len(a)}, datatrove {len(b)}, both {len(a & b)}, "
                    f"agreement {agreement:.2%}",
                    flush=True,
                )
                rows.append({"run": label, "agreement": agreement, "both": len(a & b)})
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
