"""Watches: how far a stage that runs as one blocking task has got, read from disk.

A watch is polled by StageProgress (progress.py) from a background thread; it counts what the
stage has finished so far from its shard markers (and, while reading the sources, how far
into the input files this process is), so the engine needs no callback.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path


class Watch:
    """`watch()` -> (records done, estimated total or None); `reused`: (records, shards) an
    earlier run had finished when the watch was made, before the stage started."""

    def __init__(
        self, poll: Callable[[], tuple[int, int | None]], reused: tuple[int, int] = (0, 0)
    ) -> None:
        self.poll, self.reused = poll, reused

    def __call__(self) -> tuple[int, int | None]:
        return self.poll()


class MarkerCount:
    """Records done so far in a stage: the `in` of its shard markers with this fingerprint.
    Made before the stage starts, it notes the markers already there: the shards the stage
    will reuse (`reused_records`, `reused_shards`).

    Markers are written once per shard and never change for a fingerprint, so each file is
    read once (by name and mtime).
    """

    def __init__(self, state_dir: Path, fingerprint: str) -> None:
        self.state_dir, self.fingerprint = state_dir, fingerprint
        self._seen: dict[str, tuple[int, int | None]] = {}  # None: not this fingerprint
        self.reused_records = self()
        self.reused_shards = sum(1 for _, n in self._seen.values() if n is not None)

    def __call__(self) -> int:
        total = 0
        try:
            entries = list(os.scandir(self.state_dir))
        except FileNotFoundError:
            return 0
        for entry in entries:
            if not (entry.name.startswith("part-") and entry.name.endswith(".json")):
                continue
            mtime = entry.stat().st_mtime_ns
            cached = self._seen.get(entry.name)
            if cached is None or cached[0] != mtime:
                try:
                    stats = json.loads(Path(entry.path).read_text())
                except (OSError, json.JSONDecodeError):
                    continue
                n = stats.get("in", 0) if stats.get("fingerprint") == self.fingerprint else None
                cached = self._seen[entry.name] = (mtime, n)
            total += cached[1] or 0
        return total


class InputPosition:
    """How far this process has read through `files` (read in this order), by bytes.

    Linux only: the offset of an open file is in /proc/self/fdinfo. Nothing else tells how
    far a streaming reader is into a 1 GB dump without a hook in the reader itself.
    """

    def __init__(self, files: list[Path]) -> None:
        self.sizes: list[int] = []
        self.index: dict[str, int] = {}
        for i, path in enumerate(files):
            try:
                self.sizes.append(path.stat().st_size)
                self.index[str(path.resolve())] = i
            except OSError:
                self.sizes.append(0)
        self.total = sum(self.sizes)

    def __call__(self) -> float | None:
        if not self.total or not os.path.isdir("/proc/self/fdinfo"):
            return None
        best: tuple[int, int] | None = None  # (file index, offset) of the furthest open input
        for fd in os.listdir("/proc/self/fd"):
            try:
                i = self.index.get(os.readlink(f"/proc/self/fd/{fd}"))
                if i is None:
                    continue
                with open(f"/proc/self/fdinfo/{fd}") as fh:
                    pos = int(fh.readline().split()[1])  # first line: "pos:\t<offset>"
            except (OSError, ValueError, IndexError):
                continue
            if best is None or (i, pos) > best:
                best = (i, pos)
        if best is None:
            return None
        i, pos = best
        return min((sum(self.sizes[:i]) + min(pos, self.sizes[i])) / self.total, 1.0)


def read_watch(state_dir: Path, fingerprint: str, files: list[Path]) -> Watch:
    """Records read so far and, from the bytes read, an estimate of the records in total."""
    count = MarkerCount(state_dir, fingerprint)
    position = InputPosition(files)

    def watch() -> tuple[int, int | None]:
        done = count()
        fraction = position()
        if done and fraction and fraction > 0.02:
            return done, int(done / fraction)
        return done, None

    return Watch(watch, (count.reused_records, count.reused_shards))


def marker_watch(state_dir: Path, fingerprint: str) -> Watch:
    count = MarkerCount(state_dir, fingerprint)
    return Watch(lambda: (count(), None), (count.reused_records, count.reused_shards))
