"""prefect.yaml end to end: a real server, the process work pool, `prefect deploy --all`, a
process worker, `run_deployment` — and a backfill whose partitions run through it."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
import yaml
from ops_support import SFTFORGE, make_partitions, manifest

from tests.conftest import REPO

RECIPES = [
    "demo", "sharegpt_clean", "openchat_sharegpt", "selfee", "dreamer_zh", "guanaco_oasst1",
    "demo_selfee",
]


def test_prefect_yaml_declares_one_deployment_per_recipe():
    spec = yaml.safe_load((REPO / "prefect.yaml").read_text())
    names = [d["name"] for d in spec["deployments"]]
    assert names == RECIPES
    for deployment in spec["deployments"]:
        path, _, fn = deployment["entrypoint"].partition(":")
        assert path.startswith("flows/") and (REPO / path).is_file() and fn
        recipe = deployment["parameters"]["recipe_path"]
        assert recipe == f"configs/{deployment['name']}.yaml" and (REPO / recipe).is_file()
        assert deployment["work_pool"]["name"] == "sftforge"


@pytest.mark.slow
def test_run_deployment_completes_and_writes_the_output(deployed, tmp_path, record_property):
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    out = tmp_path / "demo"
    with temporary_settings(updates={PREFECT_API_URL: deployed.server.api_url}):
        with get_client(sync_client=True) as client:
            names = {d.name for d in client.read_deployments()}
        assert names == set(RECIPES)
        began = time.perf_counter()
        flow_run = run_deployment(
            "sftforge/demo", parameters={"out": str(out)}, timeout=240, poll_interval=1
        )
        seconds = time.perf_counter() - began
    record_property("run_deployment_to_completed_s", round(seconds, 1))
    print(
        f"\nrun_deployment -> Completed: {seconds:.1f} s (deploy --all: "
        f"{deployed.deploy_seconds:.1f} s)"
    )
    assert flow_run.state is not None and flow_run.state.is_completed(), (
        flow_run.state,
        deployed.worker_log.read_text()[-4000:],
    )
    body = manifest(out)
    assert body["recipe"] == "demo" and body["stages"][-1]["out"] > 50
    assert (out / "dataset" / "part-00000.parquet").is_file()
    assert (out / "export" / "sharegpt.json").is_file()


@pytest.mark.slow
def test_backfill_through_the_deployment(deployed, tmp_path):
    # One process per flow run (workers: 1): the worker machine here has two cores.
    recipe = make_partitions(tmp_path, days=[1, 2], records=40, shard_size=20, workers=1)
    env = deployed.server.env(deployed.client_home)
    args = [
        SFTFORGE,
        "backfill",
        str(recipe),
        "--partitions",
        "2023-04-01..2023-04-02",
        "--deployment",
        "sftforge/demo",
        "--parallel",
        "2",
    ]
    result = subprocess.run(
        args, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr + deployed.worker_log.read_text()
    assert "deployment sftforge/demo" in result.stdout
    for day in (1, 2):
        part = tmp_path / "out" / "partitions" / f"2023-04-0{day}"
        assert manifest(part)["stages"][0]["in"] == 40
    # The runs went through the work pool: the worker's flow runs wrote the partitions.
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with (
        temporary_settings(updates={PREFECT_API_URL: deployed.server.api_url}),
        get_client(sync_client=True) as client,
    ):
        runs = client.read_flow_runs()
    outs = [
        json.dumps(r.parameters.get("out"))
        for r in runs
        if r.deployment_id is not None and r.state is not None and r.state.is_completed()
    ]
    assert sum("partitions" in o for o in outs) == 2
    # Run again: everything is skipped, nothing is sent to the work pool.
    again = subprocess.run(args, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0
    assert "2 skipped" in again.stdout, again.stdout
