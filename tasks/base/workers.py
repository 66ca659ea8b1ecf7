"""Where the CPU work of shard tasks runs: a local process pool, or a Dask cluster.

Local: Prefect tasks run in a thread pool in the flow's process and each one hands its
shard to a process pool. (Prefect's own ProcessPoolTaskRunner starts a temporary API server
in every worker process when no server is configured: about 20 s more per run here.)

Dask: prefect-dask's DaskTaskRunner sends each shard task to a Dask worker, which runs the
shard in its own process. Workers read and write the run's output directory, so it must be
on storage every worker can reach, and they report task runs to the flow's Prefect API.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from itertools import islice
from typing import TYPE_CHECKING, Any, TypeVar

from sftforge.tasks.base.memory import then_release
from sftforge.tasks.base.ordered_pool import cpu_count

if TYPE_CHECKING:  # Prefect is imported only where it runs: worker processes do without it
    from prefect.task_runners import TaskRunner

T = TypeVar("T")

# A context variable, not a global: a backfill runs several recipe flows at once in one
# process, and Prefect copies the context into the threads that run their tasks.
_pool: ContextVar[Executor | None] = ContextVar("sftforge_worker_pool", default=None)


def worker_count(configured: int | None) -> int:
    """`runner.workers`, or else the CPUs this process may use (a container's or taskset's
    limit, which os.cpu_count() ignores)."""
    return configured or cpu_count()


@contextmanager
def worker_pool(workers: int, kind: str = "local") -> Iterator[None]:
    """Within this block, `run_in_worker` uses `workers` processes.

    No pool for one worker (run in-process), for a Dask runner (the task already runs in a
    Dask worker process), or when an enclosing block opened one (a backfill's partitions
    share its pool rather than each starting their own processes).
    """
    if workers <= 1 or kind != "local" or _pool.get() is not None:
        yield
        return
    # spawn, not fork: the flow's process has threads (Prefect's, ours) at this point.
    pool = ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("spawn"), initializer=_warm_up
    )
    # Start the processes now: their imports overlap the read stage, which runs in the flow's
    # process, instead of delaying the first shard.
    for _ in range(workers):
        pool.submit(int)
    token = _pool.set(pool)
    try:
        yield
    finally:
        _pool.reset(token)
        pool.shutdown(wait=True, cancel_futures=True)


def _warm_up() -> None:
    """Import what shard work needs (bs4, lxml, markdownify, pyarrow, the steps) once."""
    import pyarrow as pa

    import sftforge.tasks.pipeline.stages  # noqa: F401
    import sftforge.tasks.steps.html_to_markdown  # noqa: F401

    # One Arrow thread per worker: the processes already fill the cores, and every extra
    # decoding thread holds its own buffers (about 30 MB per worker on 50K-record shards).
    pa.set_cpu_count(1)


def run_in_worker(fn: Callable[..., T], *args: Any) -> T:
    pool = _pool.get()
    if pool is None:
        return fn(*args)
    return pool.submit(then_release, fn, *args).result()


def run_in_own_process(fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` in a fresh process that ends with it, when running with a pool: for the
    read stage, whose readers leave buffers that the flow's process would otherwise hold
    (about 200 MB on a 1M-row input) through every later stage."""
    if _pool.get() is None:
        return fn(*args)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as single:
        return single.submit(fn, *args).result()


def map_in_workers(
    fn: Callable[..., T], calls: Iterable[tuple[Any, ...]], ahead: int = 8
) -> Iterator[T]:
    """`fn(*args)` for each args, spread over the pool's processes; results in call order.

    Up to `ahead` calls run ahead of the result being taken, so a caller that
    consumes the results in order (a global step deciding shard after shard) overlaps with the
    work — and no more: finished results waiting to be taken are memory that would grow with
    the number of shards.
    """
    pool = _pool.get()
    if pool is None:
        yield from (fn(*args) for args in calls)
        return
    pending = iter(calls)
    futures = deque(pool.submit(then_release, fn, *args) for args in islice(pending, ahead))
    while futures:
        result = futures.popleft().result()  # a taken result is not kept alive by its future
        for args in islice(pending, 1):
            futures.append(pool.submit(then_release, fn, *args))
        yield result


def task_runner_for(kind: str, address: str | None, workers: int) -> TaskRunner:
    """The Prefect task runner for a recipe's `runner:` section.

    kind local: threads that wait on the process pool. kind dask with an address: the
    existing cluster there; without one, a temporary local cluster of `workers` processes.
    """
    if kind != "dask":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=max(workers, 1))
    from prefect_dask import DaskTaskRunner  # imported only when asked: distributed is heavy

    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": max(workers, 1),
            "threads_per_worker": 1,  # shard work is CPU-bound Python: one per process
            "processes": True,
            "dashboard_address": ":0",  # any free port: two runs must not collide
        }
    )


@contextmanager
def api_for_remote_workers(kind: str) -> Iterator[None]:
    """Make the flow run's Prefect API address part of the context sent to Dask workers.

    A task on a Dask worker reports to the API named in the settings it receives. With no
    PREFECT_API_URL configured, the flow talks to a temporary server whose address only
    this process knows, and each worker would start a temporary server of its own. Naming
    the address explicitly makes the workers report to the flow's server instead (for a
    cluster on other machines, set PREFECT_API_URL to a server they can reach).
    """
    from prefect.context import FlowRunContext
    from prefect.settings import PREFECT_API_URL, temporary_settings

    context = FlowRunContext.get()
    if kind != "dask" or PREFECT_API_URL.value() or context is None or context.client is None:
        yield
        return
    with temporary_settings(updates={PREFECT_API_URL: str(context.client.api_url)}):
        yield
