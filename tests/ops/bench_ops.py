"""Figures for the operations work (not a test; run by hand):

    .venv/bin/python tests/ops/bench_ops.py [--records 40000]

1. time from `run_deployment` to Completed for the demo recipe (real server, process worker);
2. a backfill of 10 partitions, sequential vs --parallel 2;
3. the ShareGPT recipe on a Dask LocalCluster (2 worker processes) vs the local pool (2).

Everything runs against one `prefect server start` of its own, so no figure includes a
temporary server's start-up.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[1])]

from ops_support import (  # noqa: E402
    POOL,
    PREFECT,
    SFTFORGE,
    base_env,
    free_port,
    make_partitions,
    partition_files,
    run_cli,
    stop,
    wait_healthy,
)

from tests.conftest import REPO, load_generator  # noqa: E402


def timed(args: list[str], env: dict[str, str], cwd: Path) -> float:
    began = time.perf_counter()
    run_cli(args, env, cwd, timeout=1800)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=40_000)
    parser.add_argument("--deployment-runs", type=int, default=3)
    options = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="sftforge-bench-"))
    home = root / "server-home"
    home.mkdir()
    port = free_port()
    env = {**base_env(home), "PREFECT_UI_ENABLED": "false"}
    log = (home / "server.log").open("wb")
    server = subprocess.Popen(
        [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    worker = None
    try:
        url = f"http://127.0.0.1:{port}/api"
        wait_healthy(url, server, home / "server.log", 180)
        client = base_env(home, url)

        # 1. deployment
        run_cli([PREFECT, "work-pool", "create", POOL, "--type", "process"], client, root)
        run_cli([PREFECT, "--no-prompt", "deploy", "--all"], client, REPO, timeout=300)
        worker = subprocess.Popen(
            [PREFECT, "worker", "start", "--pool", POOL, "--type", "process"],
            env={**client, "PREFECT_WORKER_QUERY_SECONDS": "1"},
            cwd=root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        os.environ.update(PREFECT_API_URL=url, PREFECT_HOME=str(home))
        from prefect.deployments import run_deployment

        for i in range(options.deployment_runs):
            began = time.perf_counter()
            flow_run = run_deployment(
                "sftforge/demo",
                parameters={"out": str(root / f"dep{i}")},
                timeout=600,
                poll_interval=1,
            )
            assert flow_run.state.is_completed(), flow_run.state
            print(
                f"run_deployment -> Completed (demo): {time.perf_counter() - began:.1f} s",
                flush=True,
            )

        # 2. backfill, 10 partitions
        bf = root / "backfill"
        recipe = make_partitions(bf, days=list(range(1, 11)), records=200, shard_size=50, workers=2)
        for parallel in (1, 2):
            out = bf / f"out-p{parallel}"
            seconds = timed(
                [
                    SFTFORGE,
                    "backfill",
                    str(recipe),
                    "--partitions",
                    "2023-04-01..2023-04-10",
                    "--parallel",
                    str(parallel),
                    "--out",
                    str(out),
                    "--quiet",
                ],
                client,
                bf,
            )
            print(
                f"backfill 10 partitions x 200 records, --parallel {parallel}: {seconds:.1f} s",
                flush=True,
            )
        assert partition_files(bf / "out-p1") == partition_files(bf / "out-p2")

        # 3. dask vs local
        from distributed import LocalCluster

        data = root / "sharegpt.jsonl"
        generator = load_generator()
        generator.write_jsonl(data, generator.generate(options.records, seed=3, flawed_share=0.2))
        common = [
            SFTFORGE,
            "run",
            "configs/sharegpt_clean.yaml",
            "--input",
            f"sharegpt={data}",
            "--set",
            "runner.workers=2",
            "--quiet",
        ]
        local = timed([*common, "--out", str(root / "local")], client, REPO)
        cluster = LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        )
        try:
            dask = timed(
                [
                    *common,
                    "--out",
                    str(root / "dask"),
                    "--set",
                    "runner.kind=dask",
                    "--set",
                    f"runner.address={cluster.scheduler_address}",
                ],
                client,
                REPO,
            )
        finally:
            cluster.close()
        same = partition_files(root / "local") == partition_files(root / "dask")
        print(
            f"sharegpt_clean on {options.records} records: local pool (2) {local:.1f} s, "
            f"dask LocalCluster (2) {dask:.1f} s, byte-identical: {same}",
            flush=True,
        )
    finally:
        if worker is not None:
            stop(worker)
        stop(server)
        log.close()


if __name__ == "__main__":
    main()
