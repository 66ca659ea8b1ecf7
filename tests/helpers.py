"""Small builders shared by the unit tests."""

from __future__ import annotations

from typing import Any


def conv(
    *turns: tuple[str, str], id: str = "c1", model: str | None = "Model: GPT-4"
) -> dict[str, Any]:
    return {
        "id": id,
        "source": "test",
        "model": model,
        "messages": [{"role": r, "content": c} for r, c in turns],
        "meta": {},
    }


def run_filter_pass(
    step: Any, shards: list[list[dict[str, Any]]], kind: str, seed: int = 0
) -> list[Any]:
    """A filter pass step as the engine runs it, on records in memory: scan every shard,
    decide in input order, finish, judge. Per record, in order: the record or its Rejected."""
    from sftforge.tasks.base.shards import records_table
    from sftforge.tasks.base.step_protocol import StepContext

    decision = step.make_pass(StepContext(seed=seed), kind)
    tables = [records_table(records, kind) for records in shards]
    decided = [
        decision.decide(i, decision.scan(table), list(range(table.num_rows)))
        for i, table in enumerate(tables)
    ]
    ids = [[r["id"] for r in records] for records in shards]
    verdicts = decision.finish(decided, lambda shard: ids[shard])
    results: list[Any] = []
    for table, records, verdict in zip(tables, shards, verdicts, strict=True):
        rejected = decision.judge(table, verdict)
        results.extend(rejected.get(row, record) for row, record in enumerate(records))
    return results
