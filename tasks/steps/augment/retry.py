"""Which failures are worth another attempt, and how long to wait before it."""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass

import openai

# 408 is the server saying it timed out; the rest of 4xx fail the same way every time.
RETRYABLE_STATUS = frozenset({408, 429})


@dataclass(frozen=True)
class Failure:
    """One failed attempt, classified."""

    retryable: bool
    status: int | None
    message: str
    retry_after: float | None = None
    # The server said the prompt does not fit its context window.
    context_overflow: bool = False


def classify(exc: BaseException) -> Failure:
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        headers = exc.response.headers if exc.response is not None else {}
        code = ""
        if isinstance(exc.body, dict):
            code = str(exc.body.get("code") or "")
        return Failure(
            retryable=status in RETRYABLE_STATUS or status >= 500,
            status=status,
            message=f"HTTP {status}: {_first_line(exc.message)}",
            retry_after=retry_after_seconds(headers),
            context_overflow=code == "context_length_exceeded",
        )
    if isinstance(exc, openai.APITimeoutError):
        return Failure(True, None, "timeout")
    if isinstance(exc, openai.APIConnectionError):
        return Failure(True, None, f"connection error: {_first_line(str(exc))}")
    if isinstance(exc, InvalidResponse):
        return Failure(True, None, str(exc))
    return Failure(False, None, f"{type(exc).__name__}: {_first_line(str(exc))}")


class InvalidResponse(Exception):
    """A 200 whose body is not a usable completion (a proxy's HTML page, a cut-off body)."""


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The server's Retry-After, preferring the millisecond form OpenAI also sends."""
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            return max(0.0, float(value) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:  # the HTTP-date form
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, parsed.timestamp() - time.time())


def backoff_seconds(
    attempt: int, base: float, cap: float, rng: random.Random | None = None
) -> float:
    """Exponential backoff with jitter for attempt 1, 2, ...

    Three quarters fixed, one quarter random: clients that failed together spread out, and
    each wait is still clearly longer than the one before (ranges [.75s, s], [1.5s, 2s], ...).
    """
    step = min(cap, base * 2 ** (attempt - 1))
    return 0.75 * step + (rng or random).uniform(0, 0.25 * step)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:300] if text.strip() else ""
