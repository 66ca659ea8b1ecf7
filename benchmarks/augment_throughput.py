"""Throughput and resume benchmark of the augment step (not a test; run it by hand).

    python benchmarks/augment_throughput.py throughput --records 1000 --rpm 600 \\
        --tpm 200000
    python benchmarks/augment_throughput.py resume --calls 100000

`throughput` starts `llmock serve` with the quota, runs the loop on instructions that each
take an answer and a feedback call, and reports the requests and tokens per minute the server
accepted after the first minute (as a fraction of the quota), the share of 429s and peak RSS.
`resume` writes a journal holding every call of N/2 records and times a rerun over it, with
the API pointed at a port where nothing listens (so any call sent would fail the run).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from sftforge.tasks.steps.augment import augment_records
from sftforge.tasks.steps.augment.journal import Journal, call_key
from sftforge.tasks.steps.augment.loop import LoopSettings
from sftforge.tasks.steps.augment.presets import answer_messages, feedback_messages, resolve_preset
from sftforge.tasks.steps.augment.step import AugmentStep
from sftforge.tasks.steps.augment.tokens import count_messages, fit_messages, make_counter


def records(n: int) -> list[dict]:
    return [
        {
            "id": f"b{i}",
            "source": "bench",
            "dataset": "bench",
            "input": "",
            "output": "",
            "instruction": f"Write a function number {i} (no need to explain)",
        }
        for i in range(n)
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def throughput(n: int, rpm: int, tpm: int) -> dict:
    port = free_port()
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "llmock"),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--rpm",
            str(rpm),
            "--tpm",
            str(tpm),
            "--response-style",
            "echo",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(url + "/health", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        os.environ["OPENAI_BASE_URL"] = url + "/v1"
        os.environ["OPENAI_API_KEY"] = "bench-key"
        config = AugmentStep(step="augment", rpm=rpm, tpm=tpm, concurrency=32)
        journal = Path(tempfile.mkdtemp()) / "journal.sqlite"
        started = time.monotonic()
        out = augment_records(records(n), config, journal)
        elapsed = time.monotonic() - started
        with urllib.request.urlopen(url + "/_llmock/requests") as response:
            log = json.load(response)["requests"]
    finally:
        server.terminate()
        server.wait()
    t0 = min(r["started_at"] for r in log)
    ok = [r for r in log if r["status"] == 200]
    steady = [r for r in ok if r["started_at"] >= t0 + 60]
    span = max(r["started_at"] for r in log) - (t0 + 60)
    # What the server charged each request against its TPM: a quarter of the body's bytes
    # (compact JSON, as the client sends it) plus max_tokens.
    charged = sum(
        len(json.dumps(r["body"], ensure_ascii=False, separators=(",", ":")).encode()) // 4
        + r["body"]["max_tokens"]
        for r in steady
    )
    return {
        "records": n,
        "done": sum(1 for r in out if r["status"] == "done"),
        "seconds": round(elapsed, 1),
        "requests": len(log),
        "share_429": round(sum(1 for r in log if r["status"] == 429) / len(log), 4),
        "rpm_after_first_minute": round(len(steady) / span * 60, 1) if span > 0 else None,
        "rpm_fraction": round(len(steady) / span * 60 / rpm, 3) if span > 0 else None,
        "tpm_after_first_minute": round(charged / span * 60) if span > 0 else None,
        "tpm_fraction": round(charged / span * 60 / tpm, 3) if span > 0 else None,
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def write_journal(path: Path, config: AugmentStep, recs: list[dict]) -> int:
    """Every answer and feedback call of `recs`, as a finished run would have left them."""
    settings = LoopSettings(resolve_preset(config), config, make_counter(config.model, "auto"))
    calls = 0
    with Journal(path) as journal:
        journal._db.execute("PRAGMA synchronous=OFF")  # building the fixture, not measuring it
        journal._db.execute("BEGIN")
        for rec in recs:
            answer = f"def f{rec['id']}(): pass"
            for kind, head, text in (
                ("answer", answer_messages(settings.preset, rec), answer),
                (
                    "feedback",
                    feedback_messages(settings.preset, rec, answer),
                    "Fine. Score: 9. Revision is not needed.",
                ),
            ):
                params = settings.params(kind)
                budget = settings.budget(params["max_tokens"])
                messages, _ = fit_messages(settings.counter, head, [], budget)
                request = {**params, "messages": messages}
                key = call_key(request, config.sample, record=rec["id"])
                body = json.dumps(
                    {
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": "stop",
                                "message": {"role": "assistant", "content": text},
                            }
                        ],
                        "usage": {
                            "prompt_tokens": count_messages(settings.counter, messages),
                            "completion_tokens": 12,
                        },
                    }
                )
                journal.started(key, request)
                journal.finish(key, body, 100, 12, 0.0)
                calls += 1
        journal._db.execute("COMMIT")
    return calls


def resume(calls: int) -> dict:
    n = calls // 2
    config = AugmentStep(step="augment", concurrency=32)
    journal = Path(tempfile.mkdtemp()) / "journal.sqlite"
    built = write_journal(journal, config, records(n))
    os.environ["OPENAI_BASE_URL"] = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens
    os.environ["OPENAI_API_KEY"] = "bench-key"
    timings = []
    for _ in range(2):
        # First: every chain replayed from its calls (a crash before records were saved);
        # second: the finished records' saved results.
        started = time.monotonic()
        out = augment_records(records(n), config, journal)
        timings.append(round(time.monotonic() - started, 2))
        assert all(r["status"] == "done" for r in out)
    return {
        "journal_calls": built,
        "records": n,
        "seconds_replaying_calls": timings[0],
        "seconds_from_saved_records": timings[1],
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="what", required=True)
    t = sub.add_parser("throughput")
    t.add_argument("--records", type=int, default=1000)
    t.add_argument("--rpm", type=int, default=600)
    t.add_argument("--tpm", type=int, default=200_000)
    r = sub.add_parser("resume")
    r.add_argument("--calls", type=int, default=100_000)
    args = parser.parse_args()
    if args.what == "throughput":
        result = throughput(args.records, args.rpm, args.tpm)
    else:
        result = resume(args.calls)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
