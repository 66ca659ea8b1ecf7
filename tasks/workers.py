"""The process pool that does the CPU work of shard tasks.

Prefect tasks run in a thread pool in the flow's process; each one hands its shard to
this process pool. (Prefect's own ProcessPoolTaskRunner starts a temporary API server in
every worker process when no server is configured: about 20 s more per run here.)
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")

_pool: ProcessPoolExecutor | None = None


@contextmanager
def worker_pool(workers: int) -> Iterator[None]:
    """Within this block, `run_in_worker` uses `workers` processes (1: run in-process)."""
    global _pool
    if workers <= 1:
        yield
        return
    # spawn, not fork: the flow's process has threads (Prefect's, ours) at this point.
    _pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        yield
    finally:
        pool, _pool = _pool, None
        pool.shutdown(wait=True, cancel_futures=True)


def run_in_worker(fn: Callable[..., T], *args: Any) -> T:
    if _pool is None:
        return fn(*args)
    return _pool.submit(fn, *args).result()
