"""Runs augment_records in its own process, so tests can kill it: ARGS records.json
config.json journal.sqlite out.json. Exits 130 with the resume hint on Ctrl-C."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from sftforge.tasks.steps.augment import AugmentInterrupted, augment_records
from sftforge.tasks.steps.augment.step import AugmentStep


def main(records_path: str, config_path: str, journal_path: str, out_path: str) -> int:
    records = json.loads(Path(records_path).read_text(encoding="utf-8"))
    config = AugmentStep.model_validate_json(Path(config_path).read_text(encoding="utf-8"))
    try:
        out = augment_records(records, config, Path(journal_path))
    except AugmentInterrupted as exc:
        print(exc, file=sys.stderr)
        return 130
    Path(out_path).write_text(json.dumps(out, sort_keys=True), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
