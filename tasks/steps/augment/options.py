"""Options of the `augment` step: SelFee's answer -> feedback -> revision loop over an
OpenAI-compatible API.

    - step: augment
      preset: selfee            # or selfee_teacher
      model: gpt-3.5-turbo
      max_cost: 25.0

Every field has SelFee's value as its default; prompts come from the preset and any of them
can be replaced under `prompts:`.

The registered step (`step.py`) adds what the pipeline needs: its name, the datasets it
augments, the offline demo's local server.
"""

from __future__ import annotations

import string
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Placeholders a prompt template may use.
TEMPLATE_FIELDS: frozenset[str] = frozenset(
    {"instruction", "input", "context", "answer", "feedback", "gold"}
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _check_template(text: str) -> str:
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError as exc:  # unbalanced braces
        raise ValueError(f"bad template {text[:40]!r}: {exc}") from None
    unknown = names - TEMPLATE_FIELDS
    if unknown:
        raise ValueError(
            f"unknown placeholder(s) {sorted(unknown)}; use {sorted(TEMPLATE_FIELDS)} "
            "(write literal braces as {{ and }})"
        )
    return text


class Turn(_Strict):
    role: Literal["system", "user", "assistant"]
    content: str

    @field_validator("content")
    @classmethod
    def _template(cls, value: str) -> str:
        return _check_template(value)


class Prompts(_Strict):
    """Prompt templates. Unset fields keep the preset's text (SelFee's, word for word); the
    shape of the chats is the preset's (presets.py)."""

    system: str | None = None
    # First call: the question the model answers.
    answer: str | None = None
    # The request for a critique of the first `{answer}` (one user message).
    feedback: str | None = None
    # Turns added to the critic's chat, after its last critique, for a revised `{answer}`.
    feedback_revision: list[Turn] | None = None
    # Turns added after a critique (`{feedback}`) to ask for a revision.
    revision: list[Turn] | None = None
    # The same from the third answer on (selfee's restarted chat); unset with `revision` set:
    # `revision` for every round.
    revision_late: list[Turn] | None = None
    # The critic's opening turns (selfee_teacher: its role, the question, the `{gold}` answer).
    critic: list[Turn] | None = None

    @field_validator("system", "answer", "feedback")
    @classmethod
    def _templates(cls, value: str | None) -> str | None:
        return None if value is None else _check_template(value)


class Price(_Strict):
    """US dollars per million tokens."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)


# Public list prices at the time of writing; recipes override or extend them.
DEFAULT_PRICES: dict[str, Price] = {
    "gpt-3.5-turbo": Price(input=0.50, output=1.50),
    "gpt-4o-mini": Price(input=0.15, output=0.60),
    "gpt-4o": Price(input=2.50, output=10.00),
    "gpt-4": Price(input=30.00, output=60.00),
}

# Context windows the loop must fit into (prompt + max_tokens).
DEFAULT_CONTEXT_WINDOWS: dict[str, int] = {
    "gpt-3.5-turbo": 4096,
    "gpt-4": 8192,
    "gpt-4o-mini": 128_000,
    "gpt-4o": 128_000,
}


class MaxTokens(_Strict):
    """Completion budget per kind of call (SelFee: 512 / 128 / 512)."""

    answer: int = Field(default=512, ge=1)
    feedback: int = Field(default=128, ge=1)
    revision: int = Field(default=512, ge=1)


class ApiClientOptions(_Strict):
    """Where an OpenAI-compatible API is and how its key is found (augment, embed): what
    `client.credentials` and `client.make_client` read."""

    # Names of environment variables, never the values themselves.
    api_key_env: str = "OPENAI_API_KEY"
    base_url_env: str = "OPENAI_BASE_URL"
    # A non-secret base URL (e.g. a local vLLM); the env var wins when both are set.
    base_url: str | None = None
    # Name of a Prefect Secret block holding the key; loaded only when set.
    api_key_secret_block: str | None = None
    timeout_seconds: float = Field(default=120.0, gt=0)


class AugmentOptions(ApiClientOptions):
    """The loop's options (what tasks/steps/augment/* read)."""

    step: Literal["augment"]
    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_\-]+$")

    # -- the loop --------------------------------------------------------------------------
    preset: Literal["selfee", "selfee_teacher"] = "selfee"
    prompts: Prompts = Prompts()
    # Continue while the lower-cased feedback contains none of these (None: the preset's).
    stop_phrases: list[str] | None = None
    # At most this many (answer, feedback) pairs; more would have been needed ->
    # iteration_truncated.
    max_iterations: int = Field(default=5, ge=1)
    # Use a record's existing `output` as the first answer instead of asking for one
    # (None: the preset decides -- yes for selfee, no for selfee_teacher, whose output is gold).
    use_existing_output: bool | None = None

    # -- generation ------------------------------------------------------------------------
    model: str = "gpt-3.5-turbo"
    temperature: float = Field(default=1.0, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: MaxTokens = MaxTokens()
    # Part of every call's cache key: change it to draw a fresh chain for the same records.
    sample: int = Field(default=0, ge=0)
    seed: int | None = None
    # Each record makes its own calls, as SelFee did (one chain per record, at temperature
    # 1.0), so two records with the same instruction get two samples. true: records that send
    # identical requests share one call and its answer -- cheaper, identical chains.
    share_calls: bool = False

    # -- context ---------------------------------------------------------------------------
    # Tokens the model accepts (prompt + completion). None: DEFAULT_CONTEXT_WINDOWS, else 4096.
    context_window: int | None = Field(default=None, ge=256)
    # "auto": tiktoken when its encoding file is already on disk, else a conservative estimate;
    # "tiktoken" (may download), "estimate", or a path to an HF tokenizer.json.
    tokenizer: str = "auto"
    # Tokens kept free below the window, for counting error.
    context_margin: int = Field(default=32, ge=0)

    # -- client: ApiClientOptions ----------------------------------------------------------
    # An HTTP header (e.g. X-Record-Id) carrying the record's id on each of its calls, for a
    # gateway's logs or a replay server; never part of the request body or its journal key.
    record_id_header: str | None = Field(default=None, pattern=r"^[A-Za-z0-9\-]+$")

    # -- throughput and failures -------------------------------------------------------------
    concurrency: int = Field(default=16, ge=1)
    rpm: int | None = Field(default=3500, ge=1)
    tpm: int | None = Field(default=90_000, ge=1)
    # The limits start at `ramp_start` of their value and reach it after `ramp_seconds`.
    ramp_seconds: float = Field(default=30.0, ge=0)
    ramp_start: float = Field(default=0.1, gt=0, le=1)
    # "estimate": the server charges prompt + max_tokens at admission (OpenAI), so unused
    # max_tokens are not refunded; "usage": it charges what the response reports.
    tpm_accounting: Literal["estimate", "usage"] = "estimate"
    max_attempts: int = Field(default=6, ge=1, le=10)
    backoff_base_seconds: float = Field(default=1.0, gt=0)
    backoff_max_seconds: float = Field(default=60.0, gt=0)
    # Records whose calls still fail are kept (status failed), counted in the manifest and
    # the summary, and retried by the next run. The stage (and so the run: exit 1) fails once
    # at least this share of its augmented records failed: 1.0, the default, only when every
    # one did (a wrong key or base URL, a server down); 0.0 at any failure; null never.
    fail_at_failed_share: float | None = Field(default=1.0, ge=0, le=1)

    # -- budget ----------------------------------------------------------------------------
    prices: dict[str, Price] = Field(default_factory=lambda: dict(DEFAULT_PRICES))
    # Dollars for all calls recorded in the journal; None: no limit.
    max_cost: float | None = Field(default=None, gt=0)

    # "online": one request per call; "batch": each round of the loop (all answers, then all
    # feedbacks, ...) goes to the OpenAI Batch API as JSONL files. Both share the journal.
    mode: Literal["online", "batch"] = "online"
    batch_poll_seconds: float = Field(default=30.0, gt=0)
    batch_completion_window: str = "24h"
    batch_max_requests: int = Field(default=50_000, ge=1, le=50_000)
    batch_max_bytes: int = Field(default=200 * 1024 * 1024, ge=1024, le=200 * 1024 * 1024)
    # Batch calls cost this fraction of the price table (OpenAI: half).
    batch_price_factor: float = Field(default=0.5, gt=0, le=1)
    # Submissions of one call before it is failed (an expired batch counts one).
    batch_max_submissions: int = Field(default=3, ge=1)

    @field_validator("stop_phrases")
    @classmethod
    def _lower(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        phrases = [p.lower() for p in value if p.strip()]
        if not phrases:
            raise ValueError("stop_phrases needs at least one non-blank phrase")
        return phrases

    @model_validator(mode="after")
    def _priced_when_budgeted(self) -> AugmentOptions:
        if self.max_cost is not None and self.model not in self.prices:
            raise ValueError(f"max_cost is set but `prices` has no entry for {self.model!r}")
        window = self.window
        biggest = max(self.max_tokens.answer, self.max_tokens.feedback, self.max_tokens.revision)
        if biggest + self.context_margin >= window:
            raise ValueError(f"max_tokens {biggest} leaves no room in a {window}-token context")
        return self

    @property
    def window(self) -> int:
        if self.context_window is not None:
            return self.context_window
        # Longest prefix wins, so dated snapshots ("gpt-3.5-turbo-0613") find their family.
        known = [name for name in DEFAULT_CONTEXT_WINDOWS if self.model.startswith(name)]
        return DEFAULT_CONTEXT_WINDOWS[max(known, key=len)] if known else 4096
