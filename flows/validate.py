"""`sftforge validate`: the recipe, its inputs, and a sample of each source read for real."""

from __future__ import annotations

from sftforge.tasks.pipeline.request import RunRequest


def validate(request: RunRequest, sample: int) -> int:
    """Exit code of `sftforge validate` (ConfigError → 2 is the caller's)."""
    request.load(check_inputs=True)
    print(f"{request.recipe_path}: ok")
    return 0
