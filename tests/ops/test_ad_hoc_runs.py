"""How a run started from the command line or `sftforge.run` sets Prefect up: no heartbeat
thread unless the user asked for one (flows/ad_hoc_settings.py), and flow-run parameters that
are the request alone (the loaded recipe travels beside them: flows/recipe_flow.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from prefect.settings import (
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
    get_current_settings,
    temporary_settings,
)

import sftforge
from sftforge.flows.ad_hoc_settings import ad_hoc_run_settings

REPO = Path(__file__).resolve().parents[2]


def test_heartbeats_are_off_in_an_ad_hoc_run_by_default():
    assert get_current_settings().flows.heartbeat_frequency == 180  # Prefect's default
    with ad_hoc_run_settings():
        assert get_current_settings().flows.heartbeat_frequency is None
    assert get_current_settings().flows.heartbeat_frequency == 180


def test_heartbeats_the_user_set_are_kept():
    asked = temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: 45})
    with asked, ad_hoc_run_settings():
        assert get_current_settings().flows.heartbeat_frequency == 45


@pytest.mark.usefixtures("prefect_harness")
def test_the_flow_run_records_the_request_not_the_loaded_recipe(tmp_path, monkeypatch):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.client.schemas.sorting import FlowRunSort

    monkeypatch.chdir(REPO)  # the demo's paths are relative to the repository
    out = tmp_path / "out"
    result = sftforge.run("configs/demo.yaml", out=out)
    assert result.stages["read"]["out"] > 0

    async def recorded() -> list[dict]:
        async with get_client() as client:
            runs = await client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=["sftforge-recipe"])),
                sort=FlowRunSort.START_TIME_DESC,
                limit=50,
            )
        return [r.parameters for r in runs if r.parameters["request"].get("out") == str(out)]

    [parameters] = asyncio.run(recorded())
    assert set(parameters) == {"request", "quiet"}
    assert parameters["request"]["recipe_path"] == "configs/demo.yaml"


# In a fresh interpreter, set up as the CLI sets Prefect up, then Prefect's own logging setup
# (which runs at its import): what its exit-drain services print on the console.
_SENDER_LOGS = """
import logging, sys
from sftforge.tasks.pipeline.request import prefect_defaults
prefect_defaults(verbose=sys.argv[1] == "verbose")
import prefect  # configures logging
for name in ("EventsWorker", "APILogWorker"):
    logging.getLogger(name).warning("Still processing items: 3 items remaining...")
    logging.getLogger(name).error("failed to send")
"""


@pytest.mark.parametrize("mode", ["quiet", "verbose"])
def test_the_event_senders_exit_notes_are_shown_only_when_verbose(mode):
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", _SENDER_LOGS, mode], capture_output=True, text=True, check=True
    )
    console = result.stdout + result.stderr
    assert console.count("failed to send") == 2
    assert console.count("Still processing items") == (2 if mode == "verbose" else 0)
