"""sftforge: supervised fine-tuning datasets as one declarative, resumable Prefect pipeline.

From Python: `sftforge.run(recipe, inputs=, out=, sets=)` runs a recipe as `sftforge run`
does and returns a `RunResult`; `sftforge.load(out)` gives what a run made as a
`datasets.DatasetDict`; `sftforge.Recipe.from_yaml(path)` reads a recipe. The names are
imported on first use, so `import sftforge` stays light (no Prefect, no `datasets`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY = {
    "run": "sftforge.api",
    "load": "sftforge.api",
    "RunResult": "sftforge.api",
    "RunFailed": "sftforge.flows.recipe_flow",
    "ConfigError": "sftforge.schemas.loading",
    "Recipe": "sftforge.schemas.recipe",
    "RunRequest": "sftforge.tasks.pipeline.request",
}
__all__ = ["ConfigError", "Recipe", "RunFailed", "RunRequest", "RunResult", "load", "run"]

if TYPE_CHECKING:  # for type checkers and editors; at run time, `__getattr__` below
    from sftforge.api import RunResult, load, run
    from sftforge.flows.recipe_flow import RunFailed
    from sftforge.schemas.loading import ConfigError
    from sftforge.schemas.recipe import Recipe
    from sftforge.tasks.pipeline.request import RunRequest


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'sftforge' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value  # once imported, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
