"""Fixtures for the augment tests: real llmock servers on free loopback ports, a fake key."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from augment_support import SECRET_KEY, SELFEE_FILE


@pytest.fixture
def start_server() -> Iterator[Callable[..., Any]]:
    """start_server(style="echo", rpm=, tpm=, context_window=, latency_ms=) -> LLMockServer.

    Every server started is stopped at teardown.
    """
    from llmock.chaos import ChaosSettings
    from llmock.ratelimit import LimitSettings
    from llmock.simulation import MockResponseSettings
    from llmock.testing import LLMockServer

    servers: list[LLMockServer] = []

    def start(
        style: str = "echo",
        rpm: int | None = None,
        tpm: int | None = None,
        context_window: int | None = None,
        latency_ms: int = 0,
    ) -> LLMockServer:
        server = LLMockServer(
            chaos=ChaosSettings(latency_ms=latency_ms),
            responses=MockResponseSettings(response_style=style, tool_mode="off"),
        )
        server.start()
        servers.append(server)
        server.state.limiter.configure(
            LimitSettings(rpm=rpm, tpm=tpm, context_window=context_window)
        )
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def api_env(monkeypatch: pytest.MonkeyPatch) -> Callable[[Any], None]:
    """point(server): OPENAI_BASE_URL at the server and a fake secret OPENAI_API_KEY."""

    def point(server: Any) -> None:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url("openai"))
        monkeypatch.setenv("OPENAI_API_KEY", SECRET_KEY)

    return point


@pytest.fixture(scope="session")
def selfee_records() -> list[dict[str, Any]]:
    if not SELFEE_FILE.is_file():
        pytest.skip(f"SelFee data not found at {SELFEE_FILE}")
    with SELFEE_FILE.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
