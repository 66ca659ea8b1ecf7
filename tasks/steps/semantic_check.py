"""Semantic decontamination: benchmark questions reworded, which n-gram tests cannot see.

LMSYS's llm-decontaminator showed that a rephrased test item passes 13-gram checks; it finds
such items by embedding similarity (each training text's most similar benchmark items), then
asks an LLM whether each close pair is the same question. The same here, on the embed step's
journaled client (tasks/steps/embed/calls.py): benchmark items are embedded once per run (and
journaled, so a rerun pays nothing), each shard's texts once; pairs at or above `threshold`
cosine similarity, best first, go to the judge, and its first "yes" rejects the record. With
`judge: null` the threshold alone decides (the manifest says which).
"""

from __future__ import annotations

import asyncio
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from sftforge.tasks.steps.augment.options import DEFAULT_PRICES, Price
from sftforge.tasks.steps.benchmark_index import Item
from sftforge.tasks.steps.embed.calls import api_session, embed_texts, run_calls
from sftforge.tasks.steps.embed.step import EmbeddingApi
from sftforge.tasks.steps.embed.vectors import unit_rows

JUDGE_PROMPT = (
    "Here are a question from an evaluation benchmark and a text from a training set.\n\n"
    "Benchmark question:\n{benchmark}\n---\nTraining text:\n{text}\n---\n"
    "Is the training text the benchmark question itself, possibly rephrased, translated or "
    "reformatted (the same task, with the same answer)? Answer with one word: yes or no."
)
COUNTS = ("texts", "pairs", "judged", "yes", "no", "unclear", "cost")


class JudgeOptions(BaseModel):
    """The LLM asked about each close pair (on the embedding's client: key, URL, limits)."""

    model_config = ConfigDict(extra="forbid")

    model: str = "gpt-4o-mini"
    # Placeholders: {benchmark} (the item) and {text} (the record's text).
    prompt: str = JUDGE_PROMPT
    max_tokens: int = Field(default=4, ge=1, le=512)
    prices: dict[str, Price] = Field(default_factory=lambda: dict(DEFAULT_PRICES))

    @field_validator("prompt")
    @classmethod
    def _placeholders(cls, value: str) -> str:
        try:
            names = {n for _, n, _, _ in string.Formatter().parse(value) if n is not None}
        except ValueError as exc:
            raise ValueError(f"bad prompt: {exc}") from None
        if names != {"benchmark", "text"}:
            raise ValueError(f"the prompt needs {{benchmark}} and {{text}}, and no other: {names}")
        return value


class SemanticOptions(BaseModel):
    """`decontaminate`'s `semantic:` options."""

    model_config = ConfigDict(extra="forbid")

    embedding: EmbeddingApi = EmbeddingApi()
    top_k: int = Field(default=1, ge=1, le=50)  # most similar items per text (LMSYS: 1)
    threshold: float = Field(default=0.8, gt=0.0, le=1.0)  # cosine similarity of a pair
    judge: JudgeOptions | None = JudgeOptions()

    @property
    def decided_by(self) -> str:
        if self.judge is None:
            return f"similarity >= {self.threshold} (no judge)"
        return f"judge {self.judge.model} on pairs with similarity >= {self.threshold}"


class SemanticCheckFailed(RuntimeError):
    """Texts that could not be embedded or judged: unchecked, they must not pass (the run
    fails, naming why; the journal keeps every call that succeeded for the rerun)."""


@dataclass(frozen=True)
class Finding:
    item: int  # index into the checker's items
    similarity: float
    answer: str | None  # the judge's word; None without a judge


def parse_answer(text: str) -> str:
    """yes, no or unclear, from the judge's first word."""
    word = text.strip().split(maxsplit=1)[0].strip(".,!:;\"'*").lower() if text.strip() else ""
    return {"yes": "yes", "true": "yes", "no": "no", "false": "no"}.get(word, "unclear")


def combine_semantic(parts: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The stage's semantic counts from its shards' (None: the test was off)."""
    if not parts:
        return None
    total: dict[str, Any] = {key: sum(part.get(key) or 0 for part in parts) for key in COUNTS}
    total["cost"] = round(total["cost"], 6)
    total["decided_by"] = parts[-1].get("decided_by")
    return total


class SemanticChecker:
    """In the flow's process only (it calls the API): never pickled to workers."""

    def __init__(self, options: SemanticOptions, items: list[Item], work_dir: Path) -> None:
        self.options = options
        self.items = items
        self.journal = work_dir / "semantic.sqlite"
        self._matrix: np.ndarray | None = None

    def _vectors(self, texts: list[str], what: str) -> tuple[np.ndarray, float]:
        done = embed_texts(texts, self.options.embedding, self.journal)
        if done.failed:
            errors = ", ".join(f"{e} ({n})" for e, n in done.errors.items())
            raise SemanticCheckFailed(f"{done.failed} {what} could not be embedded: {errors}")
        return unit_rows(np.vstack([done.vectors[i] for i in range(len(texts))])), done.cost

    def benchmark_matrix(self) -> np.ndarray:
        """Every item's unit vector, embedded once per run (journaled across runs)."""
        if self._matrix is None:
            self._matrix, _ = self._vectors([item.text for item in self.items], "benchmark items")
        return self._matrix

    def check(self, texts: list[str]) -> tuple[dict[int, Finding], dict[str, Any]]:
        """Findings by text index, and the counts of this call."""
        counts: dict[str, Any] = dict.fromkeys(COUNTS, 0)
        counts["texts"], counts["cost"] = len(texts), 0.0
        counts["decided_by"] = self.options.decided_by
        if not texts or not self.items:
            return {}, counts
        bench = self.benchmark_matrix()
        vectors, counts["cost"] = self._vectors(texts, "texts")
        similarity = vectors @ bench.T
        k = min(self.options.top_k, bench.shape[0])
        top = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
        pairs = [
            (t, int(i), float(similarity[t, i]))
            for t in range(len(texts))
            for i in top[t]
            if similarity[t, i] >= self.options.threshold
        ]
        counts["pairs"] = len(pairs)
        judge = self.options.judge
        if judge is None:
            found: dict[int, Finding] = {}
            for t, i, s in pairs:
                found.setdefault(t, Finding(i, s, None))
            return found, counts
        answers, cost = run_calls(self._judge(judge, texts, pairs))
        counts["cost"] += cost
        found = {}
        for (t, i, s), answer in zip(pairs, answers, strict=True):
            counts["judged"] += 1
            counts[answer] += 1
            if answer == "yes":
                found.setdefault(t, Finding(i, s, answer))
        return found, counts

    async def _judge(
        self, judge: JudgeOptions, texts: list[str], pairs: list[tuple[int, int, float]]
    ) -> tuple[list[str], float]:
        from sftforge.tasks.steps.augment.journal import call_key
        from sftforge.tasks.steps.augment.processor import CallFailed, CallSpec
        from sftforge.tasks.steps.augment.tokens import estimate_tokens

        price = judge.prices.get(judge.model)
        config = self.options.embedding
        async with api_session(config, self.journal, price) as session:

            async def ask(t: int, i: int) -> str:
                prompt = judge.prompt.format(benchmark=self.items[i].text, text=texts[t])
                request = {
                    "model": judge.model,
                    "messages": [{"role": "user", "content": prompt}],
                    "max_tokens": judge.max_tokens,
                    "temperature": 0,
                }
                tokens = estimate_tokens(prompt)
                spec = CallSpec(call_key(request, 0), request, tokens, judge.max_tokens)
                try:
                    return parse_answer((await session.processor.call(spec)).text)
                except CallFailed as exc:
                    raise SemanticCheckFailed(f"the judge's call failed: {exc}") from None

            answers = await asyncio.gather(*(ask(t, i) for t, i, _ in pairs))
            return list(answers), session.ledger.run_cost
