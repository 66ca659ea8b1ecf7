"""Batches of CPU work spread over processes, results back in input order.

Tokenizing is Rust, but assembling, checking and serializing the examples is Python, and one
Python thread cannot keep two cores busy beside the tokenizer. So long inputs go to spawned
processes, each with its own copy of the work object (and its own single-threaded tokenizer:
two processes each encoding on one core waste less than one process encoding on two).

The first batches run in the calling process: a one-batch input (most tests, the demo) never
starts processes, and for a longer one they start while the next few batches run here. In-flight
batches are bounded, so memory does not grow with the input.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
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
    in_process_first: int = 4,
    per_worker: int = 2,
) -> Iterator[R]:
    """make_work()(item) for every item, in order. `make_work` must pickle (a partial of a
    top-level callable): each worker process calls it once."""
    work = make_work()
    rest = iter(items)
    for item in islice(rest, 1):
        yield work(item)
    second = next(rest, _END)
    if second is _END:
        return
    # A daemonic process (a Dask worker, a pool worker) may not start processes of its own.
    if workers <= 1 or multiprocessing.current_process().daemon:
        yield from map(work, chain([second], rest))
        return
    pool = ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_install,
        initargs=(make_work,),
    )
    try:
        # The processes start (imports, tokenizer) while the next batches run here.
        for _ in range(workers):
            pool.submit(int)
        rest = chain([second], rest)
        for item in islice(rest, in_process_first - 1):
            yield work(item)
        pending: deque[Future[R]] = deque()
        for item in rest:
            pending.append(pool.submit(_run, item))
            if len(pending) >= workers * per_worker:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


_END: Any = object()


def cpu_count() -> int:
    """The CPUs this process may run on (a container's or taskset's limit, not the host's)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
