"""Benchmark decontamination: reject records whose text holds a benchmark's prompt.

Two tests per record, in order (GPT-3's and NeMo Curator's, on normalised words): the exact
test finds a benchmark item whole inside one turn (case, width, spacing and punctuation
folded); the n-gram test finds a turn sharing word n-grams (13 by default) with an item of at
least `min_item_words` words — any one, or `threshold` of the item's n-grams. A hit is rejected
as `contaminated`, its detail naming the benchmark, the item and the test. With `semantic:`, a
third test for what is left: embedding similarity to the benchmark items, close pairs judged by
an LLM (tasks/steps/semantic_check.py), run in `decide`, in the flow's process.

As a filter pass (it decides each record on its own, so it joins the pass of a dedup before
it): the index is built once per run, in the flow's process, from the benchmarks the recipe
declares, and written to OUT/.sftforge/decontaminate/<stage>/; workers map it from there
(once per process), and only its folder's name travels with each shard.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, Literal

import pyarrow as pa
from pydantic import Field, model_validator

from sftforge.schemas.steps import register_step
from sftforge.tasks.base.outcome import Rejected
from sftforge.tasks.base.step_protocol import FilterPass, FilterPassStep, StepContext
from sftforge.tasks.steps.benchmark_index import BenchmarkIndex, Hit
from sftforge.tasks.steps.benchmark_load import Benchmark, Loaded, load_benchmarks
from sftforge.tasks.steps.embed.step import local_model_extra
from sftforge.tasks.steps.record_texts import TextScope, conversation_parts, record_parts
from sftforge.tasks.steps.semantic_check import (
    SemanticChecker,
    SemanticOptions,
    combine_semantic,
)

Verdict = tuple[str, str, str]  # benchmark, test, detail


class Rejections(dict[int, Verdict]):
    """A shard's rejections by position among its alive rows, with the semantic test's counts
    (what the shard's marker and the manifest report beside the hits)."""

    semantic: dict[str, Any] | None = None


@lru_cache(maxsize=4)
def _index(folder: str) -> BenchmarkIndex:
    """One index per worker process: memory-mapped from the run's work folder."""
    return BenchmarkIndex.load(Path(folder))


class DecontaminatePass(FilterPass):
    """Scans find hits in the workers; `decide` only keeps those among the rows still alive."""

    def __init__(
        self,
        step: DecontaminateStep,
        kind: str,
        folder: str | None,
        loaded: Loaded,
        semantic: SemanticChecker | None = None,
    ):
        self.scope: TextScope = step.text
        self.semantic = semantic is not None
        self._checker = semantic  # the flow's process only: see __getstate__
        self.tests = ("exact", "ngram", "semantic") if self.semantic else ("exact", "ngram")
        self.datasets = set(step.datasets) if step.datasets is not None else None
        self.folder = folder  # None: no benchmark could be loaded, nothing to find
        self.benchmarks = loaded.benchmarks
        self.skipped = loaded.skipped
        if kind == "conversation":
            content = ["messages"]
        else:
            content = {"assistant": ["output"], "all": ["instruction", "input", "output"]}.get(
                self.scope, ["instruction", "input"]
            )
        wanted = self.datasets is not None and kind != "conversation"
        self.columns = content + (["dataset"] if wanted else [])

    def __getstate__(self) -> dict[str, Any]:
        # Workers scan and judge: the checker (its items and vectors) stays in the flow.
        return {**self.__dict__, "_checker": None}

    def scan(self, table: pa.Table) -> Any:
        """Per contaminated row: (benchmark, test, detail); with `semantic`, also the texts
        of the other rows, (row, where, text), for `decide` to check."""
        owners, texts = self._parts(table) if self.folder is not None or self.semantic else ([], [])
        hits = self._hits(owners, texts) if self.folder is not None else {}
        if not self.semantic:
            return hits
        rest = [(r, w, t) for (r, w), t in zip(owners, texts, strict=True) if r not in hits]
        return hits, rest

    def _hits(self, owners: list[tuple[int, str]], texts: list[str]) -> dict[int, Verdict]:
        index = _index(self.folder)  # type: ignore[arg-type]
        found: dict[int, Hit] = {}
        for part, hit in sorted(index.search(texts).items()):
            row = owners[part][0]
            known = found.get(row)
            # Per record: an exact hit before an n-gram one, else the first turn's.
            if known is None or (known.test == "ngram" and hit.test == "exact"):
                found[row] = hit
        return {row: self._verdict(index, hit, owners[hit.part][1]) for row, hit in found.items()}

    def _parts(self, table: pa.Table) -> tuple[list[tuple[int, str]], list[str]]:
        """The texts checked, and whose (row, where) each is."""
        if "messages" in table.column_names:
            if self.datasets is not None:  # conversations have no dataset: none is checked
                return [], []
            return conversation_parts(table.column("messages"), self.scope)
        owners: list[tuple[int, str]] = []
        texts: list[str] = []
        for row, record in enumerate(table.select(self.columns).to_pylist()):
            if self.datasets is not None and record.get("dataset") not in self.datasets:
                continue
            for where, text in record_parts(record, self.scope):
                owners.append((row, where))
                texts.append(text)
        return owners, texts

    @staticmethod
    def _verdict(index: BenchmarkIndex, hit: Hit, where: str) -> tuple[str, str, str]:
        benchmark, item_id = index.item(hit.item)
        if hit.test == "exact":
            test = "exact match"
        else:
            test = f"{index.ngram}-gram overlap {hit.overlap}/{hit.total}"
        return benchmark, hit.test, f"{benchmark} item {item_id}: {test} in {where}"

    def decide(self, shard: int, scan: Any, alive: list[int]) -> Rejections:
        hits, rest = scan if isinstance(scan, tuple) else (scan, [])
        rejected = Rejections({p: hits[row] for p, row in enumerate(alive) if row in hits})
        if self._checker is None:
            return rejected
        position = {row: p for p, row in enumerate(alive)}
        rest = [(r, w, t) for r, w, t in rest if r in position]
        found, rejected.semantic = self._checker.check([t for _, _, t in rest])
        for part, finding in sorted(found.items()):
            row, where, _ = rest[part]
            item = self._checker.items[finding.item]
            judged = "no judge" if finding.answer is None else f"judge: {finding.answer}"
            detail = (
                f"{item.benchmark} item {item.item_id}: semantic similarity "
                f"{finding.similarity:.3f} ({judged}) in {where}"
            )
            rejected.setdefault(position[row], (item.benchmark, "semantic", detail))
        return rejected

    def finish(self, verdicts: list[Any], ids_of: Callable[[int], list[str]]) -> list[Any]:
        return verdicts

    def judge(self, table: pa.Table, verdict: dict[int, tuple[str, str, str]]) -> dict[int, Any]:
        return {p: Rejected("contaminated", detail) for p, (_, _, detail) in verdict.items()}

    def summarize(self, verdict: dict[int, tuple[str, str, str]]) -> dict[str, Any]:
        hits = Counter(benchmark for benchmark, _, _ in verdict.values())
        tests = Counter(test for _, test, _ in verdict.values())
        return {
            "hits": {name: hits.get(name, 0) for name in self.benchmarks},
            "tests": {t: tests.get(t, 0) for t in self.tests},
            "benchmarks": self.benchmarks,
            "skipped": self.skipped,
            **({"semantic": verdict.semantic} if getattr(verdict, "semantic", None) else {}),
        }


@register_step
class DecontaminateStep(FilterPassStep):
    """Reject records that hold a benchmark's prompt: exact (normalised) or word n-grams."""

    step: Literal["decontaminate"]
    benchmarks: list[Benchmark] = Field(min_length=1)
    # Which text is checked: the user turns (an instruction and its input), the first user
    # turn only, the assistant turns (the output), or all of it.
    text: TextScope = "user"
    # Words per n-gram (13: GPT-3, NeMo Curator's TaskDecontamination).
    ngram: int = Field(default=13, ge=3, le=100)
    # Items with fewer words are found by the exact test only (None: `ngram`).
    min_item_words: int | None = Field(default=None, ge=1)
    # Items with fewer words match only a whole turn, not a phrase inside one ("Hi there").
    exact_min_words: int = Field(default=4, ge=1)
    # The share of an item's distinct n-grams a turn must have (None: any one n-gram).
    threshold: float | None = Field(default=None, gt=0.0, le=1.0)
    # Only records of these datasets are checked; None: every record.
    datasets: list[str] | None = None
    # Embedding similarity to the items, close pairs judged by an LLM; None: off.
    semantic: SemanticOptions | None = None

    decides_per_shard: ClassVar[bool] = True
    # The manifest key of hits per benchmark and test, the benchmarks used and skipped.
    summary_key: ClassVar[str] = "contamination"

    @model_validator(mode="after")
    def _names(self) -> DecontaminateStep:
        names = [b.name for b in self.benchmarks]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"benchmark name {twice[0]!r} is used twice")
        if self.min_item_words is not None and self.min_item_words < self.ngram:
            raise ValueError("min_item_words below ngram: such items have no n-gram to test")
        return self

    def required_extras(self) -> dict[str, tuple[str, str]]:
        return local_model_extra(self.semantic.embedding) if self.semantic else {}

    def required_files(self) -> dict[str, str]:
        return {f"benchmarks[{i}].path": b.path for i, b in enumerate(self.benchmarks) if b.path}

    def make_pass(self, context: StepContext, kind: str) -> DecontaminatePass:
        """In the flow's process, once per run: load the benchmarks, build and store the index."""
        loaded = load_benchmarks(self.benchmarks)
        for name, why in loaded.skipped.items():
            sys.stderr.write(f"sftforge: {self.stage}: benchmark {name} skipped: {why}\n")
        folder = None
        if loaded.items:
            index = BenchmarkIndex.build(
                loaded.items,
                self.ngram,
                self.min_item_words or self.ngram,
                self.exact_min_words,
                self.threshold,
            )
            folder = str(index.save(context.work_dir))
        checker = None
        if self.semantic is not None:
            checker = SemanticChecker(self.semantic, loaded.items, context.work_dir)
        return DecontaminatePass(self, kind, folder, loaded, checker)

    @classmethod
    def combine_summaries(cls, parts: list[dict[str, Any]]) -> dict[str, Any]:
        hits: Counter[str] = Counter()
        tests: Counter[str] = Counter()
        benchmarks: dict[str, Any] = {}
        skipped: dict[str, str] = {}
        for part in parts:
            hits.update(part.get("hits", {}))
            tests.update(part.get("tests", {}))
            benchmarks.update(part.get("benchmarks", {}))
            skipped.update(part.get("skipped", {}))
        semantic = combine_semantic([part["semantic"] for part in parts if "semantic" in part])
        return {
            **({"semantic": semantic} if semantic else {}),
            "hits": {name: hits.get(name, 0) for name in {**benchmarks, **hits}},
            "tests": dict(tests),
            "benchmarks": {n: {**b, "hits": hits.get(n, 0)} for n, b in benchmarks.items()},
            "skipped": {n: why for n, why in skipped.items() if n not in benchmarks},
        }
