"""Prices, a ledger of tokens and dollars, and `max_cost`.

The budget covers every call in the journal -- earlier runs included -- so rerunning after a
stop never spends `max_cost` a second time. A call is only sent if its worst case (prompt plus
all of max_tokens) still fits beside what is spent and what calls in flight may cost.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sftforge.tasks.steps.augment.options import Price


class BudgetExhausted(Exception):
    pass


def cost_of(price: Price | None, prompt_tokens: int, completion_tokens: int) -> float:
    if price is None:
        return 0.0
    return (prompt_tokens * price.input + completion_tokens * price.output) / 1_000_000


class Ledger:
    def __init__(
        self,
        price: Price | None,
        max_cost: float | None,
        journal_spent: Callable[[], float],
        refresh_seconds: float = 2.0,
    ) -> None:
        self.price = price
        self.max_cost = max_cost
        self._journal_spent = journal_spent
        self._refresh_seconds = refresh_seconds
        self.spent = journal_spent()
        self._refreshed = time.monotonic()
        self.reserved = 0.0
        self.exhausted = False
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.run_cost = 0.0

    def reserve(self, prompt_tokens: int, max_tokens: int) -> float:
        """Hold the worst-case cost of a call about to be sent, or raise BudgetExhausted."""
        worst = cost_of(self.price, prompt_tokens, max_tokens)
        if self.max_cost is None:
            return worst
        if time.monotonic() - self._refreshed > self._refresh_seconds:
            # Other processes (shards) may be spending from the same journal.
            self.spent = max(self.spent, self._journal_spent())
            self._refreshed = time.monotonic()
        if self.exhausted or self.spent + self.reserved + worst > self.max_cost:
            self.exhausted = True
            raise BudgetExhausted(
                f"max_cost ${self.max_cost:.4f} reached (spent ${self.spent:.4f}); "
                "raise max_cost and rerun to continue"
            )
        self.reserved += worst
        return worst

    def release(self, reserved: float) -> None:
        self.reserved = max(0.0, self.reserved - reserved)

    def settle(self, reserved: float, prompt_tokens: int, completion_tokens: int) -> float:
        """Replace a reservation by the call's real cost; returns that cost."""
        self.release(reserved)
        cost = cost_of(self.price, prompt_tokens, completion_tokens)
        self.spent += cost
        self.run_cost += cost
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        return cost
