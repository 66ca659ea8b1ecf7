"""One record's answer -> feedback -> revision chain, as SelFee ran it.

    answer = the record's output (selfee, when present) or a call
    repeat:  feedback = critique(answer); keep (answer, feedback)
             stop if the feedback says no revision is needed          -> iteration_truncated false
             stop if max_iterations pairs are kept                   -> iteration_truncated true
             revision = revise(the chat so far)
             stop if it says "N/A" (dropped, as SelFee did)           -> iteration_truncated false
             answer = revision

The chats and the clean-ups are SelFee's (presets.py, postprocess.py). The chain is a pure
function of the record, the step's settings and the calls' responses, and every response comes
from the journal when it is there -- so rerunning a record after a crash replays what was
already paid for and sends only what is missing.
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
    context_of,
    ends_chain,
    feedback_chat,
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
    "record_id_header",
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
    """One record's calls: their keys, usage and the truncation flag."""

    def __init__(self, settings: LoopSettings, call: Call, record: dict[str, Any]) -> None:
        self.settings = settings
        self.call = call
        config = settings.config
        # Whose calls these are: part of every key unless records share identical calls.
        self.owner = None if config.share_calls else record_identity(record)
        self.headers = (
            {config.record_id_header: str(record.get("id") or "")}
            if config.record_id_header
            else {}
        )
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
        sample = settings.config.sample
        for _ in range(3):
            budget = settings.budget(params["max_tokens"])
            messages, cut = fit_messages(settings.counter, head, rounds or [], budget)
            request = {**params, "messages": messages}
            base = call_key(request, sample, record=self.owner)
            repeat = self._asked[base]
            spec = CallSpec(
                key=call_key(request, sample, repeat, record=self.owner) if repeat else base,
                request=request,
                prompt_tokens=count_messages(settings.counter, messages),
                max_tokens=params["max_tokens"],
                headers=self.headers,
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


async def _run_chain(
    record: dict[str, Any],
    settings: LoopSettings,
    chain: _Chain,
    answers: list[str],
    feedbacks: list[str],
) -> bool:
    """SelFee's loop, filling `answers` and `feedbacks` (kept as far as they got when a call
    fails); returns iteration_truncated."""
    preset, config = settings.preset, settings.config
    gold = str(record.get("output") or "")
    if not str(record.get("instruction") or "").strip():
        raise CallFailed("record has no instruction")
    if preset.needs_gold and not gold.strip():
        raise CallFailed(f"preset {config.preset} needs the record's output as gold answer")
    if preset.use_existing_output and gold.strip():
        answers.append(gold)
    else:
        raw = await chain.ask("answer", answer_messages(preset, record))
        answers.append(clean_answer(raw, teacher=preset.clean_first_answer))
    while True:
        raw = await chain.ask("feedback", *feedback_chat(preset, record, answers, feedbacks))
        feedbacks.append(clean_feedback(raw, of_revision=len(answers) > 1))
        if not needs_revision(feedbacks[-1], preset.stop_phrases):
            return False
        if len(answers) >= config.max_iterations:
            return True
        raw = await chain.ask("revision", *revision_chat(preset, record, answers, feedbacks))
        if ends_chain(preset, raw, gold):
            return False
        answers.append(clean_revision(raw))


async def augment_record(record: dict[str, Any], settings: LoopSettings, call: Call) -> dict:
    """The record with SelFee's fields added; never raises for a failed call."""
    preset = settings.preset
    chain = _Chain(settings, call, record)
    answers: list[str] = []
    feedbacks: list[str] = []
    iteration_truncated = False
    error: str | None = None
    try:
        iteration_truncated = await _run_chain(record, settings, chain, answers, feedbacks)
    except CallFailed as exc:
        error = str(exc)
    except Exception as exc:  # one bad record must not end the run
        error = f"{type(exc).__name__}: {exc}"
    # After a failed call, an answer still waiting for its critique is not a pair.
    pairs = list(zip(answers, feedbacks, strict=False))
    out = dict(record)
    if preset.fold_input:
        # SelFee's teacher writes the question as it asked it: the input folded in.
        out.update(instruction=context_of(record), input="")
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


def record_identity(record: dict[str, Any]) -> str:
    """Who a call belongs to: the record's id (unique within a run, stable across reruns),
    or, for a record without one, a hash of its content."""
    ident = record.get("id")
    if ident is not None and str(ident) != "":
        return str(ident)
    return "content:" + record_key(record, "")


def record_key(record: dict[str, Any], fingerprint: str) -> str:
    """Key of a record's saved result: its content (any JSON-able fields) and the settings."""
    payload = json.dumps(
        {"record": record, "settings": fingerprint},
        sort_keys=True,
        default=str,
        ensure_ascii=False,
    )
    return xxhash.xxh3_128_hexdigest(payload.encode("utf-8"))
