"""`sftforge validate`: the recipe, its inputs, and a sample of each source read for real.

The sample goes through the read stage's own readers, mapping and converters (no Prefect,
no output written): a source that would lose more of its records at read than the recipe's
`read_check` allows — every one of them, by default — is bad input, exit 2.
"""

from __future__ import annotations

import sys

from sftforge.tasks.pipeline.request import RunRequest


def validate(request: RunRequest, sample: int) -> int:
    """Exit code of `sftforge validate` (ConfigError → 2 is the caller's)."""
    from sftforge.schemas.loading import ConfigError

    if sample < 1:
        raise ConfigError(f"--sample {sample}: expected 1 or more")
    loaded = request.load(check_inputs=True)

    from sftforge.tasks.pipeline.read_check import (
        allowed_share,
        failure_text,
        percent,
        reasons_text,
        sample_sources,
        too_many_rejected,
    )
    from sftforge.tasks.readers.sources import UnreadableInput

    recipe = loaded.recipe
    try:
        all_reads = sample_sources(recipe, loaded.files, sample)
    except UnreadableInput as exc:  # broken past what the probe looked at
        raise ConfigError(str(exc)) from None
    print(f"{request.recipe_path}: recipe ok; reading the first {sample} records of each source")
    failing = []
    for reads in all_reads:
        if not reads.records:
            print(f"  {reads.name}: no records (its input is empty)")
            continue
        which = "the whole input" if reads.complete else f"the first {reads.records}"
        line = (
            f"  {reads.name}: {reads.records} records read ({which}), "
            f"{reads.n_rejected} would be rejected ({percent(reads.share)})"
        )
        if reads.n_rejected:
            line += f": {reasons_text(reads)}"
        limit = allowed_share(recipe, reads.name)
        if too_many_rejected(reads, limit):
            failing.append(failure_text(reads, limit))
            every = reads.n_rejected == reads.records
            line += " — fails: " + ("all rejected" if every else f"more than the {limit:g} allowed")
        print(line)
    if failing:
        # One line, as every refusal of validate is; the lines above give the whole count.
        print(f"sftforge: {request.recipe_path}: {'; '.join(failing)}", file=sys.stderr)
        return 2
    print(f"{request.recipe_path}: ok")
    return 0
