"""(Named tokenize_files.py, not tokenize.py: a script folder holding tokenize.py shadows the
standard library module of that name for every script run from it.)

Benchmark: conversations → OpenChat token files with the project's tokenizer (issue 5 §7).

    python benchmarks/tokenize_files.py                      # 20,000 conversations, 3 runs
    python benchmarks/tokenize_files.py --conversations 80000   # memory must not grow with input

Each run is a fresh process (so its peak RSS is its own) that streams the conversations from a
generator — never holding the input — through tasks/outputs/token_files.py `write_openchat_tokens`
with everything on: the checks of §6 (ids, masks, lengths, special tokens, supervised text
decoded run by run), the .json token file, the .text.json decoded text and the parquet twin.
Long inputs run on worker processes (tasks/base/pool.py), so reported per run: tokens
written per second of that call (median of the runs), text MB/s, the CPU seconds it used in
the process and its workers (CPU-s per million tokens does not depend on how busy the machine
is; wall time does, so the load average is printed), the peak RSS of the process (ru_maxrss)
next to its RSS before the call, and the largest worker's peak RSS (VmHWM, polled). For
scale, each run also times the tokenizer alone (the same batched call on the same messages,
in-process, both cores, with this process's allocator — the workers preload mimalloc when it
is installed, so the pipeline can beat this figure). `SFTFORGE_WORKER_MALLOC= python
benchmarks/tokenize_files.py` measures the workers without it.

The conversations are the demo generator's (data/make_sharegpt_sample.py), answers converted to
Markdown once by the project's html_to_markdown, then cycled with fresh ids up to the count.
"""

from __future__ import annotations

import os
import sys

# Run as a script, this file's folder is on sys.path first, and this file's name would shadow
# the standard library's `tokenize` (inspect and linecache import it): take the folder out.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def base_conversations(n: int = 600) -> list[dict[str, Any]]:
    sys.path.insert(0, str(REPO / "data"))
    import make_sharegpt_sample as sample

    from sftforge.tasks.steps.html_to_markdown import html_to_markdown

    roles = {"human": "user", "gpt": "assistant"}
    convs = []
    for item in sample.generate(n, seed=99, flawed_share=0.0):
        assert isinstance(item, dict)
        messages = [
            {
                "role": roles[t["from"]],
                "content": html_to_markdown(t["value"]) if t["from"] == "gpt" else t["value"],
            }
            for t in item["conversations"]
        ]
        convs.append({"id": item["id"], "source": "bench", "model": None, "messages": messages})
    return convs


def stream(base: list[dict[str, Any]], count: int) -> Iterator[dict[str, Any]]:
    for i in range(count):
        conv = base[i % len(base)]
        yield {**conv, "id": f"bench-{i}", "meta": {}}


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(count: int, long_conversations: str) -> dict[str, Any]:
    from sftforge.schemas.training import OpenChatTokensOutput, TokenizerConfig
    from sftforge.tasks.base.pool import worker_malloc
    from sftforge.tasks.outputs.token_files import write_openchat_tokens
    from sftforge.tasks.outputs.tokenizer import load_tokenizer

    config = OpenChatTokensOutput(
        format="openchat_tokens",
        tokenizer=TokenizerConfig(
            path=str(REPO / "data" / "tokenizer"), special_tokens=["<|end_of_turn|>"]
        ),
        long_conversations=long_conversations,
        workers=int(os.environ["SFTFORGE_BENCH_WORKERS"])
        if os.environ.get("SFTFORGE_BENCH_WORKERS")
        else None,
    )
    base = base_conversations()
    chars = sum(len(m["content"]) for c in base for m in c["messages"])
    text_bytes = (
        count / len(base) * sum(len(m["content"].encode()) for c in base for m in c["messages"])
    )
    with tempfile.TemporaryDirectory() as tmp:
        # Warm-up on one conversation (no worker processes): the modules a run imports once
        # (pyarrow.parquet, the process pool) are not part of the rate, as loading is not.
        write_openchat_tokens(Path(tmp), config, lambda: stream(base, 1), lambda record: "train")
    before = rss_mb()
    with tempfile.TemporaryDirectory() as tmp, WorkerPeaks() as workers:
        cpu, start = cpu_seconds(), time.perf_counter()
        result = write_openchat_tokens(
            Path(tmp), config, lambda: stream(base, count), lambda record: "train"
        )
        seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    tokens = result["counts"]["train_tokens"]
    tok = load_tokenizer(config.tokenizer)
    texts = [m["content"] for c in base for m in c["messages"]]
    batch = config.batch_size * len(texts) // len(base)
    encoded, start = 0, time.perf_counter()
    for _ in range(count // len(base)):
        for at in range(0, len(texts), batch):
            encoded += sum(map(len, tok.encode(texts[at : at + batch])))
    encode_seconds = time.perf_counter() - start
    return {
        "conversations": count,
        "tokens": tokens,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "tokens_per_s": tokens / seconds,
        "encode_only_tokens_per_s": encoded / encode_seconds,
        "text_mb_per_s": text_bytes / seconds / 1e6,
        "chars_per_token": chars * count / len(base) / tokens,
        "cpu_per_million_tokens": cpu / tokens * 1e6,
        "rss_before_mb": before,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "worker_peak_rss_mb": workers.peak_mb,
        "load_average": os.getloadavg()[0],
        "worker_malloc": worker_malloc() or "the C library's malloc",
    }


class WorkerPeaks:
    """The largest VmHWM of this process's children, polled while they run. (Not
    RUSAGE_CHILDREN: a spawned child's ru_maxrss starts at the parent's RSS when it forked.)"""

    def __init__(self, every: float = 0.05) -> None:
        self.every, self.peak_mb, self._stop = every, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> WorkerPeaks:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _poll(self) -> None:
        while not self._stop.wait(self.every):
            for pid in _children():
                try:
                    with open(f"/proc/{pid}/status") as fh:
                        for line in fh:
                            if line.startswith("VmHWM:"):
                                self.peak_mb = max(self.peak_mb, int(line.split()[1]) / 1024)
                except OSError:  # exited between listing and reading
                    pass


def _children() -> list[str]:
    pids = []
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/children") as fh:
                pids += fh.read().split()
        except OSError:  # a thread that ended since the listing
            pass
    return pids


def cpu_seconds() -> float:
    """This process and its finished worker processes (the pool is shut down by then)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--long-conversations", choices=["truncate", "split"], default="truncate")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.conversations, args.long_conversations)))
        return
    runs = []
    for _ in range(args.runs):
        proc = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                "--conversations",
                str(args.conversations),
                "--long-conversations",
                args.long_conversations,
            ],
            check=True,
            capture_output=True,
            text=True,
            cwd=REPO,
        )
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    rate = statistics.median(r["tokens_per_s"] for r in runs)
    mbps = statistics.median(r["text_mb_per_s"] for r in runs)
    print(
        f"{args.conversations} conversations, {runs[0]['tokens']:,} tokens "
        f"({runs[0]['chars_per_token']:.2f} chars/token), {args.runs} runs"
    )
    for r in runs:
        print(
            f"  {r['seconds']:.2f} s (CPU {r['cpu_seconds']:.2f} s, "
            f"{r['cpu_per_million_tokens']:.2f} CPU-s per M tokens)  {r['tokens_per_s']:,.0f} "
            f"tokens/s  [tokenizer alone: {r['encode_only_tokens_per_s']:,.0f} tokens/s]  "
            f"RSS before {r['rss_before_mb']:.0f} MB, peak {r['peak_rss_mb']:.0f} MB, "
            f"worker peak {r['worker_peak_rss_mb']:.0f} MB, load {r['load_average']:.2f}"
        )
    alone = statistics.median(r["encode_only_tokens_per_s"] for r in runs)
    print(f"median: {rate:,.0f} tokens/s ({mbps:.1f} MB/s of text)")
    print(f"median, tokenizer alone (batched encode, no files): {alone:,.0f} tokens/s")
    print(f"load average during the runs: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"peak RSS (max of runs): {max(r['peak_rss_mb'] for r in runs):.0f} MB")
    print(f"worker processes' allocator: {runs[0]['worker_malloc']} (SFTFORGE_WORKER_MALLOC)")


if __name__ == "__main__":
    main()
