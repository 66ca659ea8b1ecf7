"""Ctrl-C and SIGTERM for a command that runs a flow: out within seconds, nothing lost.

The flow runs in a thread; the main thread keeps the signals. Prefect's engine, run in the
main thread, swaps in its own SIGTERM handler, and a KeyboardInterrupt raised in the middle
of its engine, its thread pool and a process pool took minutes to unwind (and printed
hundreds of lines). Here a first signal:

1. asks the work to stop (tasks/base/stop.py): the augment step sends nothing new and its
   calls in flight finish into the journal, for up to GRACE_SECONDS;
2. kills the worker processes (their unfinished shards were never marked complete: every
   file is written under a temporary name and renamed once whole, so a rerun redoes them);
3. runs the exit hooks (the output directory's lock, the live display), marks the flow run
   cancelled on the Prefect server, prints one line saying what finished, and exits with
   128 + the signal (130 for SIGINT, 143 for SIGTERM).

A second signal exits at once. Worker processes ignore SIGINT (tasks/base/pool.py): the
terminal sends it to the whole process group, and their tracebacks would bury the line.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

from sftforge.tasks.base import stop

T = TypeVar("T")
GRACE_SECONDS = 6.0
_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_NAMES = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}

_flow_run_id: str | None = None


def remember_flow_run() -> None:
    """Called inside the flow: the run to mark cancelled on the server if the command stops."""
    global _flow_run_id
    from prefect.runtime import flow_run

    _flow_run_id = flow_run.get_id()


def _children() -> list[int]:
    """This process's child processes (workers, the read stage's process, a local cluster),
    not multiprocessing's resource tracker: it ignores signals by design and cleans up after
    the workers; killed, it would be relaunched with a warning while the flow winds down."""
    from multiprocessing import resource_tracker

    pids: set[int] = {p.pid for p in multiprocessing.active_children() if p.pid}
    with suppress(OSError):
        for task in Path(f"/proc/{os.getpid()}/task").iterdir():
            with suppress(OSError):
                pids.update(int(p) for p in (task / "children").read_text().split())
    pids.discard(getattr(resource_tracker._resource_tracker, "_pid", None) or -1)
    return sorted(pids)


def _kill_children() -> None:
    for pid in _children():
        with suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def _mark_cancelled() -> None:
    if _flow_run_id is None:
        return
    with suppress(Exception):  # best effort: the server may be slow or gone
        from prefect.client.orchestration import get_client
        from prefect.states import Cancelled

        with get_client(sync_client=True) as client:
            client.set_flow_run_state(
                _flow_run_id, Cancelled(message="stopped by the user"), force=True
            )


def _quiet_resource_tracker() -> None:
    """multiprocessing's resource tracker outlives a stopped command by a moment, unlinks the
    semaphores of the killed pool, and warns about each on stderr, below the line that says
    what finished. The cleanup stays; the warning goes. (Set before the tracker starts: it
    takes its warning filters from the environment when the first pool makes it.)"""
    quiet = "ignore:resource_tracker:UserWarning"
    current = os.environ.get("PYTHONWARNINGS", "")
    if quiet not in current.split(","):
        os.environ["PYTHONWARNINGS"] = f"{current},{quiet}" if current else quiet


class Interruptible:
    """`run(fn, *args)` in a thread, with the signal handling described above;
    `describe()` says what finished when a signal stops it."""

    def __init__(self, describe: Callable[[], str]) -> None:
        self.describe = describe
        self.signum: int | None = None

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:  # the second: out now
            os.write(2, b"\nsftforge: stopped at once; rerun the same command to resume\n")
            _kill_children()
            os._exit(128 + self.signum)
        self.signum = signum

    def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                box["value"] = fn(*args, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread as it is
                box["error"] = exc

        # A signal ignored when the command started (a background job of a script: `sftforge
        # run … &` ignores SIGINT) stays ignored, as Python leaves it.
        handled = [s for s in _SIGNALS if signal.getsignal(s) is not signal.SIG_IGN]
        previous = {s: signal.signal(s, self._on_signal) for s in handled}
        _quiet_resource_tracker()
        thread = threading.Thread(target=target, name="sftforge-run", daemon=True)
        try:
            thread.start()
            while thread.is_alive():
                thread.join(0.1)
                if self.signum is not None:
                    self._stop(thread)
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
        if "error" in box:
            raise box["error"]
        return box["value"]

    def _stop(self, thread: threading.Thread) -> None:
        assert self.signum is not None
        began = time.monotonic()
        graceful = stop.request_stop()
        if graceful:
            print(
                f"\nsftforge: {_NAMES.get(self.signum, 'signal')}: finishing what is in "
                f"flight (up to {GRACE_SECONDS:.0f} s; again to stop at once)",
                file=sys.stderr,
                flush=True,
            )
        for ended in graceful:
            ended.wait(max(0.0, GRACE_SECONDS - (time.monotonic() - began)))
        _kill_children()
        stop.run_exit_hooks()  # the live display first (innermost), then OUT's lock
        if sys.stderr.isatty():
            sys.stderr.write("\x1b[?25h")  # the cursor, in case a display hid it
        _mark_cancelled()
        try:
            finished = self.describe()
        except Exception as exc:  # noqa: BLE001 - the line must come out whatever happened
            finished = f"progress unknown ({type(exc).__name__})"
        print(
            f"\nsftforge: {_NAMES.get(self.signum, 'signal')}: stopped after "
            f"{time.monotonic() - began:.1f} s; {finished}. "
            "Rerun the same command to resume.",
            file=sys.stderr,
            flush=True,
        )
        sys.stdout.flush()
        os._exit(128 + self.signum)
