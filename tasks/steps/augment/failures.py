"""Why augment records failed, in classes a person can act on, and when that fails the stage.

A failed record keeps only its `error` text (the record schema has no room for more), so the
class is read back from the few forms this package writes there (retry.py `classify`, loop.py,
batch.py, budget.py). The class names are the openai library's exception names, which is what
a user searching for the error will find.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from sftforge.tasks.steps.augment.options import AugmentOptions

# openai's exception class per HTTP status (openai._client._make_status_error).
_STATUS_CLASS = {
    400: "BadRequestError",
    401: "AuthenticationError",
    403: "PermissionDeniedError",
    404: "NotFoundError",
    409: "ConflictError",
    422: "UnprocessableEntityError",
    429: "RateLimitError",
}
# "HTTP 401: ..." (online calls) and "batch line 401: ..." (Batch API result lines).
_STATUS = re.compile(r"^(?:HTTP|batch line) (\d{3})\b")
_EXCEPTION = re.compile(r"^([A-Za-z_][A-Za-z0-9_.]*(?:Error|Exception)): ")
# Error texts without a status, by how they start (or what they contain), and their class.
_PREFIXES = (
    ("connection error", "APIConnectionError"),
    ("timeout", "APITimeoutError"),
    ("not a chat completion", "InvalidResponse"),
    ("not sent: max_cost", "BudgetExhausted"),
    ("not sent", "NotSent"),
    ("record has no instruction", "BadRecord"),
    ("preset ", "BadRecord"),
    ("interrupted", "BatchIncomplete"),
    ("no result after", "BatchIncomplete"),
    ("batch line", "BatchLineError"),
)


def error_class(error: str | None) -> str:
    """'AuthenticationError, HTTP 401', 'APIConnectionError', ... for a record's `error`."""
    text = (error or "").strip()
    found = _STATUS.match(text)
    if found:
        status = int(found.group(1))
        default = "InternalServerError" if status >= 500 else "APIStatusError"
        return f"{_STATUS_CLASS.get(status, default)}, HTTP {status}"
    for prefix, name in _PREFIXES:
        if text.startswith(prefix):
            return name
    if "does not fit the model's context" in text:
        return "ContextOverflow"
    found = _EXCEPTION.match(text)
    return found.group(1) if found else "Error"


def hint(label: str, config: AugmentOptions) -> str | None:
    """What to check for one error class (None: nothing useful to say)."""
    status = re.search(r"HTTP (\d{3})$", label)
    code = int(status.group(1)) if status else None
    if code in (401, 403):
        key = (
            f"the Prefect Secret block {config.api_key_secret_block!r}"
            if config.api_key_secret_block
            else config.api_key_env
        )
        return f"check {key} / base_url"
    if code == 404:
        return "check model / base_url"
    if code == 429:
        return "rate limit: lower rpm / tpm"
    if code in (400, 422):
        return "the server refused the request: check model and the generation options"
    if code is not None and code >= 500:
        return "server error after max_attempts tries: retry later"
    return {
        "APIConnectionError": "check base_url / the server is running",
        "APITimeoutError": "no answer within timeout_seconds: check the server",
        "InvalidResponse": "the answer is not a chat completion: check base_url",
        "BudgetExhausted": "raise max_cost to continue",
        "ContextOverflow": "check context_window / max_tokens",
        "BadRecord": "the records lack an instruction (or the teacher preset's gold output)",
    }.get(label)


def fails_stage(failed: int, total: int, share: float | None) -> bool:
    """The rule of `fail_at_failed_share`: at least one record failed, and failed / total
    reached the share (1.0: every record failed; 0.0: any failure; None: never)."""
    if share is None or failed <= 0 or total <= 0:
        return False
    return failed / total >= share


def describe_failures(
    failed: int, total: int, by_error: Mapping[str, int], config: AugmentOptions
) -> str:
    """'30/30 records failed (AuthenticationError, HTTP 401: check OPENAI_API_KEY / base_url)';
    with several classes, each with its count, the most frequent first."""
    ranked = sorted(by_error.items(), key=lambda kv: (-kv[1], kv[0]))
    parts = []
    for label, count in ranked:
        text = label if len(ranked) == 1 else f"{count} {label}"
        advice = hint(label, config)
        parts.append(f"{text}: {advice}" if advice else text)
    detail = f" ({'; '.join(parts)})" if parts else ""
    return f"{failed}/{total} records failed{detail}"
