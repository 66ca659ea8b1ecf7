"""The one OpenAI-compatible client of a run, and keeping its key out of everything written.

The key comes from a Prefect Secret block (when the step names one) or the environment; the
base URL from the environment or the step. Any OpenAI-compatible server works: OpenAI, Azure
gateways, vLLM, Ollama, LiteLLM, llmock.
"""

from __future__ import annotations

import os
import re

import openai

from sftforge.tasks.steps.augment.options import ApiClientOptions

# What an API key looks like in a provider's error message, masked or not.
_KEY_LIKE = re.compile(r"\b(?:sk|pk|rk|key)-[A-Za-z0-9_\-*.]{6,}")


class MissingCredentials(ValueError):
    pass


def credentials(config: ApiClientOptions) -> tuple[str, str | None]:
    """(api_key, base_url). Never log or store the first."""
    base_url = os.environ.get(config.base_url_env) or config.base_url
    if config.api_key_secret_block:
        # Imported here: only recipes that name a block pay for Prefect's client.
        from prefect.blocks.system import Secret

        key = Secret.load(config.api_key_secret_block).get()
    else:
        key = os.environ.get(config.api_key_env, "")
    if not key:
        if base_url is None:
            raise MissingCredentials(
                f"no API key: set {config.api_key_env} or `api_key_secret_block` in the step"
            )
        # Local servers (vLLM, Ollama) accept any key; the client library insists on one.
        key = "not-needed"
    return str(key), base_url


def make_client(config: ApiClientOptions, api_key: str, base_url: str | None) -> openai.AsyncOpenAI:
    # Retries are ours (journaled, rate-limit aware), so the library must not add its own.
    return openai.AsyncOpenAI(
        api_key=api_key, base_url=base_url, max_retries=0, timeout=config.timeout_seconds
    )


class Redactor:
    """Removes secrets from text before it is logged, journaled or written to a record."""

    def __init__(self, *secrets: str) -> None:
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
            # Providers echo keys masked in the middle ("sk-abc*****wxyz"): drop the tail too.
            if len(secret) >= 12:
                text = text.replace(secret[-4:], "****")
        return _KEY_LIKE.sub("[redacted]", text)
