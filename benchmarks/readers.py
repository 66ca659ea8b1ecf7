"""Reader throughput: sftforge's record-by-record readers against the libraries they replace.

    python benchmarks/readers.py [--records 100000] [--repeats 5]

Writes --records ShareGPT conversations (data/instructions/sharegpt.json repeated) as a
pretty-printed JSON list and as JSON Lines, and Alpaca rows as JSON Lines and CSV; reads
each with sftforge (`iter_source`, what the read stage calls) and with the peer it replaced:
ijson for lists (run with `uvx --with ijson` when it is not installed: it is no longer a
dependency), `datasets.load_dataset(..., streaming=True)` for the hf rows. Each measurement
runs in a fresh process; printed: medians of records/s and the process's peak RSS.
Not a test: it never fails on time.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def write_inputs(folder: Path, n: int) -> dict[str, Path]:
    sample = json.loads((REPO / "data" / "instructions" / "sharegpt.json").read_text())
    conversations = [{**sample[k % len(sample)], "id": f"c{k}"} for k in range(n)]
    paths = {name: folder / name for name in ("list.json", "conv.jsonl", "rows.jsonl", "rows.csv")}
    paths["list.json"].write_text(json.dumps(conversations, indent=2))
    paths["conv.jsonl"].write_text("".join(json.dumps(c) + "\n" for c in conversations))
    rows = [
        {"instruction": f"Question {k}: {'why ' * 20}?", "input": "", "output": "word " * 80}
        for k in range(n)
    ]
    paths["rows.jsonl"].write_text("".join(json.dumps(r) + "\n" for r in rows))
    with paths["rows.csv"].open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return paths


def measure(reader: str, path: Path) -> None:
    """In a child process: read `path` with `reader`, print records, seconds, peak RSS (MB)."""
    from sftforge.schemas.recipe import SourceConfig
    from sftforge.tasks.readers.sources import iter_source

    began = time.perf_counter()
    if reader == "ijson":
        import ijson

        with path.open("rb") as fh:
            count = sum(1 for _ in ijson.items(fh, "item", use_float=True))
    elif reader == "datasets":
        import datasets

        builder = "csv" if path.suffix == ".csv" else "json"
        ds = datasets.load_dataset(builder, data_files=str(path), split="train", streaming=True)
        count = sum(len(batch["instruction"]) for batch in ds.iter(batch_size=1000))
    else:
        fmt = "sharegpt" if path.name in ("list.json", "conv.jsonl") else "hf"
        source = SourceConfig(name="s", format=fmt, path=str(path))
        count = sum(1 for _ in iter_source(source, [path]))
    seconds = time.perf_counter() - began
    # VmHWM, not ru_maxrss: a child's ru_maxrss starts at its parent's size at fork.
    status = Path("/proc/self/status").read_text()
    rss = int(next(ln for ln in status.splitlines() if ln.startswith("VmHWM:")).split()[1]) / 1024
    print(json.dumps({"records": count, "seconds": seconds, "rss_mb": rss}))


def run_child(reader: str, path: Path, python: list[str]) -> dict | None:
    cmd = [*python, __file__, "--child", reader, str(path)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if done.returncode != 0:
        print(f"  {reader}: failed: {done.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        measure(args.child[0], Path(args.child[1]))
        return
    ours = [sys.executable]
    try:
        import ijson  # noqa: F401

        ijson_python = ours
    except ImportError:  # not a dependency any more: borrow it in a throwaway environment
        uvx = str(Path(sys.executable).parent / "uvx")
        ijson_python = [uvx, "--quiet", "--with", "ijson", "--with-editable", str(REPO), "python"]
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_inputs(Path(tmp), args.records)
        cases = [
            ("list.json", "sftforge", ours),
            ("list.json", "ijson", ijson_python),
            ("conv.jsonl", "sftforge", ours),
            ("rows.jsonl", "sftforge", ours),
            ("rows.jsonl", "datasets", ours),
            ("rows.csv", "sftforge", ours),
            ("rows.csv", "datasets", ours),
        ]
        print(f"{args.records:,} records, medians of {args.repeats} runs, one process each")
        print(f"{'input':12s} {'reader':10s} {'records/s':>12s} {'peak RSS MB':>12s}")
        for name, reader, python in cases:
            runs = [run_child(reader, paths[name], python) for _ in range(args.repeats)]
            done = [r for r in runs if r]
            if not done:
                continue
            rate = statistics.median(r["records"] / r["seconds"] for r in done)
            rss = statistics.median(r["rss_mb"] for r in done)
            print(f"{name:12s} {reader:10s} {rate:12,.0f} {rss:12,.0f}")


if __name__ == "__main__":
    main()
