"""Batches of CPU work spread over processes, results back in input order.

Tokenizing is Rust, but assembling, checking and serializing the examples is Python, and one
Python thread cannot keep two cores busy beside the tokenizer. So long inputs go to spawned
processes, each with its own copy of the work object (and its own single-threaded tokenizer:
two processes each encoding on one core waste less than one process encoding on two).

The first batch runs in the calling process: a one-batch input (most tests, the demo) never
starts processes, and for a longer one they start while that batch runs here. In-flight batches
are bounded, so memory does not grow with the input.

Workers start with mimalloc preloaded when the machine has it (Debian: libmimalloc2.0). The
tokenizer's Rust code allocates and frees several times per token; under glibc's malloc a quarter
of encoding's instructions were the allocator, and with mimalloc encoding takes about a third less
CPU. Results are the same bytes either way. `SFTFORGE_WORKER_MALLOC` names another library to
preload, or is empty to preload nothing.
"""

from __future__ import annotations

import ctypes.util
import multiprocessing
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from functools import lru_cache
from itertools import chain, islice
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_work: Callable[[Any], Any] | None = None  # the worker process's copy


def _install(make_work: Callable[[], Callable[[Any], Any]]) -> None:
    global _work
    # One core per process: the processes are the parallelism (read per call by tokenizers).
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    _work = make_work()


def _run(item: Any) -> Any:
    assert _work is not None, "worker process not initialized"
    return _work(item)


def ordered_map(
    make_work: Callable[[], Callable[[T], R]],
    items: Iterable[T],
    *,
    workers: int,
    per_worker: int = 2,
) -> Iterator[R]:
    """make_work()(item) for every item, in order. `make_work` must pickle (a partial of a
    top-level callable): each worker process calls it once."""
    rest = iter(items)
    first, second = next(rest, _END), next(rest, _END)
    if first is _END:
        return
    work = make_work()
    # One item, or a daemonic process (a Dask worker, a pool worker: it may not start processes
    # of its own): everything here.
    if second is _END or workers <= 1 or multiprocessing.current_process().daemon:
        yield from map(work, chain([first], [] if second is _END else [second], rest))
        return
    pool = ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_install,
        initargs=(make_work,),
    )
    try:
        queue = chain([second], rest)
        pending: deque[Future[R]] = deque()

        def top_up() -> None:  # keep the workers busy while the caller writes a result
            for item in islice(queue, workers * per_worker - len(pending)):
                pending.append(pool.submit(_run, item))

        # The rest is queued first: the workers start (imports, tokenizer) while the first
        # item runs here, and take work the moment they are up. Running more items here
        # would leave them idle: two processes already fill two cores.
        with _worker_environment():  # submit() spawns the processes, with this environment
            top_up()
        yield work(first)
        while pending:
            result = pending.popleft().result()
            top_up()
            yield result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


_END: Any = object()


@lru_cache(maxsize=1)
def worker_malloc() -> str | None:
    """The allocator library worker processes preload, or None for the C library's malloc."""
    configured = os.environ.get("SFTFORGE_WORKER_MALLOC")
    if configured is not None:
        return configured or None
    return ctypes.util.find_library("mimalloc")


_environment_lock = threading.Lock()  # flows write outputs from several threads


@contextmanager
def _worker_environment() -> Iterator[None]:
    """LD_PRELOAD for processes spawned inside the block. (A spawned process gets the
    environment of the moment it starts; multiprocessing has no per-pool environment.)"""
    library = worker_malloc()
    with _environment_lock:
        before = os.environ.get("LD_PRELOAD")
        if library is None or library in (before or "").split():
            yield
            return
        os.environ["LD_PRELOAD"] = f"{library} {before}" if before else library
        try:
            yield
        finally:
            if before is None:
                os.environ.pop("LD_PRELOAD", None)
            else:
                os.environ["LD_PRELOAD"] = before


def cpu_count() -> int:
    """The CPUs this process may run on (a container's or taskset's limit, not the host's)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
