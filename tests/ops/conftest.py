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


def start_logged(cmd: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen:
    """A long-running process in its own session (so `stop` can end its children), output
    to `log`."""
    with log.open("wb") as out:
        return subprocess.Popen(
            cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory) -> Iterator[Server]:
    """`prefect server start` on a free loopback port, with its own PREFECT_HOME."""
    home = tmp_path_factory.mktemp("prefect-server-home")
    port = free_port()
    log = home / "server.log"
    env = base_env(home)
    env["PREFECT_UI_ENABLED"] = "false"  # nothing to look at in a test; starts faster
    proc = start_logged(
        [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)], env, home, log
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
    worker = start_logged(
        [PREFECT, "worker", "start", "--pool", POOL, "--type", "process"],
        worker_env,
        client_home,
        worker_log,
    )
    try:
        yield Deployed(prefect_server, worker_log, client_home, deploy_seconds)
    finally:
        stop(worker)


@dataclass
class Run:
    out: Path
    flow_run_id: str
    body: dict


@pytest.fixture(scope="session")
def demo_run(prefect_harness, tmp_path_factory) -> Run:
    """The demo recipe, run once: a 20-record eval split and a license declared, so the
    push and report tests see two splits and a license."""
    from sftforge.flows.recipe_flow import flow_for
    from sftforge.tasks.pipeline.request import RunRequest

    out = tmp_path_factory.mktemp("demo-run") / "out"
    request = RunRequest(
        recipe_path=str(REPO / "configs" / "demo.yaml"),
        inputs={
            "sharegpt": str(REPO / "data" / "sharegpt_sample.jsonl"),
            "sharegpt_pages": str(REPO / "data" / "sharegpt_pages"),
        },
        out=str(out),
        sets=["runner.workers=1", "split.eval_size=20", "sources[0].license=cc-by-4.0"],
    )
    state = flow_for(1)(request=request, quiet=True, return_state=True)
    assert state.is_completed(), state
    return Run(out, str(state.state_details.flow_run_id), state.result())


@pytest.fixture(scope="session")
def augmented_run(tmp_path_factory) -> Path:
    """A finished augment run's output directory, made directly (the augment step's own
    tests cover making it): SelFee-shaped records and a call journal with costs."""
    from ops_support import write_augmented_run

    return write_augmented_run(tmp_path_factory.mktemp("augmented") / "out")
