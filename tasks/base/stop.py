"""A stop request (Ctrl-C, SIGTERM) as the code under the command line sees it.

The command line (flows/interruptible.py) owns the signals; this module is how the work
below it takes part without knowing about signals:

- `on_stop(callback)`: a block that can wind down gracefully (the augment step: send nothing
  new, let the calls in flight finish into the journal) registers what to do; the stopping
  command waits for the block to end, up to a grace time, before it exits;
- `at_exit(callback)`: what must happen even on an exit that skips `finally` blocks (the
  output directory's lock, the live display) — the stopping command calls these last.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

_lock = threading.Lock()
_requested = threading.Event()
_graceful: dict[int, tuple[Callable[[], None], threading.Event]] = {}
_exit_hooks: dict[int, Callable[[], None]] = {}


def requested() -> bool:
    return _requested.is_set()


@contextmanager
def on_stop(callback: Callable[[], None]) -> Iterator[None]:
    """Within the block, a stop request calls `callback` (from another thread: make it
    thread-safe); the stopping command then waits for the block to end."""
    ended = threading.Event()
    key = id(ended)
    with _lock:
        _graceful[key] = (callback, ended)
        already = _requested.is_set()
    if already:
        callback()
    try:
        yield
    finally:
        ended.set()
        with _lock:
            _graceful.pop(key, None)


@contextmanager
def at_exit(callback: Callable[[], None]) -> Iterator[None]:
    """Within the block, an exit by a stop request calls `callback` (once, last)."""
    key = id(callback)
    with _lock:
        _exit_hooks[key] = callback
    try:
        yield
    finally:
        with _lock:
            _exit_hooks.pop(key, None)


def request_stop() -> list[threading.Event]:
    """Ask every graceful block to wind down; returns the events set when each has ended."""
    with _lock:
        _requested.set()
        blocks = list(_graceful.values())
    for callback, _ in blocks:
        callback()
    return [ended for _, ended in blocks]


def run_exit_hooks() -> None:
    with _lock:
        hooks = list(_exit_hooks.values())
        _exit_hooks.clear()
    for hook in reversed(hooks):  # the innermost block's first
        # On the way out, one failing hook must not stop the rest.
        with suppress(Exception):
            hook()
