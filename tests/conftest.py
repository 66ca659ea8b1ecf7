"""Test setup: an isolated Prefect home (set before Prefect is imported) and shared fixtures."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Prefect reads these at import time; a database written by another Prefect version in
# ~/.prefect would break the harness, and there is no network for analytics.
_PREFECT_HOME = tempfile.mkdtemp(prefix="sftforge-prefect-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
# sftforge's own state (the reusable local Prefect server's address, pid and log) stays out of
# the user's ~/.sftforge during tests.
os.environ["SFTFORGE_HOME"] = tempfile.mkdtemp(prefix="sftforge-home-")

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect server for every flow test of the session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield


@pytest.fixture(scope="session", autouse=True)
def _stop_local_server():
    """`sftforge` commands run without PREFECT_API_URL share one local Prefect server in the
    session's SFTFORGE_HOME (flows/local_server.py); it must not outlive the session."""
    yield
    from sftforge.flows.local_server import stop_server
    from sftforge.flows.server_state import ServerState, server_dir

    stop_server(ServerState(server_dir()))


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


def load_generator():
    """data/make_sharegpt_sample.py (data/ is not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "make_sharegpt_sample", REPO / "data" / "make_sharegpt_sample.py"
    )
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def sample_jsonl(tmp_path_factory) -> Path:
    """600 generated ShareGPT records with every kind of defect mixed in."""
    path = tmp_path_factory.mktemp("sample") / "sharegpt.jsonl"
    load_generator().write_jsonl(path, load_generator().generate(600, seed=7, flawed_share=0.3))
    return path


@pytest.fixture(autouse=True)
def _both_markdown_paths_agree(request, monkeypatch):
    """In the html_to_markdown tests, every prose conversion runs both the lxml walk and the
    BeautifulSoup reference and asserts they agree (tests/test_markdown_walk.py)."""
    if request.module.__name__.rpartition(".")[2] != "test_html_to_markdown":
        yield
        return
    from sftforge.tasks.steps import html_to_markdown as h2m

    fast, reference = h2m.prose_markdown, h2m.prose_markdown_bs4

    def both(value: str) -> str:
        try:
            expected = reference(value)
        except Exception as exc:
            with pytest.raises(type(exc)):
                fast(value)
            raise
        assert fast(value) == expected, value
        return expected

    monkeypatch.setattr(h2m, "prose_markdown", both)
    yield
