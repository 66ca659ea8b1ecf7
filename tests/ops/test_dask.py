"""The same recipe on a Dask cluster (prefect-dask's DaskTaskRunner): shards run in the
cluster's worker processes, and the output is byte-identical to the local run's."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ops_support import partition_files

from sftforge.flows.cli import main
from sftforge.tasks.pipeline.runners import task_runner_for, worker_count
from tests.conftest import REPO


@pytest.fixture
def dask_cluster() -> Iterator[object]:
    from distributed import LocalCluster

    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    try:
        yield cluster
    finally:
        cluster.close(timeout=30)


def exports(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted((out / "export").iterdir())}


def test_default_worker_count_is_the_cpus_this_process_may_use():
    assert worker_count(3) == 3
    assert worker_count(None) == len(os.sched_getaffinity(0))
    # Limited to one CPU (as taskset or a container does), not os.cpu_count()'s all of them
    code = (
        "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
        "from sftforge.tasks.pipeline.runners import worker_count; print(worker_count(None))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert out.stdout.strip() == "1"


def test_runner_section_picks_the_task_runner():
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    assert isinstance(task_runner_for("local", None, 3), ThreadPoolTaskRunner)
    remote = task_runner_for("dask", "tcp://10.0.0.5:8786", 3)
    assert isinstance(remote, DaskTaskRunner) and remote.address == "tcp://10.0.0.5:8786"
    temporary = task_runner_for("dask", None, 3)
    assert temporary.address is None and temporary.cluster_kwargs["n_workers"] == 3


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_dask_cluster_run_is_byte_identical_to_the_local_run(
    dask_cluster, sample_jsonl, tmp_path, monkeypatch, record_property
):
    monkeypatch.chdir(REPO)
    common = [
        "run",
        "configs/openchat_sharegpt.yaml",
        "--input",
        f"sharegpt={sample_jsonl}",
        "--set",
        "runner.shard_size=100",
        "--set",
        "runner.workers=2",
        "--quiet",
    ]
    began = time.perf_counter()
    assert main([*common, "--out", str(tmp_path / "local")]) == 0
    local_seconds = time.perf_counter() - began

    address = dask_cluster.scheduler_address
    began = time.perf_counter()
    code = main(
        [
            *common,
            "--out",
            str(tmp_path / "dask"),
            "--set",
            "runner.kind=dask",
            "--set",
            f"runner.address={address}",
        ]
    )
    dask_seconds = time.perf_counter() - began
    assert code == 0
    record_property("local_s", round(local_seconds, 1))
    record_property("dask_s", round(dask_seconds, 1))
    print(f"\nlocal {local_seconds:.1f} s, dask {dask_seconds:.1f} s")

    # The shards ran as tasks on the cluster (one per shard and map segment).
    prefixes = dask_cluster.scheduler.task_prefixes
    assert prefixes["map_shard"].state_counts["memory"] == 2 * 6, {
        name: dict(prefix.state_counts) for name, prefix in prefixes.items()
    }

    local, dask = tmp_path / "local", tmp_path / "dask"
    assert partition_files(dask) == partition_files(local)
    assert exports(dask) == exports(local)
    assert (dask / "dataset" / "part-00005.parquet").is_file()  # 600 records, 6 shards
