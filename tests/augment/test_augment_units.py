"""The step's config, the journal, the rate limiter, retries and the budget, piece by piece."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx2
import openai
import pytest
from augment_support import fast_config
from pydantic import ValidationError

from sftforge.tasks.steps.augment.budget import BudgetExhausted, Ledger, cost_of
from sftforge.tasks.steps.augment.client import Redactor
from sftforge.tasks.steps.augment.journal import Journal, call_key
from sftforge.tasks.steps.augment.options import Price
from sftforge.tasks.steps.augment.rate_limit import RateLimiter
from sftforge.tasks.steps.augment.retry import backoff_seconds, classify, retry_after_seconds
from sftforge.tasks.steps.augment.step import AugmentStep

REPO = Path(__file__).resolve().parents[2]


# -- config ----------------------------------------------------------------------------------


def test_defaults_are_selfee_settings() -> None:
    step = AugmentStep(step="augment")
    assert step.stage == "augment" and step.preset == "selfee"
    assert (step.model, step.temperature, step.max_iterations) == ("gpt-3.5-turbo", 1.0, 5)
    assert (step.max_tokens.answer, step.max_tokens.feedback, step.max_tokens.revision) == (
        512,
        128,
        512,
    )
    assert step.window == 4096
    assert AugmentStep(step="augment", model="gpt-3.5-turbo-0613").window == 4096
    assert AugmentStep(step="augment", name="augment_teacher").stage == "augment_teacher"


@pytest.mark.parametrize(
    "bad",
    [
        {"step": "augment", "unknown": 1},
        {"step": "augment_x"},
        {"step": "augment", "name": "has space"},
        {"step": "augment", "preset": "alpaca"},
        {"step": "augment", "mode": "stream"},
        {"step": "augment", "batch_max_requests": 50_001},
        {"step": "augment", "max_cost": 1.0, "model": "my-local-model"},
        {"step": "augment", "context_window": 512},
        {"step": "augment", "max_tokens": {"answer": 4096}},
        {"step": "augment", "stop_phrases": []},
    ],
)
def test_invalid_configs_are_rejected(bad: dict) -> None:
    with pytest.raises(ValidationError):
        AugmentStep.model_validate(bad)


# -- journal ---------------------------------------------------------------------------------


def test_call_key_is_stable_across_processes_and_sensitive_to_content() -> None:
    request = {"model": "m", "messages": [{"role": "user", "content": "héllo"}], "max_tokens": 5}
    key = call_key(request, 0)
    code = (
        "from sftforge.tasks.steps.augment.journal import call_key;"
        "print(call_key({'max_tokens': 5, 'messages': [{'role': 'user', 'content': 'héllo'}],"
        " 'model': 'm'}, 0))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "123"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == key
    assert call_key(request, 1) != key
    assert call_key({**request, "temperature": 0.5}, 0) != key


def test_journal_rows_and_durability_settings(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    with Journal(path) as journal:
        journal.started("k1", {"model": "m"})
        assert journal.done("k1") is None
        journal.finish("k1", '{"choices": []}', 10, 5, 0.25)
        journal.started("k1", {"model": "m"})  # a finished call is never downgraded
        journal.fail("k1", "late failure")
        assert journal.done("k1").cost == 0.25
        journal.started("k2", {"model": "m"})
        journal.fail("k2", "HTTP 400")
        journal.started("k2", {"model": "m"})
        assert journal.counts() == {"done": 1, "started": 1}
        assert journal.spent() == 0.25
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT attempts FROM calls WHERE key='k2'").fetchone()[0] == 2


# -- rate limiting ------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_buckets_ramp_up_and_do_not_burst() -> None:
    clock = FakeClock()
    limiter = RateLimiter(600, None, ramp_seconds=10, ramp_start=0.1, clock=clock)
    bucket = limiter.requests
    assert bucket is not None and bucket.level == 1  # one request may go at once, not 600
    assert limiter.factor(clock.now) == pytest.approx(0.1)
    bucket.level = 0
    # 600 rpm = 10/s, at 10% at the start: the next request waits ~1 s.
    assert bucket.wait(1, limiter.factor(clock.now)) == pytest.approx(1.0, rel=1e-3)
    clock.now += 10
    assert limiter.factor(clock.now) == 1.0
    bucket.refill(clock.now, 1.0)
    assert bucket.level == bucket.capacity == 20  # two seconds' worth, not a minute's


def test_headers_lower_limits_and_429_pauses_everyone() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10_000, 1_000_000, ramp_seconds=0, clock=clock)
    limiter.observe_headers(
        {
            "x-ratelimit-limit-requests": "600",
            "x-ratelimit-limit-tokens": "2000000",
            "x-ratelimit-remaining-tokens": "0",
        }
    )
    assert limiter.requests.per_minute == 600  # lowered
    assert limiter.tokens.per_minute == 1_000_000  # never raised above the recipe's
    assert limiter.tokens.level == 0
    limiter.pause(2.5)
    assert limiter.paused_until == clock.now + 2.5


def test_reconcile_charges_underestimates_and_refunds_only_when_asked() -> None:
    limiter = RateLimiter(None, 60_000, ramp_seconds=0)
    limiter.tokens.level = 0
    limiter.reconcile(estimated=100, actual=150)
    assert limiter.tokens.level == -50
    limiter.reconcile(estimated=100, actual=20)
    assert limiter.tokens.level == -50
    refunding = RateLimiter(None, 60_000, ramp_seconds=0, refund_unused=True)
    refunding.tokens.level = 0
    refunding.reconcile(estimated=100, actual=20)
    assert refunding.tokens.level == 80


def test_acquire_paces_requests() -> None:
    async def run() -> float:
        limiter = RateLimiter(1200, None, ramp_seconds=0)  # 20/s
        loop = asyncio.get_running_loop()
        start = loop.time()
        for _ in range(11):
            await limiter.acquire(0)
        return loop.time() - start

    elapsed = asyncio.run(run())
    assert 0.4 < elapsed < 3.0  # 10 waits of 50 ms; generous upper bound


# -- retries -------------------------------------------------------------------------------------


def _status_error(status: int, headers: dict[str, str] | None = None, code: str = ""):
    request = httpx2.Request("POST", "http://x/v1/chat/completions")
    response = httpx2.Response(status, headers=headers or {}, request=request)
    body = {"message": "nope", "code": code}
    return openai.APIStatusError("nope", response=response, body=body)


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (422, False),
        (408, True),
        (429, True),
        (500, True),
        (502, True),
        (503, True),
    ],
)
def test_only_transient_failures_are_retried(status: int, retryable: bool) -> None:
    assert classify(_status_error(status)).retryable is retryable


def test_connection_errors_and_timeouts_are_retried() -> None:
    request = httpx2.Request("POST", "http://x")
    assert classify(openai.APIConnectionError(request=request)).retryable
    assert classify(openai.APITimeoutError(request=request)).retryable
    assert not classify(ValueError("bug")).retryable


def test_retry_after_forms() -> None:
    assert retry_after_seconds({"retry-after-ms": "250", "retry-after": "1"}) == 0.25
    assert retry_after_seconds({"retry-after": "3"}) == 3.0
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None
    failure = classify(_status_error(429, {"retry-after-ms": "1500"}))
    assert failure.retry_after == 1.5
    assert classify(_status_error(400, code="context_length_exceeded")).context_overflow


def test_backoff_grows_with_jitter_and_a_cap() -> None:
    import random

    rng = random.Random(1)
    waits = [backoff_seconds(n, 1.0, 8.0, rng) for n in range(1, 7)]
    assert all(later > earlier for earlier, later in zip(waits[:3], waits[1:4], strict=True))
    assert all(6.0 <= w <= 8.0 for w in waits[3:])
    assert len({backoff_seconds(2, 1.0, 8.0) for _ in range(20)}) > 1


# -- budget and secrets ---------------------------------------------------------------------------


def test_ledger_stops_before_the_budget_is_crossed() -> None:
    price = Price(input=1_000_000, output=1_000_000)  # a dollar a token, easy to read
    assert cost_of(price, 3, 2) == 5
    ledger = Ledger(price, max_cost=10, journal_spent=lambda: 2.0)
    held = ledger.reserve(prompt_tokens=2, max_tokens=3)  # worst case 5: 2 + 5 <= 10
    with pytest.raises(BudgetExhausted, match="max_cost"):
        ledger.reserve(prompt_tokens=2, max_tokens=3)  # 2 + 5 held + 5 > 10
    assert ledger.settle(held, 2, 1) == 3 and ledger.spent == 5
    with pytest.raises(BudgetExhausted):  # once stopped, stays stopped for this run
        ledger.reserve(prompt_tokens=1, max_tokens=1)


def test_redactor_hides_keys_even_masked() -> None:
    key = "sk-test-9f8e7d6c5b4a39281706f5e4d3c2b1a0"
    redact = Redactor(key)
    text = f"Incorrect API key provided: {key}. Or sk-test-9f8e****************b1a0."
    cleaned = redact(text)
    assert key not in cleaned and "b1a0" not in cleaned and "9f8e" not in cleaned
    assert redact("nothing secret") == "nothing secret"


def test_fast_config_is_valid() -> None:
    assert fast_config().concurrency == 4


def test_key_from_a_prefect_secret_block_only_when_named(monkeypatch) -> None:
    from prefect.blocks.system import Secret

    from sftforge.tasks.steps.augment.client import MissingCredentials, credentials

    loaded: list[str] = []

    class FakeSecret:
        def get(self) -> str:
            return "sk-from-block-123456"

    def fake_load(name: str) -> FakeSecret:
        loaded.append(name)
        return FakeSecret()

    monkeypatch.setattr(Secret, "load", staticmethod(fake_load))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env-123456")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert credentials(fast_config()) == ("sk-from-env-123456", None)
    assert loaded == []  # no block named: none loaded
    config = fast_config(api_key_secret_block="openai-key", base_url="http://127.0.0.1:9/v1")
    assert credentials(config) == ("sk-from-block-123456", "http://127.0.0.1:9/v1")
    assert loaded == ["openai-key"]
    monkeypatch.setenv("OPENAI_BASE_URL", "http://gateway/v1")  # the environment wins
    assert credentials(config)[1] == "http://gateway/v1"
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.delenv("OPENAI_BASE_URL")
    with pytest.raises(MissingCredentials, match="OPENAI_API_KEY"):
        credentials(fast_config())
    # A local server (vLLM, Ollama) needs no key.
    assert credentials(fast_config(base_url="http://127.0.0.1:9/v1"))[0] == "not-needed"
