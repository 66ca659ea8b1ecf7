"""Optional parts of sftforge, installed as extras: one clear line when one is missing.

`sftforge[dask]` (prefect-dask, distributed) runs a recipe on a Dask cluster,
`sftforge[report]` (matplotlib) draws `sftforge report`'s plots, and `sftforge[dev]` (pytest,
ruff, psutil, llmock) brings the tests' tools and the local OpenAI-compatible server that
`augment` starts with `local_server: true` (the offline demo).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from sftforge.schemas.loading import ConfigError


class MissingExtra(ConfigError):
    """An optional module is not installed; `str()` names the extra that brings it.

    A ConfigError, so the CLI shows it as one line and exits 2.
    """


def require_extra(module: str, extra: str, what: str) -> ModuleType:
    """`import module`, or MissingExtra naming the extra to install for `what`."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing = exc.name or module
        raise MissingExtra(
            f"{what} needs the '{extra}' extra: pip install 'sftforge[{extra}]' "
            f"(cannot import {missing})"
        ) from None
