"""Helpers shared by the augment tests (imported by name: tests/augment is on sys.path)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import yaml

from sftforge.tasks.steps.augment.step import AugmentStep

SELFEE_FILE = (
    Path(__file__).resolve().parents[2] / "../shared/data/selfee_conala_feedback.jsonl"
).resolve()

# Looks like a real key, so a leak would be found by the scan in test_augment_secrets.
SECRET_KEY = "sk-test-9f8e7d6c5b4a39281706f5e4d3c2b1a0"


def fast_config(**overrides: Any) -> AugmentStep:
    """A step that does not make tests wait: no ramp, short backoff, small completions."""
    values: dict[str, Any] = {
        "step": "augment",
        "rpm": 60_000,
        "tpm": 10_000_000,
        "ramp_seconds": 0,
        "backoff_base_seconds": 0.05,
        "backoff_max_seconds": 0.5,
        "max_tokens": {"answer": 64, "feedback": 32, "revision": 64},
        "concurrency": 4,
    }
    values.update(overrides)
    return AugmentStep.model_validate(values)


NEEDED = "Wrong bounds. Score: 4\n\nRevision is needed."
NOT_NEEDED = "Correct. Score: 9. Revision is not needed."


def instruction_record(**fields: str) -> dict:
    base = {
        "id": "x1",
        "source": "test",
        "dataset": "unit",
        "instruction": "Add one to n",
        "input": "",
        "output": "",
    }
    return {**base, **fields}


def script(server: Any, *texts: str) -> None:
    """llmock replies, in order."""
    from llmock.scenarios import Reply

    server.state.scenarios.add(*(Reply(text=t) for t in texts))


def sent(server: Any) -> list[list[dict]]:
    """The messages of every request the llmock server saw, in order."""
    return [r.body["messages"] for r in server.state.journal.records(wait=2.0)]


def make_records(n: int, *, stop_every: int = 2, prefix: str = "question") -> list[dict]:
    """Instruction records. With an echo server, the feedback repeats the start of its prompt
    (the instruction), so records whose instruction says "no need" stop after one pair and the
    others run to the cap."""
    records = []
    for i in range(n):
        words = f"{prefix} {i}: write a function that adds {i} to a number"
        if stop_every and i % stop_every == 0:
            words += " (no need to explain)"
        records.append(
            {
                "id": f"r{i}",
                "source": "test",
                "dataset": "unit",
                "instruction": words,
                "input": "",
                "output": "",
            }
        )
    return records


class PickyServer:
    """A small OpenAI-compatible server (chat completions only) that fails some prompts for
    good: a prompt containing `[fail-NNN]` gets HTTP NNN every time (llmock's scripted
    failures cannot pick requests by content); any other gets "Revision is not needed.", so
    a record's chain is one answer and one feedback. `with PickyServer() as s: s.base_url`."""

    def __init__(self) -> None:
        import http.server
        import threading

        picky = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                picky.requests += 1
                picky.seen.append({k.lower(): v for k, v in self.headers.items()})
                status = _failing_status(body.decode("utf-8", "replace"))
                payload = _error(status) if status else _completion()
                data = json.dumps(payload).encode()
                self.send_response(status or 200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:  # no request lines on stderr
                pass

        self.requests = 0
        self.seen: list[dict[str, str]] = []  # each request's HTTP headers, lower-cased names
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> PickyServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _failing_status(body: str) -> int | None:
    found = re.search(r"\[fail-(\d{3})\]", body)
    return int(found.group(1)) if found else None


def _error(status: int) -> dict[str, Any]:
    return {"error": {"message": f"scripted failure {status}", "type": "test", "code": None}}


def _completion() -> dict[str, Any]:
    return {
        "id": "chatcmpl-picky",
        "object": "chat.completion",
        "created": 0,
        "model": "gpt-3.5-turbo",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Fine. Revision is not needed."},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 20, "completion_tokens": 6, "total_tokens": 26},
    }


# ---------------------------------------------------------------- `sftforge run` as a user runs it

SFTFORGE = str(Path(sys.executable).parent / "sftforge")


def write_recipe(root: Path, instructions: list[str], **augment: Any) -> Path:
    """root/aug.yaml: the instructions (an Alpaca-style source, 10 per shard) -> augment (fast
    retries, two attempts) -> parquet and JSONL exports into root/out."""
    data = root / "in.jsonl"
    data.write_text("".join(json.dumps({"instruction": t}) + "\n" for t in instructions))
    options = fast_config(max_iterations=2, max_attempts=2, backoff_max_seconds=0.2, **augment)
    source = {"name": "alpaca", "format": "hf", "path": str(data)}
    source["mapping"] = {"instruction": "{instruction}"}
    config = {
        "name": "aug",
        "output_dir": str(root / "out"),
        "sources": [source],
        "steps": [options.model_dump(mode="json", exclude_defaults=True)],
        "outputs": [{"format": "parquet"}, {"format": "jsonl", "name": "augmented"}],
        "runner": {"shard_size": 10, "workers": 1},
    }
    path = root / "aug.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def sftforge_run(
    recipe: Path, base_url: str, prefect_home: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    """`sftforge run RECIPE ARGS` against the server at base_url, on the local Prefect server
    sftforge starts and keeps (PREFECT_API_URL unset), as a user's runs are."""
    env = {**os.environ, "OPENAI_BASE_URL": base_url, "OPENAI_API_KEY": SECRET_KEY}
    env.update(PREFECT_HOME=str(prefect_home), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    env["COLUMNS"] = "200"  # the summary table unwrapped
    env.pop("PREFECT_API_URL", None)
    command = [SFTFORGE, "run", str(recipe), *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


def stage_rows(out: Path, stage: str) -> list[dict[str, Any]]:
    parts = sorted((out / stage).glob("part-*.parquet"))
    return [row for part in parts for row in pq.read_table(part).to_pylist()]


def picky_instructions() -> list[str]:
    """20 instructions for PickyServer: 2 fail with HTTP 500 (retried, then failed), 2 with
    HTTP 400 (never retried)."""
    marks = {3: " [fail-500]", 7: " [fail-500]", 11: " [fail-400]", 15: " [fail-400]"}
    return [f"Explain idea {i} in one line.{marks.get(i, '')}" for i in range(20)]
