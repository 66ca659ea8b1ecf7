"""Prefect settings for a run started from the command line or `sftforge.run`, not a worker.

Prefect 3.7 makes every flow run send a heartbeat event (default every 180 s) from a thread
that sleeps in one-second steps; the engine joins that thread when the flow ends, which
cost 0.5 s on average (up to 1 s) of every command, the largest part left of the fixed
overhead #14 §2 measures. Heartbeats exist to let a Prefect automation mark a run whose
process died as crashed ("zombie flow" detection), which Prefect documents for runs
triggered by deployments — those keep them (`flows/deployments.py` does not come here).
An ad-hoc run marks itself cancelled when stopped (`flows/interruptible.py`). A user who
set `PREFECT_FLOWS_HEARTBEAT_FREQUENCY` (environment or profile) keeps their heartbeats.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def ad_hoc_run_settings() -> Iterator[None]:
    """Within: flow runs started in this thread send no heartbeat unless the user asked."""
    from prefect.settings import (
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        get_current_settings,
        temporary_settings,
    )

    if "heartbeat_frequency" in get_current_settings().flows.model_fields_set:
        yield
        return
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield
