"""Helpers of the operations tests: process control, Prefect servers, partitioned inputs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import load_generator

BIN = Path(sys.executable).parent
PREFECT = str(BIN / "prefect")
SFTFORGE = str(BIN / "sftforge")
POOL = "sftforge"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """Terminate the process group this test started (SIGTERM, then SIGKILL)."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def base_env(home: Path, api_url: str | None = None) -> dict[str, str]:
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    env.pop("PREFECT_API_URL", None)
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


@dataclass
class Server:
    api_url: str
    home: Path
    log: Path

    def env(self, home: Path | None = None) -> dict[str, str]:
        return base_env(home or self.home, self.api_url)


def wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"prefect server exited:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    tail = log.read_text()[-3000:]
    raise RuntimeError(f"prefect server not healthy after {timeout:.0f} s:\n{tail}")


def run_cli(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 120):
    result = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} -> {result.returncode}\n{result.stdout[-3000:]}\n"
            f"{result.stderr[-3000:]}"
        )
    return result


# ---------------------------------------------------------------- partitioned input

PARTITION_RECIPE = """\
name: daily
output_dir: {out}
sources:
  - name: sharegpt
    format: sharegpt
    path: {dumps}
    license: cc-by-4.0
partitions:
  source: sharegpt
  pattern: {dumps}/{{date}}/*.jsonl
steps:
  - step: html_to_markdown
  - step: check_structure
  - step: filter_blocked_words
    words: [openai]
  - step: dedup_exact
  - step: filter_model
    models: ["Model: GPT-4", gpt4]
outputs:
  - format: parquet
runner:
  shard_size: {shard_size}
  workers: {workers}
"""


def make_partitions(
    root: Path,
    days: list[int],
    records: int = 60,
    shard_size: int = 30,
    workers: int = 2,
) -> Path:
    """dumps/2023-04-DD/sg.jsonl for each day (seeded by the day) and recipe.yaml; returns
    the recipe's path. Paths in the recipe are absolute, so a deployment's flow run (whose
    working directory is the project) finds them too."""
    generator = load_generator()
    dumps = root / "dumps"
    for day in days:
        path = dumps / f"2023-04-{day:02d}" / "sg.jsonl"
        generator.write_jsonl(path, generator.generate(records, seed=day, flawed_share=0.2))
    recipe = root / "recipe.yaml"
    recipe.write_text(
        PARTITION_RECIPE.format(
            out=root / "out", dumps=dumps, shard_size=shard_size, workers=workers
        )
    )
    return recipe


def partition_files(out: Path) -> dict[str, bytes]:
    """Every output byte that must not depend on how the backfill ran."""
    return {
        str(p.relative_to(out)): p.read_bytes()
        for p in sorted(out.rglob("*.parquet"))
        if ".sftforge" not in p.parts
    }


def manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


AUGMENTED_RECIPE = """\
name: selfee_demo
output_dir: {out}
seed: 42
sources:
  - name: conala
    format: hf
    path: data/instructions/conala.jsonl
    license: mit
    mapping: {{instruction: "{{intent}}", output: "{{snippet}}"}}
steps:
  - step: augment
    model: gpt-3.5-turbo
    max_iterations: 3
"""


def write_augmented_run(out: Path, records: int = 40) -> Path:
    """OUT of a small augmented run: read -> augment, a journal of its calls over 10 minutes."""
    import random
    import sqlite3

    from sftforge.tasks.base.shards import records_table, stage_part, write_table_atomic
    from sftforge.tasks.steps.augment.journal import Journal

    rng = random.Random(5)
    base, augmented = [], []
    for i in range(records):
        record = {
            "id": f"conala-{i}",
            "source": "conala",
            "dataset": "conala",
            "instruction": f"generate the python code snippet: sort list number {i} " * 3,
            "input": "",
            "output": "sorted(a)",
            "meta": {},
        }
        base.append(record)
        pairs = rng.choice([1, 1, 1, 2, 2, 3])
        truncated = pairs == 3 and rng.random() < 0.5
        failed = i == 7
        augmented.append(
            {
                **record,
                "outputs": [
                    {"output": f"answer {k}", "feedback": "Revision is needed."}
                    for k in range(pairs)
                ],
                "iteration": pairs,
                "iteration_truncated": truncated,
                "truncated": i % 9 == 0,
                "usage": {
                    "prompt_tokens": 300 * pairs,
                    "completion_tokens": 120 * pairs,
                    "cost": round(0.0003 * pairs, 6),
                },
                "status": "failed" if failed else "done",
                "error": "429 after 6 attempts" if failed else None,
            }
        )
    write_table_atomic(records_table(base, "instruction"), stage_part(out, "read", 0))
    write_table_atomic(records_table(augmented, "augmented"), stage_part(out, "augment", 0))
    write_table_atomic(
        records_table(augmented, "augmented"), out / "dataset" / "part-00000.parquet"
    )
    journal_path = out / ".sftforge" / "augment" / "journal.sqlite"
    with Journal(journal_path) as journal:
        for i, record in enumerate(augmented):
            key = f"call-{i}"
            journal.started(key, {"model": "gpt-3.5-turbo", "i": i})
            usage = record["usage"]
            journal.finish(
                key, "{}", usage["prompt_tokens"], usage["completion_tokens"], usage["cost"]
            )
    with sqlite3.connect(journal_path) as db:  # spread the calls over ten minutes
        db.execute("UPDATE calls SET updated = 1700000000 + 15 * CAST(substr(key, 6) AS INT)")
    stage = {"in": records, "out": records, "rejected": {}, "seconds": 1.0}
    body = {
        "recipe": "selfee_demo",
        "kind": "augmented",
        "config_hash": "0123456789abcdef",
        "seed": 42,
        "output_dir": str(out),
        "shards": 1,
        "workers": 1,
        "stages": [{"name": "read", **stage}, {"name": "augment", **stage, "seconds": 600.0}],
        "outputs": {"parquet": str(out / "dataset")},
        "wall_seconds": 605.0,
        "versions": {"sftforge": "0.1.0", "prefect": "3.7.8"},
    }
    (out / "manifest.json").write_text(json.dumps(body))
    (out / "recipe.yaml").write_text(AUGMENTED_RECIPE.format(out=out))
    return out
