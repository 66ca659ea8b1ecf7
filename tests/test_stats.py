"""StageStats: a shard's marker round-trips, and a stage's total is its shards summed."""

from __future__ import annotations

from sftforge.tasks.base.stats import StageStats, stage_totals


def test_a_marker_round_trips_through_json():
    stats = StageStats.of_shard("fp", 6, 3, ["b", "a", "b"], 0.123456, {"cost": 0.5})
    assert stats.rejected == {"a": 1, "b": 2} and list(stats.rejected) == ["a", "b"]
    assert stats.seconds == 0.1235 and stats.n_rejected == 3 == stats.n_in - stats.n_out
    assert StageStats.from_json(stats.to_json()) == stats
    # Reuse is not stored: a marker read back says the shard was reused, nothing else differs.
    assert StageStats.from_json(stats.to_json(), reused=True).reused and not stats.reused
    assert "reused" not in stats.to_json()
    assert "summary" not in StageStats.of_shard("fp", 1, 1, [], 0.0).to_json()


def test_a_stage_total_sums_its_shards_and_combines_the_step_summary():
    shards = [
        StageStats.of_shard("f0", 4, 2, ["dup", "dup"], 1.0004, {"n": 1}),
        StageStats.of_shard("f1", 3, 2, ["short"], 2.0004, {"n": 2}),
    ]
    shards[1] = StageStats.from_json(shards[1].to_json(), reused=True)  # an earlier run's
    merged = StageStats.merge(shards)
    assert (merged.n_in, merged.n_out, merged.rejected) == (7, 4, {"dup": 2, "short": 1})
    assert merged.n_in == merged.n_out + merged.n_rejected
    entry = stage_totals("s", shards, "extra", lambda parts: {"n": sum(p["n"] for p in parts)})
    assert entry == {
        "name": "s",
        "in": 7,
        "out": 4,
        "rejected": {"dup": 2, "short": 1},
        "seconds": 3.001,
        "reused_shards": 1,
        "extra": {"n": 3},
    }
    assert "extra" not in stage_totals("s", shards)
