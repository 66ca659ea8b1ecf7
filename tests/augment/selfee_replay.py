"""A replay of SelFee's recorded chains: an OpenAI-compatible server that answers each request
with the text SelFee recorded for that record and round -- and only when the request is the
one SelFee's teacher script sent for it, message for message.

The expected requests are rebuilt here from SelFee's script
(data_augmentation/call_openai_multiprocessing_flan.py), independently of the package's
presets, with SelFee's wording written out, so a drift in either shows as a mismatch.
"""

from __future__ import annotations

import collections
import http.server
import json
import threading
from dataclasses import dataclass
from typing import Any

import xxhash

HEADER = "X-Replay-Record"

CRITIQUE = (
    "Are there any comments or critiques for the above answer? If so, write one under 100 words."
    " You may score the quality of the answer on the scale of 1-10 (1: no code/no sense; 10: "
    'perfect) Also, classify if revision is needed by responding "Revision is needed" or '
    '"Revision is not needed" at the end. Normally, score of less than 9 should be revised.\n\n'
    "Critique:"
)
TEACHER = (
    "You are given a role as a teaching assistant. You are going to get an instruction and its "
    "corresponding answer. Your job is to make me find the answer by giving an appropriate "
    "feedback. If the proposed answer is different from the ground truth, that means there "
    "should be some revision. You should guide me by giving an instruction that helps me find "
    "the answer without directly mentioning it. You should not directly mention about the "
    "answer when giving a feedback, because that is a cheating."
)
REVISE = (
    "Revise the answer based on your own critique with minimal edits. Your revision should be "
    "simple and clear, so do not add any rhetorics such as apology for the past mistake. Write "
    "as if the revised answer is the first try.\nRevision:"
)
STOP = ("no critique", "no revision", "no need", "not needed")


@dataclass(frozen=True)
class Expected:
    max_tokens: int
    reply: str


def _user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def _said(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def _key(messages: list[dict[str, Any]]) -> str:
    return json.dumps(messages, sort_keys=True, ensure_ascii=False)


def teacher_calls(row: dict[str, Any]) -> list[tuple[list[dict[str, str]], Expected]]:
    """Every request SelFee's teacher script sent for this recorded chain, with its reply."""
    question = row["instruction"] + ("\n" + row["input"] if row["input"] != "" else "")
    student = [_user(question)]
    teacher = [
        _user(TEACHER),
        _user(f"Here is the instruction:\n{question}\n"),
        _user(f"Here is the answer:\n{row['output']}\n"),
    ]
    calls = []
    for k, pair in enumerate(row["outputs"]):
        answer, feedback = pair["output"], pair["feedback"]
        if k:
            student.append(_user(REVISE))
        calls.append((list(student), Expected(512, answer)))
        student.append(_said(answer))
        if k:
            teacher.append(_user(answer))
            teacher.append(_user(f"Here is a revised proposed answer:\n{answer}\n\n{CRITIQUE}"))
        else:
            teacher.append(_user(f"Here is my initial answer:\n{answer}\n\n{CRITIQUE}"))
        calls.append((list(teacher), Expected(128, feedback)))
        teacher.append(_said(feedback))
        student.append(_user(feedback))
    last = row["outputs"][-1]["feedback"].lower()
    if not any(p in last for p in STOP) and not row["iteration_truncated"]:
        # The chain stopped on a critique that asked for a revision, below the cap: SelFee's
        # early exit on a revision saying "N/A", which it did not record.
        calls.append((student + [_user(REVISE)], Expected(512, "N/A")))
    return calls


class ReplayServer:
    """`with ReplayServer(rows) as s: s.base_url`. Rows need an `id`; requests name it in the
    X-Replay-Record header. Deterministic faults: per (record, request, attempt), a 429 with
    `p429` and a 500 with `p500` on the first two attempts; never on later ones."""

    def __init__(self, rows: list[dict[str, Any]], p429: float = 0.05, p500: float = 0.02):
        self.calls = {row["id"]: dict((_key(m), e) for m, e in teacher_calls(row)) for row in rows}
        self.expected_count = sum(len(calls) for calls in self.calls.values())
        self.p429, self.p500 = p429, p500
        self.statuses: collections.Counter[int] = collections.Counter()
        self.answered: set[tuple[str, str]] = set()
        self.mismatches: list[str] = []
        self._attempts: collections.Counter[tuple[str, str]] = collections.Counter()
        self._lock = threading.Lock()
        replay = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: thousands of calls on a few sockets

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                status, payload, headers = replay.handle(self.headers.get(HEADER), body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                for name, value in {"content-type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def handle(self, record: str | None, raw: bytes) -> tuple[int, dict, dict[str, str]]:
        request = json.loads(raw)
        key = _key(request.get("messages"))
        with self._lock:
            self._attempts[(record or "", key)] += 1
            attempt = self._attempts[(record or "", key)]
        if attempt <= 2:
            draw = xxhash.xxh64_intdigest(f"{record}|{attempt}|{key}".encode()) / 2**64
            if draw < self.p429:
                return self._count(429, _error("replayed rate limit"), {"retry-after-ms": "10"})
            if draw < self.p429 + self.p500:
                return self._count(500, _error("replayed server error"), {})
        expected = self.calls.get(record or "", {}).get(key)
        if expected is None:
            return self._mismatch(record, request, "no such request in SelFee's chain")
        if request.get("max_tokens") != expected.max_tokens or request.get("temperature") != 1.0:
            return self._mismatch(record, request, "max_tokens or temperature differ")
        with self._lock:
            self.answered.add((record or "", key))
        return self._count(200, _completion(expected.reply, len(raw) // 4), {})

    def _count(self, status: int, payload: dict, headers: dict) -> tuple[int, dict, dict]:
        with self._lock:
            self.statuses[status] += 1
        return status, payload, headers

    def _mismatch(self, record: str | None, request: dict, why: str) -> tuple[int, dict, dict]:
        messages = request.get("messages") or []
        note = f"{record}: {why}: {len(messages)} messages, last {str(messages[-1:])[:300]!r}"
        with self._lock:
            self.mismatches.append(note)
        return self._count(400, _error(note), {})

    def __enter__(self) -> ReplayServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _error(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "replay", "code": None}}


def _completion(text: str, prompt_tokens: int) -> dict[str, Any]:
    completion_tokens = max(1, len(text) // 4)
    return {
        "id": "chatcmpl-replay",
        "object": "chat.completion",
        "created": 0,
        "model": "gpt-3.5-turbo",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
