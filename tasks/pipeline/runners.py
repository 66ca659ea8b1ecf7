"""Where the CPU work of shard tasks runs: a local process pool, or a Dask cluster.

Local: Prefect tasks run in a thread pool in the flow's process and each one hands its
shard to the run's shared process pool (tasks/base/pool.py). (Prefect's own
ProcessPoolTaskRunner starts a temporary API server in every worker process when no server is
configured: about 20 s more per run here.)

Dask: prefect-dask's DaskTaskRunner sends each shard task to a Dask worker, which runs the
shard in its own process. Workers read and write the run's output directory, so it must be
on storage every worker can reach, and they report task runs to the flow's Prefect API.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sftforge.tasks.base.extras import require_extra
from sftforge.tasks.base.pool import cpu_count, shared_pool

if TYPE_CHECKING:  # Prefect is imported only where it runs: worker processes do without it
    from prefect.task_runners import TaskRunner

# What shard work imports (bs4, lxml, markdownify, pyarrow, the steps): each worker process
# imports it once when it starts, while the flow's process reads the sources.
SHARD_MODULES = ("sftforge.tasks.pipeline.stages", "sftforge.tasks.steps.html_to_markdown")


def worker_count(configured: int | None) -> int:
    """`runner.workers`, or else the CPUs this process may use (a container's or taskset's
    limit, which os.cpu_count() ignores)."""
    return configured or cpu_count()


@contextmanager
def worker_pool(workers: int, kind: str = "local") -> Iterator[None]:
    """Within this block, shard tasks run on `workers` local processes. None for a Dask
    runner: each task already runs in a Dask worker process."""
    with shared_pool(workers if kind == "local" else 1, warm_up=SHARD_MODULES):
        yield


def task_runner_for(kind: str, address: str | None, workers: int) -> TaskRunner:
    """The Prefect task runner for a recipe's `runner:` section.

    kind local: threads that wait on the process pool. kind dask with an address: the
    existing cluster there; without one, a temporary local cluster of `workers` processes.
    """
    if kind != "dask":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=max(workers, 1))
    # Imported only when asked: distributed is heavy, and an extra (sftforge[dask]).
    DaskTaskRunner = require_extra("prefect_dask", "dask", "runner.kind=dask").DaskTaskRunner

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
