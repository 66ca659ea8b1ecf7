"""Requests-per-minute and tokens-per-minute buckets that ramp up and learn from the server.

- No burst at start: the buckets hold at most `burst_seconds` of traffic, start nearly empty,
  and their refill rate ramps from `ramp_start` of the limit to all of it over `ramp_seconds`.
- A request is charged an estimate (prompt + max_tokens) before it is sent and reconciled with
  the reported usage afterwards.
- `x-ratelimit-limit-*` headers lower the limits (never raise them above the recipe's), and
  `x-ratelimit-remaining-*` headers lower what is left, so shards sharing one key slow down.
- A 429 pauses every sender until its Retry-After has passed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping

log = logging.getLogger("sftforge.augment")


class Bucket:
    """Refills continuously up to `burst_seconds` of traffic. A request waits until the level
    covers it (or the whole bucket, for one bigger than the bucket), then may take it below
    zero: the debt delays the next one, so the average rate holds."""

    def __init__(self, per_minute: float, burst_seconds: float, now: float, level: float) -> None:
        self.per_minute = float(per_minute)
        self.burst_seconds = burst_seconds
        self.updated = now
        self.level = level

    @property
    def capacity(self) -> float:
        return self.per_minute / 60.0 * self.burst_seconds

    def refill(self, now: float, factor: float) -> None:
        elapsed = max(0.0, now - self.updated)
        self.level = min(self.capacity, self.level + elapsed * self.per_minute / 60.0 * factor)
        self.updated = max(self.updated, now)

    def wait(self, amount: float, factor: float) -> float:
        """Seconds until `amount` may be taken."""
        missing = min(amount, self.capacity) - self.level
        return 0.0 if missing <= 0 else missing / (self.per_minute / 60.0 * factor)


class RateLimiter:
    def __init__(
        self,
        rpm: int | None,
        tpm: int | None,
        *,
        ramp_seconds: float = 30.0,
        ramp_start: float = 0.1,
        burst_seconds: float = 2.0,
        refund_unused: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        now = clock()
        self._started = now
        self.ramp_seconds = ramp_seconds
        self.ramp_start = ramp_start
        self.refund_unused = refund_unused
        # Nearly empty at start: the first request goes at once, the rest follow the ramp.
        self.requests = Bucket(rpm, burst_seconds, now, level=1.0) if rpm else None
        self.tokens = Bucket(tpm, burst_seconds, now, level=0.0) if tpm else None
        self._first = True
        self.paused_until = 0.0
        self._lock = asyncio.Lock()
        # (time, tokens) of recent sends, for the achieved rates shown in progress.
        self._recent: deque[tuple[float, int]] = deque()

    def factor(self, now: float) -> float:
        if self.ramp_seconds <= 0:
            return 1.0
        progress = min(1.0, (now - self._started) / self.ramp_seconds)
        return self.ramp_start + (1.0 - self.ramp_start) * progress

    async def acquire(self, tokens: int) -> None:
        """Wait until one request of `tokens` estimated tokens may be sent, and charge it."""
        # The lock makes waiters queue in arrival order instead of racing for each refill.
        async with self._lock:
            while True:
                now = self._clock()
                if now < self.paused_until:
                    await asyncio.sleep(self.paused_until - now)
                    continue
                factor = self.factor(now)
                wait = 0.0
                for bucket, amount in ((self.requests, 1), (self.tokens, tokens)):
                    if bucket is not None:
                        bucket.refill(now, factor)
                        wait = max(wait, bucket.wait(amount, factor))
                if wait <= 0 or self._first:
                    self._first = False
                    break
                await asyncio.sleep(wait)
            if self.requests is not None:
                self.requests.level -= 1
            if self.tokens is not None:
                self.tokens.level -= tokens
            self._recent.append((now, tokens))

    def reconcile(self, estimated: int, actual: int) -> None:
        """Correct the token charge once the response reports its usage."""
        if self.tokens is None:
            return
        if self.refund_unused:
            self.tokens.level += estimated - actual
        elif actual > estimated:
            # Servers that charge the estimate still count what our estimate missed.
            self.tokens.level -= actual - estimated

    def observe_headers(self, headers: Mapping[str, str]) -> None:
        for kind, bucket in (("requests", self.requests), ("tokens", self.tokens)):
            if bucket is None:
                continue
            limit = _number(headers.get(f"x-ratelimit-limit-{kind}"))
            if limit is not None and 0 < limit < bucket.per_minute:
                log.info("augment: server limit is %d %s/min; lowering ours", limit, kind)
                bucket.per_minute = limit
                bucket.level = min(bucket.level, bucket.capacity)
            remaining = _number(headers.get(f"x-ratelimit-remaining-{kind}"))
            if remaining is not None and remaining < bucket.level:
                bucket.level = remaining

    def pause(self, seconds: float) -> None:
        """Hold every sender for `seconds` (a 429 means the whole key is over its quota)."""
        self.paused_until = max(self.paused_until, self._clock() + seconds)

    def rates(self) -> dict[str, float]:
        """Requests and tokens sent over the last minute."""
        now = self._clock()
        while self._recent and self._recent[0][0] < now - 60.0:
            self._recent.popleft()
        return {
            "requests_per_min": float(len(self._recent)),
            "tokens_per_min": float(sum(tokens for _, tokens in self._recent)),
            "rpm_limit": self.requests.per_minute if self.requests else 0.0,
            "tpm_limit": self.tokens.per_minute if self.tokens else 0.0,
        }


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None
