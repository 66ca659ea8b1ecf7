"""The recipe a caller has loaded already, handed to the recipe flow beside its parameters.

Prefect builds a JSON schema of a flow's parameters at import (for the UI) and serialises them
for each run, and the whole recipe model cost 0.5 s of every command there; so the flow run's
parameters are the request alone, which is what reruns it, and the loaded recipe travels in a
context variable. It lives in this module, not in the flow's: a dask task runner pickles the
flow function by value with the globals it names, and a ContextVar cannot be pickled — a
function imported from here is pickled by reference.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from sftforge.tasks.pipeline.request import LoadedRecipe, RunRequest

_HANDED: ContextVar[LoadedRecipe | None] = ContextVar("sftforge_handed_recipe", default=None)


@contextmanager
def handed_over(loaded: LoadedRecipe) -> Iterator[None]:
    """Within the block, a recipe flow started here takes `loaded` instead of loading."""
    token = _HANDED.set(loaded)
    try:
        yield
    finally:
        _HANDED.reset(token)


def loaded_for(request: RunRequest) -> LoadedRecipe:
    """The recipe handed over by the caller, or `request`'s, loaded now."""
    handed = _HANDED.get()
    return handed if handed is not None else request.load()
