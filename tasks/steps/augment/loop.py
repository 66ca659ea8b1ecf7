"""One record's answer -> feedback -> revision chain, as SelFee ran it.

    answer = the record's output (selfee, when present) or a call
    repeat:  feedback = critique(answer); keep (answer, feedback)
             stop if the feedback says no revision is needed          -> iteration_truncated false
             stop if max_iterations pairs are kept                   -> iteration_truncated true
             answer = revise(running chat)

The chain is a pure function of the record, the step's settings and the calls' responses, and
every response comes from the journal when it is there -- so rerunning a record after a crash
replays what was already paid for and sends only what is missing.
"""

from __future__ import annotations

import collections
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import xxhash

from sftforge.tasks.steps.augment.journal import call_key, canonical_json
from sftforge.tasks.steps.augment.options import AugmentOptions
from sftforge.tasks.steps.augment.postprocess import clean_answer, clean_feedback, clean_revision
from sftforge.tasks.steps.augment.presets import (
    Message,
    Preset,
    answer_messages,
    feedback_messages,
    needs_revision,
    revision_chat,
)
from sftforge.tasks.steps.augment.processor import CallFailed, CallResult, CallSpec
from sftforge.tasks.steps.augment.tokens import Counter, count_messages, fit_messages

Call = Callable[[CallSpec], Awaitable[CallResult]]

# Step options that never change what a record's chain asks or gets.
_NOT_SHAPING = {
    "name",
    "api_key_env",
    "base_url_env",
    "base_url",
    "api_key_secret_block",
    "timeout_seconds",
    "concurrency",
    "rpm",
    "tpm",
    "ramp_seconds",
    "ramp_start",
    "tpm_accounting",
    "max_attempts",
    "backoff_base_seconds",
    "backoff_max_seconds",
    "fail_at_failed_share",
    "prices",
    "max_cost",
    "mode",
    "batch_poll_seconds",
    "batch_completion_window",
    "batch_max_requests",
    "batch_max_bytes",
    "batch_price_factor",
    "batch_max_submissions",
}
# The fields augment_record adds to (or sets on) a record.
RESULT_FIELDS = (
    "output",
    "outputs",
    "iteration",
    "iteration_truncated",
    "truncated",
    "usage",
    "status",
    "error",
)

_SERVER_COUNT = re.compile(r"maximum context length is (\d+).*?resulted in (\d+)", re.S)


@dataclass
class ServerContext:
    """What a context-length error taught about the server: its window and how many of its
    tokens one of ours is. Shared by every record of the run, so only the first call pays."""

    window: int | None = None
    ratio: float = 1.0

    def learn(self, failure_message: str, our_count: int) -> None:
        match = _SERVER_COUNT.search(failure_message)
        if match is None or our_count <= 0:
            self.ratio *= 1.25  # the server did not say by how much: shrink and try again
            return
        limit, theirs = int(match.group(1)), int(match.group(2))
        self.window = min(self.window or limit, limit)
        # Their count of what we sent, over ours; slightly more, so the refit lands under.
        self.ratio = max(self.ratio, theirs / our_count * 1.03)


@dataclass(frozen=True)
class LoopSettings:
    preset: Preset
    config: AugmentOptions
    counter: Counter
    server: ServerContext = field(default_factory=ServerContext)

    def params(self, kind: str) -> dict[str, Any]:
        config = self.config
        params: dict[str, Any] = {
            "model": config.model,
            "temperature": config.temperature,
            "max_tokens": getattr(config.max_tokens, kind),
        }
        if config.top_p is not None:
            params["top_p"] = config.top_p
        if config.seed is not None:
            params["seed"] = config.seed
        return params

    def fingerprint(self) -> str:
        """Everything that shapes a chain's calls and parsing -- not throughput, budget or
        where the server is. Part of each record's result key."""
        shaping = self.config.model_dump(mode="json", exclude=_NOT_SHAPING)
        return canonical_json({"config": shaping, "counter": self.counter.name})

    def budget(self, max_tokens: int) -> int:
        """Prompt tokens (by our count) a call with `max_tokens` may use."""
        window = self.config.window
        if self.server.window is not None:
            window = min(window, self.server.window)
        return int((window - max_tokens - self.config.context_margin) / self.server.ratio)


class _Chain:
    """Usage and the truncation flag of one record's calls."""

    def __init__(self, settings: LoopSettings, call: Call) -> None:
        self.settings = settings
        self.call = call
        self.truncated = False
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.cost = 0.0
        # How often each request was already asked in this chain (see call_key's `repeat`).
        self._asked: collections.Counter[str] = collections.Counter()

    async def ask(
        self, kind: str, head: list[Message], rounds: list[list[Message]] | None = None
    ) -> str:
        settings = self.settings
        params = settings.params(kind)
        for _ in range(3):
            budget = settings.budget(params["max_tokens"])
            messages, cut = fit_messages(settings.counter, head, rounds or [], budget)
            request = {**params, "messages": messages}
            base = call_key(request, settings.config.sample)
            repeat = self._asked[base]
            spec = CallSpec(
                key=call_key(request, settings.config.sample, repeat) if repeat else base,
                request=request,
                prompt_tokens=count_messages(settings.counter, messages),
                max_tokens=params["max_tokens"],
            )
            try:
                result = await self.call(spec)
            except CallFailed as exc:
                if exc.failure is None or not exc.failure.context_overflow:
                    raise
                # The server counts more tokens than we do (or has a smaller window): fit again
                # to its count. A different, shorter request -- not a retry of a rejected one.
                settings.server.learn(exc.failure.message, spec.prompt_tokens)
                continue
            self._asked[base] += 1
            self.truncated |= cut
            self.prompt_tokens += result.prompt_tokens
            self.completion_tokens += result.completion_tokens
            self.cost += result.cost
            return result.text
        raise CallFailed(f"{kind} prompt does not fit the model's context")


async def augment_record(record: dict[str, Any], settings: LoopSettings, call: Call) -> dict:
    """The record with SelFee's fields added; never raises for a failed call."""
    preset, config = settings.preset, settings.config
    chain = _Chain(settings, call)
    pairs: list[tuple[str, str]] = []
    iteration_truncated = False
    error: str | None = None
    try:
        if not str(record.get("instruction") or "").strip():
            raise CallFailed("record has no instruction")
        if preset.needs_gold and not str(record.get("output") or "").strip():
            raise CallFailed(f"preset {config.preset} needs the record's output as gold answer")
        existing = str(record.get("output") or "")
        if preset.use_existing_output and existing.strip():
            answer = existing
        else:
            answer = clean_answer(await chain.ask("answer", answer_messages(preset, record)))
        while True:
            feedback = clean_feedback(
                await chain.ask("feedback", feedback_messages(preset, record, answer))
            )
            pairs.append((answer, feedback))
            if not needs_revision(feedback, preset.stop_phrases):
                break
            if len(pairs) >= config.max_iterations:
                iteration_truncated = True
                break
            head, rounds = revision_chat(preset, record, pairs)
            answer = clean_revision(await chain.ask("revision", head, rounds))
    except CallFailed as exc:
        error = str(exc)
    except Exception as exc:  # one bad record must not end the run
        error = f"{type(exc).__name__}: {exc}"
    out = dict(record)
    if error is None and not preset.needs_gold and not str(record.get("output") or "").strip():
        # An Alpaca-style record with no answer of its own gets the chain's final one.
        out["output"] = pairs[-1][0]
    out.update(
        outputs=[{"output": a, "feedback": f} for a, f in pairs],
        iteration=len(pairs),
        iteration_truncated=iteration_truncated,
        truncated=chain.truncated,
        usage={
            "prompt_tokens": chain.prompt_tokens,
            "completion_tokens": chain.completion_tokens,
            "cost": round(chain.cost, 8),
        },
        status="failed" if error else "done",
        error=error,
    )
    return out


def record_key(record: dict[str, Any], fingerprint: str) -> str:
    """Key of a record's saved result: its content (any JSON-able fields) and the settings."""
    payload = json.dumps(
        {"record": record, "settings": fingerprint},
        sort_keys=True,
        default=str,
        ensure_ascii=False,
    )
    return xxhash.xxh3_128_hexdigest(payload.encode("utf-8"))
