"""The API key never reaches the journal, the outputs or the logs -- even when the server
echoes it back in an error, as OpenAI does for a wrong key."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from augment_support import SECRET_KEY, fast_config, make_records
from llmock.scenarios import Fail

from sftforge.tasks.steps.augment import augment_records


def test_the_key_is_in_no_file_written(start_server, api_env, tmp_path: Path) -> None:
    server = start_server()
    api_env(server)
    masked = SECRET_KEY[:8] + "*" * 20 + SECRET_KEY[-4:]
    server.state.scenarios.add(
        Fail(401, message=f"Incorrect API key provided: {masked}."),
        Fail(429, retry_after=0.05, message=f"Rate limit for key {SECRET_KEY}"),
        Fail(403, message=f"Key {SECRET_KEY} may not use this model"),
    )
    log_file = tmp_path / "run.log"
    handler = logging.FileHandler(log_file)
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)  # the openai and http libraries' debug logs too
    try:
        out = augment_records(
            make_records(6),
            fast_config(concurrency=2),
            tmp_path / "out" / "journal.sqlite",
            on_progress=lambda p: (tmp_path / "progress.json").write_text(json.dumps(p)),
        )
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()
    (tmp_path / "out" / "records.json").write_text(json.dumps(out), encoding="utf-8")

    failed = sorted((r for r in out if r["status"] == "failed"), key=lambda r: r["error"])
    assert [r["error"][:8] for r in failed] == ["HTTP 401", "HTTP 403"]
    assert all("[redacted]" in r["error"] for r in failed)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"journal.sqlite", "records.json", "run.log"}
    assert log_file.stat().st_size > 0
    for path in files:
        data = path.read_bytes()
        for needle in (SECRET_KEY, SECRET_KEY[8:], SECRET_KEY[-12:]):
            assert needle.encode() not in data, f"{needle[:6]}... found in {path.name}"
