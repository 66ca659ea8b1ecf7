"""A durable journal of API calls: SQLite in WAL mode, one row per call, keyed by content.

A call is written "started" (with the request) before it is sent and "done" (with the raw
response body) after it returns, each in its own committed transaction with a full fsync, so
a SIGKILL at any point leaves every finished call on disk. Calls are keyed by a hash of the
record that asks (its id) and of what is sent -- model, messages, generation parameters and
the sample index -- so a rerun that asks the same thing for the same record finds the answer
instead of paying for it again. Credentials are never part of a request row.

A second table keeps each finished record's result under a hash of the record and of the
settings that shape its chain: resuming a finished shard reads one row per record instead of
replaying every call. The calls stay the source of truth; the row is only a shortcut.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xxhash

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    key TEXT PRIMARY KEY,
    status TEXT NOT NULL CHECK (status IN ('started', 'done', 'failed')),
    request TEXT NOT NULL,
    response TEXT,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cost REAL NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    key TEXT PRIMARY KEY,
    result TEXT NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS batches (
    tag TEXT PRIMARY KEY,
    keys TEXT NOT NULL,
    file_id TEXT,
    batch_id TEXT,
    status TEXT NOT NULL CHECK (status IN ('open', 'closed')),
    created REAL NOT NULL,
    updated REAL NOT NULL
);
"""


@dataclass(frozen=True)
class BatchIntent:
    """A batch this run meant to submit: written before files.create, so that after a crash
    the batch can be found again (by `tag` in its metadata) instead of submitted twice."""

    tag: str
    keys: list[str]
    file_id: str | None
    batch_id: str | None
    created: float


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def call_key(
    request: dict[str, Any], sample: int, repeat: int = 0, record: str | None = None
) -> str:
    """Hash of one call; `request` is everything sent except credentials.

    `record` names the record that asks (its id): SelFee made one call per record, so two
    records sending the same request each get their own sample. None (`share_calls`): the
    key is the content alone and such records share one call.
    `repeat` counts earlier identical requests in the same chain: when a revision comes back
    unchanged, SelFee asks for feedback on it again and gets a fresh sample, not the old one.
    """
    fields: dict[str, Any] = {"request": request, "sample": sample, "repeat": repeat}
    if record is not None:
        fields["record"] = record
    return xxhash.xxh3_128_hexdigest(canonical_json(fields).encode("utf-8"))


@dataclass(frozen=True)
class DoneCall:
    response: str
    prompt_tokens: int
    completion_tokens: int
    cost: float


class Journal:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # Autocommit: every statement below is its own durable transaction.
        self._db = sqlite3.connect(path, isolation_level=None, timeout=60.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL fsyncs the WAL at each commit: a paid response survives power loss too.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=60000")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def done(self, key: str) -> DoneCall | None:
        row = self._db.execute(
            "SELECT response, prompt_tokens, completion_tokens, cost FROM calls "
            "WHERE key = ? AND status = 'done'",
            (key,),
        ).fetchone()
        return DoneCall(*row) if row else None

    def started(self, key: str, request: dict[str, Any]) -> None:
        """Record an attempt about to be sent (never downgrades a finished call)."""
        self._db.execute(
            "INSERT INTO calls (key, status, request, attempts, updated) "
            "VALUES (?, 'started', ?, 1, ?) "
            "ON CONFLICT(key) DO UPDATE SET status = 'started', attempts = attempts + 1, "
            "error = NULL, updated = excluded.updated WHERE calls.status != 'done'",
            (key, canonical_json(request), time.time()),
        )

    def finish(
        self, key: str, response: str, prompt_tokens: int, completion_tokens: int, cost: float
    ) -> None:
        self._db.execute(
            "UPDATE calls SET status = 'done', response = ?, prompt_tokens = ?, "
            "completion_tokens = ?, cost = ?, error = NULL, updated = ? WHERE key = ?",
            (response, prompt_tokens, completion_tokens, cost, time.time(), key),
        )

    def fail(self, key: str, error: str) -> None:
        self._db.execute(
            "UPDATE calls SET status = 'failed', error = ?, updated = ? "
            "WHERE key = ? AND status != 'done'",
            (error, time.time(), key),
        )

    def record_result(self, key: str) -> str | None:
        """A finished record's result, saved so a resume need not replay its whole chain."""
        row = self._db.execute("SELECT result FROM records WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def save_records(self, results: list[tuple[str, str]]) -> None:
        """(key, result) pairs in one transaction: one fsync for many records. Losing the
        last batch to a crash costs a replay from the calls, never a call."""
        now = time.time()
        self._db.execute("BEGIN")
        try:
            self._db.executemany(
                "INSERT OR REPLACE INTO records (key, result, updated) VALUES (?, ?, ?)",
                [(key, result, now) for key, result in results],
            )
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def open_batch(self, tag: str, keys: list[str]) -> None:
        now = time.time()
        self._db.execute(
            "INSERT OR IGNORE INTO batches (tag, keys, status, created, updated) "
            "VALUES (?, ?, 'open', ?, ?)",
            (tag, json.dumps(keys), now, now),
        )

    def update_batch(
        self, tag: str, *, file_id: str | None = None, batch_id: str | None = None
    ) -> None:
        self._db.execute(
            "UPDATE batches SET file_id = COALESCE(?, file_id), batch_id = COALESCE(?, batch_id),"
            " updated = ? WHERE tag = ?",
            (file_id, batch_id, time.time(), tag),
        )

    def close_batch(self, tag: str) -> None:
        self._db.execute(
            "UPDATE batches SET status = 'closed', updated = ? WHERE tag = ?", (time.time(), tag)
        )

    def open_batches(self) -> list[BatchIntent]:
        rows = self._db.execute(
            "SELECT tag, keys, file_id, batch_id, created FROM batches WHERE status = 'open' "
            "ORDER BY created"
        ).fetchall()
        return [BatchIntent(t, json.loads(k), f, b, c) for t, k, f, b, c in rows]

    def closed_batches(self, prefix: str) -> int:
        (n,) = self._db.execute(
            "SELECT COUNT(*) FROM batches WHERE status = 'closed' AND tag LIKE ? || '%'",
            (prefix,),
        ).fetchone()
        return int(n)

    def spent(self) -> float:
        """Dollars of every finished call in the journal, this run's and earlier runs'."""
        (total,) = self._db.execute("SELECT COALESCE(SUM(cost), 0) FROM calls").fetchone()
        return float(total)

    def counts(self) -> dict[str, int]:
        rows = self._db.execute("SELECT status, COUNT(*) FROM calls GROUP BY status").fetchall()
        return {status: n for status, n in rows}
