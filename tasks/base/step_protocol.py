"""The three ways a step runs, as explicit bases: the engine dispatches on which one a step is.

- `RecordStep`: record -> record or `Rejected`, shard by shard in parallel (like datatrove's
  `filter(doc)`); a step that raises on a record rejects that record as `step_error`.
- `FilterPassStep`: keeps or rejects rows unchanged, deciding from every shard in input order
  (exact dedup, per-group caps): scan shards in parallel, decide in order, apply in parallel.
- `BatchStep`: sees the whole input once, shard after shard in one process, with a context
  (augment: one rate limiter and one journal for all shards).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from sftforge.schemas.steps import StepBase
from sftforge.tasks.base.outcome import Rejected

if TYPE_CHECKING:  # only for hints: importing a step (augment, in the API engine) stays light
    import pyarrow as pa

Record = dict[str, Any]
RecordFn = Callable[[Record], "Record | Rejected"]


@dataclass(frozen=True)
class StepContext:
    """What the engine gives a step when it builds it."""

    seed: int = 0
    # The step's own folder for state that outlives a run (augment's journal):
    # OUT/.sftforge/<step type>/<stage>.
    work_dir: Path = Path(".sftforge")
    # The run's OUT (a batch step that writes files beside the records: embed's vectors).
    out_dir: Path = Path(".")
    # Shows one line beside the stage's progress bar (rates, cost); each flow run passes its
    # own display, so parallel flows in one process never share it.
    report: Callable[[str], None] | None = None
    # A batch step calls it with how many of the records it was given are finished so far,
    # so that the stage's bar advances per record, not per shard (augment does).
    records_done: Callable[[int], None] | None = None


class Summarized:
    """A step with counts of its own beside kept/rejected (in its markers and the manifest)."""

    # The manifest key of the step's summary; None: the step has none.
    summary_key: ClassVar[str | None] = None

    @classmethod
    def combine_summaries(cls, parts: list[dict[str, Any]]) -> dict[str, Any]:
        """The stage's summary from its shards' (the manifest's figure)."""
        return {}


class RecordStep(Summarized, StepBase, ABC):
    """Options of a step that handles each record on its own."""

    @abstractmethod
    def make(self, context: StepContext) -> RecordFn:
        """The function applied to every record (fresh per shard)."""

    def summarize(self, kept: list[Record]) -> dict[str, Any] | None:
        """With a `summary_key`: the step's own numbers for one shard's kept records."""
        return None


class FilterPass(ABC):
    """One filter pass's decision, split so that only `decide` runs in the flow's process.

    Workers get a pickled copy to `scan` and `judge` with; what `decide` accumulates must stay
    out of that copy (`__getstate__`), or every call would carry it.
    """

    columns: list[str]  # what `scan` reads of a shard

    @abstractmethod
    def scan(self, table: pa.Table) -> Any:
        """In a worker: the few values per row the decision needs."""

    @abstractmethod
    def decide(self, shard: int, scan: Any, alive: list[int]) -> dict[int, Any] | None:
        """In input order: rejections among `alive` (rows of the segment's input) by position
        in `alive`, or None when this pass can only decide once every shard is in."""

    @abstractmethod
    def finish(self, verdicts: list[Any], ids_of: Callable[[int], list[str]]) -> list[Any]:
        """After the last shard: each shard's final verdict, as `judge` takes it."""

    @abstractmethod
    def judge(self, table: pa.Table, verdict: Any) -> dict[int, Rejected]:
        """In a worker: the stage's rejections among the rows of its input table."""

    def summarize(self, verdict: Any) -> dict[str, Any] | None:
        """With the step's `summary_key`: its own numbers for one shard, from the shard's
        verdict (kept in the shard's marker and combined into the manifest)."""
        return None


class FilterPassStep(Summarized, StepBase, ABC):
    """Options of a step that keeps or rejects rows, deciding over every shard in order."""

    # It decides each shard as its scan arrives (a dedup), so later filters may join its pass;
    # False: it needs every shard before it can decide (a sample), which ends a pass.
    decides_per_shard: ClassVar[bool] = False

    @abstractmethod
    def make_pass(self, context: StepContext, kind: str) -> FilterPass:
        """A fresh decision over records of `kind`."""


class BatchRunner(ABC):
    """A batch step at work: shard after shard in input order, in one process."""

    def start_shard(self, shard: int) -> None:  # noqa: B027 (optional, as `close`)
        """Called before `apply_batch` with the shard's index (for files kept per shard)."""

    @abstractmethod
    def apply_batch(self, records: list[Record]) -> tuple[list[Record], bool]:
        """The shard's records, and whether the shard is complete (False: rerun it next time,
        e.g. records whose API calls failed; nothing is dropped either way)."""

    def summarize(self, records: list[Record]) -> dict[str, Any] | None:
        """The step's own numbers for one shard (kept in its marker and the manifest)."""
        return None

    def verdict(self, summary: dict[str, Any]) -> str | None:
        """After every shard is written: why the stage fails (the engine raises
        `TooManyFailures` with it, and the run exits 1), or None when it stands. `summary` is
        the stage's, as `combine_summaries` makes it. Its output stays on disk either way."""
        return None

    def close(self) -> None:  # noqa: B027 (an optional hook: most runners hold nothing)
        """Release what the runner holds (servers, connections)."""


class TooManyFailures(RuntimeError):
    """A batch stage ran to its end but its `verdict` fails it (augment: every record's API
    calls failed). The message is for the user as it is: one line, what failed and why."""


class BatchStep(Summarized, StepBase, ABC):
    """Options of a step that sees the whole input once, with a context (its runner's
    `summarize` gives the numbers `summary_key` names)."""

    @abstractmethod
    def make_batch(self, context: StepContext) -> BatchRunner: ...
