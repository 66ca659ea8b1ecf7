"""Handing freed memory back to the system between shards.

Python's allocator and Arrow's keep what a shard freed for reuse; after a large shard a
worker would hold its peak for the rest of the run, and the run's footprint is the sum over
processes. (A module of its own: worker processes import it without Prefect.)
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable
from typing import Any, TypeVar

import pyarrow as pa

T = TypeVar("T")


def _load_libc() -> Any:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") else None  # glibc only


_libc = _load_libc()


def release_memory() -> None:
    pa.default_memory_pool().release_unused()
    if _libc is not None:
        _libc.malloc_trim(0)


def then_release(fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)`, then release what it freed (what a worker runs for each shard)."""
    try:
        return fn(*args)
    finally:
        release_memory()
