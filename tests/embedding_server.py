"""A real OpenAI-compatible HTTP server for the embedding tests, on a free loopback port.

- `POST /v1/embeddings`: deterministic hashed bag-of-words vectors (each lower-cased word adds
  ±1 at an xxhash-chosen coordinate, then L2-normalised), so texts that share most words are
  close and unrelated texts are not; base64 float32 when asked (`encoding_format`), else
  float lists; `dimensions` honoured (default 256).
- `POST /v1/chat/completions`: the judge. It answers `yes` when the two questions in the
  prompt share at least `judge_overlap` of their words, `no` otherwise, unless a scripted
  answer matches a substring of the prompt.
- Controls: `fail_next(n, status)` answers the next n requests with that status;
  `delay_seconds` sleeps before each answer; `requests` logs every body; `fail_containing`
  fails (HTTP 400) any embeddings request whose input holds that text.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import xxhash

WORD = re.compile(r"[a-z0-9]+")


def bag_of_words(text: str, dimensions: int) -> np.ndarray:
    vector = np.zeros(dimensions, dtype=np.float32)
    for word in WORD.findall(text.lower()):
        h = xxhash.xxh64_intdigest(word.encode())
        vector[h % dimensions] += 1.0 if (h >> 32) & 1 else -1.0
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm else vector


class EmbeddingServer:
    def __init__(self, judge_overlap: float = 0.6) -> None:
        self.requests: list[dict[str, Any]] = []
        self.delay_seconds = 0.0
        self.judge_overlap = judge_overlap
        self.scripted: dict[str, str] = {}
        self.fail_containing: str | None = None
        self._failures: list[int] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status, answer = server.answer(self.path, body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}/v1"

    def __enter__(self) -> EmbeddingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.shutdown()
        self._http.server_close()

    def fail_next(self, n: int, status: int = 500) -> None:
        with self._lock:
            self._failures.extend([status] * n)

    def embedding_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if "input" in r]

    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.requests.append(body)
            failure = self._failures.pop(0) if self._failures else None
        if self.delay_seconds:
            time.sleep(self.delay_seconds)
        if failure is not None:
            return failure, {"error": {"message": f"scripted {failure}", "type": "server"}}
        if path.endswith("/embeddings"):
            return self._embeddings(body)
        if path.endswith("/chat/completions"):
            return 200, self._judge(body)
        return 404, {"error": {"message": f"no route {path}"}}

    def _embeddings(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        inputs = [body["input"]] if isinstance(body["input"], str) else body["input"]
        if self.fail_containing and any(self.fail_containing in text for text in inputs):
            return 400, {"error": {"message": "scripted bad input", "type": "invalid_request"}}
        dimensions = int(body.get("dimensions") or 256)
        data = []
        for index, text in enumerate(inputs):
            vector = bag_of_words(text, dimensions)
            value: Any = (
                base64.b64encode(vector.astype("<f4").tobytes()).decode()
                if body.get("encoding_format") == "base64"
                else vector.tolist()
            )
            data.append({"object": "embedding", "index": index, "embedding": value})
        tokens = sum(len(WORD.findall(text.lower())) for text in inputs)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return 200, {"object": "list", "data": data, "model": body["model"], "usage": usage}

    def _judge(self, body: dict[str, Any]) -> dict[str, Any]:
        prompt = "\n".join(m["content"] for m in body["messages"])
        answer = next((a for key, a in self.scripted.items() if key in prompt), None)
        if answer is None:
            first, _, second = prompt.partition("\n---\n")
            a, b = set(WORD.findall(first.lower())), set(WORD.findall(second.lower()))
            share = len(a & b) / max(1, min(len(a), len(b)))
            answer = "yes" if share >= self.judge_overlap else "no"
        message = {"role": "assistant", "content": answer}
        return {
            "id": "judge",
            "object": "chat.completion",
            "model": body["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": len(prompt) // 4, "completion_tokens": 1},
        }
