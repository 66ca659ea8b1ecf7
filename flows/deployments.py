"""The flow that Prefect deployments run (prefect.yaml): one recipe, given by its path.

A flow's task runner is fixed when the flow object is made, but a recipe chooses its own
(`runner.kind: local | dask`) — so this flow reads the recipe and runs the recipe flow with
the right runner, as a child flow run. Relative paths are relative to the working
directory the deployment was created from (the project directory).
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from sftforge.flows.recipe_flow import run_request
from sftforge.tasks.pipeline.request import RunRequest

DEPLOYMENT_FLOW = "sftforge"


@flow(name=DEPLOYMENT_FLOW)
def run_recipe_deployment(
    recipe_path: str,
    inputs: dict[str, str] | None = None,
    out: str | None = None,
    sets: list[str] | None = None,
) -> dict[str, Any]:
    """Run the recipe at `recipe_path`; `inputs`, `out` and `sets` are the CLI's
    `--input NAME=PATH`, `--out DIR` and `--set KEY=VALUE`. (Plain parameters, as a
    deployment is given them in JSON; they make the same RunRequest the CLI makes.)"""
    request = RunRequest(recipe_path=recipe_path, inputs=inputs, out=out, sets=sets)
    return run_request(request)
