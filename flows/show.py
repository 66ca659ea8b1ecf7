"""`sftforge show OUT`: a run's records (or rejects) printed as a person reads them.

It reads OUT's parquet parts with pyarrow alone (no Prefect, no `datasets`: it answers at
once) and stops reading at the N-th row it shows. The stages and their reject reasons come
from the manifest; without one (a run still going, or one that failed) from the stage
folders on disk. Misuse — an OUT that is no run, a stage or reason the run does not have —
is one line and exit 2, naming what there is; an `--id` found nowhere is exit 1 (as grep).
"""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sftforge.schemas.loading import ConfigError
from sftforge.tasks.pipeline.out_check import MANIFEST, read_manifest
from sftforge.tasks.pipeline.plan import READ_STAGE

LISTED_CHARS = 2_000  # of each message when listing records; `--id` shows one in full
RAW_CHARS = 1_000  # of a reject's input text when listing
_NOT_STAGES = {"rejects", "dataset", "export", "partitions"}  # OUT's other folders


@dataclass(frozen=True)
class RunView:
    out: Path
    stages: list[str]  # in run order
    rejected: dict[str, dict[str, int]]  # stage -> reason -> count
    finished: bool  # it has a manifest
    limit: int | None = None  # a limited run's `--limit N`


def _parts(folder: Path) -> list[Path]:
    return sorted(folder.glob("part-*.parquet")) if folder.is_dir() else []


def _stages_on_disk(out: Path) -> list[str]:
    """Stage folders of a run without a manifest: `read` first, then in the order their first
    part was written (the order they ran in, the same for a resumed run)."""
    found = [
        p
        for p in out.iterdir()
        if p.is_dir() and not p.name.startswith(".") and p.name not in _NOT_STAGES and _parts(p)
    ]
    found.sort(key=lambda p: (p.name != READ_STAGE, _parts(p)[0].stat().st_mtime_ns, p.name))
    return [p.name for p in found]


def _reasons_on_disk(out: Path, stage: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for part in _parts(out / "rejects" / stage):
        reasons = pq.read_table(part, columns=["reason"]).column("reason")
        for item in pc.value_counts(reasons).to_pylist():
            counts[item["values"]] = counts.get(item["values"], 0) + item["counts"]
    return counts


def open_run(out: Path) -> RunView:
    """OUT's stages and reject reasons (ConfigError when OUT is not a run's output)."""
    if not out.is_dir():
        raise ConfigError(f"{out}: {'not a directory' if out.exists() else 'no such directory'}")
    if (out / MANIFEST).is_file():
        body = read_manifest(out)  # a broken manifest is one line too
        stages = [stage["name"] for stage in body["stages"]]
        rejected = {stage["name"]: dict(stage["rejected"]) for stage in body["stages"]}
        limit = body.get("limit") if body.get("limited") else None
        return RunView(out, stages, rejected, True, limit)
    stages = _stages_on_disk(out)
    if not stages:
        raise ConfigError(f"{out}: not a run's output directory (no {MANIFEST}, no stage parts)")
    return RunView(out, stages, {s: _reasons_on_disk(out, s) for s in stages}, False)


def _did_you_mean(word: str, known: list[str]) -> str:
    close = difflib.get_close_matches(word, known, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _check_stage(run: RunView, stage: str) -> None:
    if stage not in run.stages:
        known = ", ".join(run.stages)
        raise ConfigError(
            f"{run.out}: no stage {stage!r} (stages: {known}){_did_you_mean(stage, run.stages)}"
        )


def _check_reason(run: RunView, stage: str | None, reason: str) -> None:
    stages = [stage] if stage else run.stages
    reasons = sorted({r for s in stages for r in run.rejected[s]})
    if reason in reasons:
        return
    elsewhere = [s for s in run.stages if reason in run.rejected[s]]
    hint = f" ({reason!r} is a reason of stage {elsewhere[0]})" if elsewhere else ""
    where = f"stage {stage} rejected nothing as {reason!r}" if stage else f"no reason {reason!r}"
    listed = ", ".join(reasons) or "none"
    raise ConfigError(
        f"{run.out}: {where} (reasons: {listed}){hint}{_did_you_mean(reason, reasons)}"
    )


def rows(folder: Path, reason: str | None = None, record_id: str | None = None) -> Iterator[Any]:
    """The rows of a stage's (or its rejects') parts in order, those with `reason` and
    `record_id` only; read batch by batch, so that taking five reads little."""
    for part in _parts(folder):
        for batch in pq.ParquetFile(part).iter_batches(batch_size=1024):
            table = pa.Table.from_batches([batch])
            if reason is not None:
                table = table.filter(pc.equal(table.column("reason"), reason))
            if record_id is not None:
                table = table.filter(pc.equal(table.column("id"), record_id))
            yield from table.to_pylist()


def _rows_in(folder: Path) -> int:
    return sum(pq.ParquetFile(part).metadata.num_rows for part in _parts(folder))


def _console() -> Any:
    from rich.console import Console

    # Data is never read as markup or emoji codes; rich draws only what show_render made.
    return Console(highlight=False, emoji=False, markup=False)


def _header(console: Any, text: str) -> None:
    from rich.text import Text

    console.print(Text(text, style="bold"))


def _show_id(
    run: RunView,
    console: Any,
    record_id: str,
    stage: str | None,
    rejects: bool,
    reason: str | None,
) -> int:
    from sftforge.flows.show_render import record_view, reject_view

    if stage is not None:
        places = [(stage, rejects)]
    elif rejects:
        places = [(s, True) for s in run.stages]
    else:  # where the record ended: the final stage, else the stage that rejected it
        places = [(run.stages[-1], False)] + [(s, True) for s in run.stages]
    for name, rejected in places:
        folder = run.out / "rejects" / name if rejected else run.out / name
        for row in rows(folder, reason if rejected else None, record_id):
            if rejected and not rejects and stage is None:
                final = run.stages[-1]
                _header(console, f"{record_id} is not in {final}: stage {name} rejected it")
            view = reject_view(row, name, None, None) if rejected else record_view(row, None)
            console.print(view)
            return 0
    if stage is not None:
        where = f"{'the rejects of ' if rejects else ''}stage {stage}"
    else:
        where = "any stage's rejects" if rejects else f"{run.stages[-1]} or any stage's rejects"
    print(f"sftforge: {run.out}: no record with id {record_id!r} in {where}", file=sys.stderr)
    return 1


def _show_rejects(
    run: RunView, console: Any, stage: str | None, reason: str | None, limit: int
) -> None:
    from sftforge.flows.show_render import reject_view

    stages = [stage] if stage else run.stages
    stages = [s for s in stages if (reason in run.rejected[s] if reason else run.rejected[s])]
    counts = {s: {r: n for r, n in run.rejected[s].items() if reason in (None, r)} for s in stages}
    total = sum(sum(c.values()) for c in counts.values())
    listed = "; ".join(
        f"{s}: " + ", ".join(f"{r} {n:,}" for r, n in c.items()) for s, c in counts.items()
    )
    what = f"stage {stage}" if stage else "all stages"
    only = f" · reason {reason}" if reason else ""
    shown = min(limit, total)
    _header(console, f"{run.out} · rejects of {what}{only} · {total:,} · showing {shown}")
    if sum(len(c) for c in counts.values()) > 1:  # more than the heading said
        _header(console, listed)
    found = ((s, row) for s in stages for row in rows(run.out / "rejects" / s, reason))
    for name, row in islice(found, limit):
        console.print(reject_view(row, name, LISTED_CHARS, RAW_CHARS))


def _show_records(run: RunView, console: Any, stage: str | None, limit: int) -> None:
    from sftforge.flows.show_render import record_view

    name = stage or run.stages[-1]
    total = _rows_in(run.out / name)
    final = " (final)" if name == run.stages[-1] else ""
    if run.limit is not None:
        final += f" · a limited run (--limit {run.limit})"
    _header(
        console,
        f"{run.out} · stage {name}{final} · {total:,} records · showing {min(limit, total)}",
    )
    for row in islice(rows(run.out / name), limit):
        console.print(record_view(row, LISTED_CHARS))


def show(
    out: Path,
    *,
    stage: str | None,
    rejects: bool,
    reason: str | None,
    record_id: str | None,
    limit: int,
) -> int:
    """Print up to `limit` records of `stage` (default: the final stage), or its rejects
    (`rejects`, or any `reason`: every stage's when no stage is named), or the one record
    `record_id` in full; the exit code."""
    run = open_run(out)
    if stage is not None:
        _check_stage(run, stage)
    if reason is not None:
        _check_reason(run, stage, reason)
    console = _console()
    if not run.finished:
        print(
            f"sftforge: note: {out} has no {MANIFEST} (a run still going, or one that "
            "failed): showing the parts on disk",
            file=sys.stderr,
        )
    try:
        if record_id is not None:
            return _show_id(run, console, record_id, stage, rejects or reason is not None, reason)
        if rejects or reason is not None:
            _show_rejects(run, console, stage, reason, limit)
        else:
            _show_records(run, console, stage, limit)
    except BrokenPipeError:  # `sftforge show OUT | head`: the reader has seen enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except SystemExit:
        if not console.quiet:
            raise
        # rich's own answer to a closed pipe (it silences the console and exits 1): the
        # reader has seen enough, which is no failure.
    return 0
