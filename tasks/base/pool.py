"""CPU work spread over spawned processes, results back in input order, in-flight work bounded.

One bounded in-order map (`in_order`) serves two pools:

- The run's shared pool (`shared_pool`): opened once per flow run, used by shard tasks
  (`run_in_worker`) and by a filter pass's scans and applies (`map_in_workers`). It lives in a
  context variable, not a global: a backfill runs several recipe flows at once in one process,
  and Prefect copies the context into the threads that run their tasks.
- A per-call pool (`ordered_map`) for the training writers' batches: each process builds its
  own copy of the work object once (its own single-threaded tokenizer: two processes each
  encoding on one core waste less than one process encoding on two). The first batch runs in
  the calling process, so a one-batch input (most tests, the demo) never starts processes,
  and for a longer one they start while that batch runs here.

Both bound what is in flight, so memory does not grow with the input: finished results
waiting to be taken are memory too.

`ordered_map`'s workers start with mimalloc preloaded when the machine has it (Debian:
libmimalloc2.0). The tokenizer's Rust code allocates and frees several times per token; under
glibc's malloc a quarter of encoding's instructions were the allocator, and with mimalloc
encoding takes about a third less CPU. Results are the same bytes either way.
`SFTFORGE_WORKER_MALLOC` names another library to preload, or is empty to preload nothing.
"""

from __future__ import annotations

import ctypes.util
import importlib
import multiprocessing
import os
import signal
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from itertools import chain, islice
from typing import Any, TypeVar

from sftforge.tasks.base.memory import then_release

T = TypeVar("T")
R = TypeVar("R")


def cpu_count() -> int:
    """The CPUs this process may run on (a container's or taskset's limit, not the host's)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _spawn_pool(workers: int, initializer: Callable[..., None], *initargs: Any) -> Executor:
    # spawn, not fork: the calling process has threads (Prefect's, ours) by now.
    return ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_worker_start,
        initargs=(initializer, *initargs),
    )


def _worker_start(initializer: Callable[..., None], *initargs: Any) -> None:
    # A terminal's Ctrl-C goes to the whole process group: the command that owns these
    # processes stops them (flows/interruptible.py); a KeyboardInterrupt traceback from each
    # would only bury the line that says what finished.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    initializer(*initargs)


def in_order(submit: Callable[[T], Future[R]], items: Iterable[T], ahead: int) -> Iterator[R]:
    """submit(item) for the first `ahead` items now, then one more each time a result is
    taken: results in item order, at most `ahead` submitted and not yet taken. (A plain
    function, not a generator, so the first `ahead` are under way when it returns.)"""
    rest = iter(items)
    pending = deque(submit(item) for item in islice(rest, ahead))

    def results() -> Iterator[R]:
        while pending:
            result = pending.popleft().result()  # a taken result is not kept alive by its future
            for item in islice(rest, 1):
                pending.append(submit(item))
            yield result

    return results()


# --- the run's shared pool -----------------------------------------------------------------

_pool: ContextVar[Executor | None] = ContextVar("sftforge_worker_pool", default=None)


@contextmanager
def shared_pool(workers: int, warm_up: Sequence[str] = ()) -> Iterator[None]:
    """Within this block, `run_in_worker` and `map_in_workers` use `workers` processes, each
    of which imports the modules `warm_up` names when it starts.

    No pool for one worker (run in-process), or when an enclosing block opened one (a
    backfill's partitions share its pool rather than each starting their own processes).
    """
    if workers <= 1 or _pool.get() is not None:
        yield
        return
    pool = _spawn_pool(workers, _warm_up, tuple(warm_up))
    # Start the processes now: their imports overlap whatever the caller does next (the read
    # stage, in the flow's process) instead of delaying the first task.
    for _ in range(workers):
        pool.submit(int)
    token = _pool.set(pool)
    try:
        yield
    finally:
        _pool.reset(token)
        pool.shutdown(wait=True, cancel_futures=True)


def _warm_up(modules: tuple[str, ...]) -> None:
    """Import what the work needs (the caller names it: bs4, lxml, the steps …) once."""
    import pyarrow as pa

    for name in modules:
        importlib.import_module(name)
    # One Arrow thread per worker: the processes already fill the cores, and every extra
    # decoding thread holds its own buffers (about 30 MB per worker on 50K-record shards).
    pa.set_cpu_count(1)


def run_in_worker(fn: Callable[..., T], *args: Any) -> T:
    pool = _pool.get()
    if pool is None:
        return fn(*args)
    return pool.submit(then_release, fn, *args).result()


def _no_setup() -> None:
    pass


def run_in_own_process(fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` in a fresh process that ends with it, when running with a pool: for the
    read stage, whose readers leave buffers that the flow's process would otherwise hold
    (about 200 MB on a 1M-row input) through every later stage."""
    if _pool.get() is None:
        return fn(*args)
    with _spawn_pool(1, _no_setup) as single:
        return single.submit(fn, *args).result()


def map_in_workers(
    fn: Callable[..., T], calls: Iterable[tuple[Any, ...]], ahead: int = 8
) -> Iterator[T]:
    """`fn(*args)` for each args, spread over the shared pool's processes; results in call
    order, up to `ahead` calls running ahead of the result being taken (so a caller deciding
    shard after shard overlaps with the work, and no more)."""
    pool = _pool.get()
    if pool is None:
        yield from (fn(*args) for args in calls)
        return
    yield from in_order(lambda args: pool.submit(then_release, fn, *args), calls, ahead)


# --- a per-call pool with a work object per process ----------------------------------------

_work: Callable[[Any], Any] | None = None  # the worker process's copy


def _install(make_work: Callable[[], Callable[[Any], Any]]) -> None:
    global _work
    # One core per process: the processes are the parallelism (read per call by tokenizers).
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    _work = make_work()


def _run(item: Any) -> Any:
    assert _work is not None, "worker process not initialized"
    return _work(item)


_END: Any = object()


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
    pool = _spawn_pool(workers, _install, make_work)
    try:
        # The rest is queued first: the workers start (imports, tokenizer) while the first
        # item runs here, and take work the moment they are up. Running more items here
        # would leave them idle: two processes already fill two cores.
        with _worker_environment():  # submit() spawns the processes, with this environment
            results = in_order(
                lambda item: pool.submit(_run, item), chain([second], rest), workers * per_worker
            )
        yield work(first)
        yield from results
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


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
