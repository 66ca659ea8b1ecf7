"""One output directory, one run: `OUT/.sftforge/lock` names the run that holds OUT.

Two runs writing one OUT interleave their shards, and whichever finishes last leaves a
manifest that describes neither. So a run takes this lock before it touches OUT and keeps it
to its end, however it ends (an error, Ctrl-C); a second run refuses at once, naming the
holder. The lock is JSON `{pid, host, started}` (plus what tells a reused pid apart), made
complete under a temporary name and hard-linked into place, so no reader ever sees half of
one. A lock whose process is gone (same host, pid not running, or running since later than
the lock says: a reused pid) is taken over, and said so on stderr; one from another host is
refused, since nothing here tells whether that run is still alive.

The lock is per OUT and per call: one process may hold several (a backfill runs partitions
into different OUT folders from threads), but never the same OUT twice.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import sys
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from sftforge.schemas.loading import ConfigError
from sftforge.tasks.base import stop
from sftforge.tasks.base.shards import WORK_DIR

LOCK_NAME = "lock"


def lock_path(out: Path) -> Path:
    return out / WORK_DIR / LOCK_NAME


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def _boot_id() -> str | None:
    """This boot of the machine (Linux): a lock from before a reboot is stale whatever its pid."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def _process_start(pid: int) -> str | None:
    """When `pid` started, in clock ticks since boot (Linux /proc; None elsewhere): a process
    with the lock's pid but another start time reused the pid of a run that is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 (starttime); fields are counted after the command name, which may hold spaces.
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else None


def _holder_text() -> str:
    body = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": datetime.now().astimezone().isoformat(timespec="seconds"),
        "process_start": _process_start(os.getpid()),
        "boot_id": _boot_id(),
    }
    return json.dumps(body) + "\n"


def _parse(text: str) -> dict[str, Any] | None:
    try:
        body = json.loads(text)
    except json.JSONDecodeError:
        return None
    ok = isinstance(body, dict) and isinstance(body.get("host"), str)
    pid = body.get("pid") if ok else None
    # os.kill(0 or less, 0) would signal a process group: such a pid is no lock of ours.
    return body if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0 else None


def _gone(holder: dict[str, Any]) -> bool:
    """True when the holder certainly no longer runs (same host only; another host: False)."""
    if holder["host"] != socket.gethostname():
        return False
    boot = _boot_id()
    if holder.get("boot_id") and boot and holder["boot_id"] != boot:
        return True
    try:
        os.kill(holder["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    began = _process_start(holder["pid"])
    return bool(holder.get("process_start") and began and began != holder["process_start"])


def _create(path: Path, text: str) -> bool:
    """Make the lock with `text`, unless one exists (False). Complete before it is visible:
    written under a temporary name (not `.*.tmp`, which a run's start sweeps away), then
    hard-linked, which fails if the lock exists."""
    tmp = path.with_name(f"{LOCK_NAME}.new-{os.getpid()}-{threading.get_ident()}")
    tmp.write_text(text, encoding="utf-8")
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    except OSError as exc:  # a filesystem without hard links: exclusive create instead
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
            raise
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        return True
    finally:
        tmp.unlink(missing_ok=True)


def _take_over(path: Path, stale: str, text: str) -> bool:
    """Replace the stale lock `stale` with ours. Two runs may find the same stale lock: a
    lock on the folder lets one at a time look again and replace it, so the second finds
    the first's lock, alive, instead of deleting it."""
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if _read(path) != stale:
            return False  # released or taken meanwhile: look again
        path.unlink()
        return _create(path, text)
    finally:
        os.close(fd)  # and with it the folder lock


def _refusal(out: Path, path: Path, holder: dict[str, Any] | None) -> ConfigError:
    if holder is None:
        return ConfigError(
            f"{out}: locked by an unreadable {path}; remove it if no run is using {out}"
        )
    return ConfigError(
        f"{out}: in use by pid {holder['pid']} on host {holder['host']} since "
        f"{holder.get('started', '?')}; wait for it or remove {path} if that run is gone"
    )


def acquire(out: Path) -> str:
    """Take OUT's lock (ConfigError, one line, when another run holds it); returns the text
    written, which `release` checks before it removes the lock."""
    path = lock_path(out)
    text = _holder_text()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(10):  # each turn: the lock changed hands between two looks
            if _create(path, text):
                return text
            current = _read(path)
            if current is None:
                continue  # released meanwhile
            holder = _parse(current)
            if holder is None or not _gone(holder):
                raise _refusal(out, path, holder)
            if _take_over(path, current, text):
                print(
                    f"sftforge: {out}: took over the lock of pid {holder['pid']} "
                    f"(since {holder.get('started', '?')}), which is no longer running",
                    file=sys.stderr,
                )
                return text
    except OSError as exc:  # OUT not writable, not a folder, a full disk …
        reason = exc.strerror or str(exc)
        raise ConfigError(f"{out}: cannot take the run lock {path}: {reason}") from None
    raise ConfigError(f"{out}: could not take the run lock {path}: other runs keep taking it")


def live_holder(out: Path) -> dict[str, Any] | None:
    """The run holding OUT's lock now, if any: `{pid, host, started}` (a lock of another
    host counts, as `acquire` counts it); None for no lock, or a stale or unreadable one."""
    try:
        text = _read(lock_path(out))
    except OSError:
        return None
    holder = _parse(text) if text is not None else None
    return holder if holder is not None and not _gone(holder) else None


def release(out: Path, text: str) -> None:
    """Remove OUT's lock if it is still the one `acquire` wrote (not a later run's that took
    over a lock it judged stale)."""
    path = lock_path(out)
    with contextlib.suppress(OSError):
        if _read(path) == text:
            path.unlink()


@contextlib.contextmanager
def out_lock(out: Path) -> Iterator[None]:
    """Hold OUT's lock for the block: ConfigError at once if another run holds it."""
    text = acquire(out)
    try:
        # A stopped command exits without unwinding this block (flows/interruptible.py).
        with stop.at_exit(lambda: release(out, text)):
            yield
    finally:
        release(out, text)
