"""Fixtures for the operations tests: real Prefect servers and workers.

Every process a fixture starts runs in its own session and is killed (its whole process
group) at teardown, whatever the test did.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from ops_support import (
    POOL,
    PREFECT,
    Server,
    base_env,
    free_port,
    run_cli,
    stop,
    wait_healthy,
)

from tests.conftest import REPO


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory) -> Iterator[Server]:
    """`prefect server start` on a free loopback port, with its own PREFECT_HOME."""
    home = tmp_path_factory.mktemp("prefect-server-home")
    port = free_port()
    log = home / "server.log"
    env = base_env(home)
    env["PREFECT_UI_ENABLED"] = "false"  # nothing to look at in a test; starts faster
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=home,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{port}/api"
        wait_healthy(url, proc, log, timeout=120)
        yield Server(url, home, log)
    finally:
        stop(proc)


@dataclass
class Deployed:
    server: Server
    worker_log: Path
    client_home: Path
    deploy_seconds: float


@pytest.fixture(scope="session")
def deployed(prefect_server: Server, tmp_path_factory) -> Iterator[Deployed]:
    """The process work pool, every deployment of prefect.yaml, and a process worker."""
    client_home = tmp_path_factory.mktemp("prefect-client-home")
    env = prefect_server.env(client_home)
    run_cli([PREFECT, "work-pool", "create", POOL, "--type", "process"], env, client_home)
    began = time.perf_counter()
    # From the project root, as a user would: prefect.yaml is read there, and the
    # deployments' working directory is recorded as this directory.
    run_cli([PREFECT, "--no-prompt", "deploy", "--all"], env, REPO, timeout=180)
    deploy_seconds = time.perf_counter() - began
    worker_env = {**env, "PREFECT_WORKER_QUERY_SECONDS": "1"}
    worker_log = client_home / "worker.log"
    with worker_log.open("wb") as out:
        worker = subprocess.Popen(
            [PREFECT, "worker", "start", "--pool", POOL, "--type", "process"],
            env=worker_env,
            cwd=client_home,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield Deployed(prefect_server, worker_log, client_home, deploy_seconds)
    finally:
        stop(worker)
