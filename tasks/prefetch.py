"""Run a GIL-releasing step (the tokenizer's Rust encode_batch) one batch ahead, in a thread.

While the Python side assembles, checks and writes batch k, the tokenizer already encodes
batch k+1 on the other cores; results come back in order, and an exception in the step is
raised where its result is taken.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def ahead(items: Iterable[T], work: Callable[[T], R]) -> Iterator[tuple[T, R]]:
    """(item, work(item)) for each item, in order, with work running one item ahead."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sftforge-encode") as pool:
        pending: tuple[T, Future[R]] | None = None
        for item in items:
            future = pool.submit(work, item)
            if pending is not None:
                yield pending[0], pending[1].result()
            pending = (item, future)
        if pending is not None:
            yield pending[0], pending[1].result()
