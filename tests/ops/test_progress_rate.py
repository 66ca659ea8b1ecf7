"""The live rate and ETA come from the recent rate (a burst of shards does not make an ETA of
seconds); reused shards are named per stage and kept out of the rate; the summary of a rerun
says what each stage reused."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from sftforge.flows.progress import StageProgress, summary_table
from sftforge.flows.progress_rows import RecentRate
from sftforge.tasks.base.stats import StageStats


class Clock:
    """A clock the test moves: rates and ETAs without sleeping."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_eta_comes_from_the_recent_rate_not_from_a_burst():
    """Four workers finish a 1,000-record shard each within 30 ms, ten seconds in: 4,000 in
    10 s is 400 rec/s, and 15,000 left take about 38 s -- rich's own estimate (the old
    display's ETA) takes the burst for the rate and says well under a second."""
    from rich.progress import Progress

    meter, now = RecentRate(start=0.0), [0.0]
    old = Progress(get_time=lambda: now[0])
    task = old.add_task("filter", total=19_000)
    for i in range(4):
        now[0] = 10.0 + 0.01 * i
        meter.add(now[0], 1_000 * (i + 1))
        old.update(task, completed=1_000 * (i + 1))
    assert old.tasks[0].time_remaining is not None and old.tasks[0].time_remaining <= 1
    assert meter.rate(now[0]) == pytest.approx(4_000 / 10.03)
    assert meter.eta(15_000, now[0]) == pytest.approx(15_000 * 10.03 / 4_000)


def test_the_recent_rate_follows_a_change_of_pace_within_its_window():
    meter = RecentRate(start=0.0, window=30.0)
    for t in range(1, 61):  # 1,000 rec/s for a minute ...
        meter.add(float(t), 1_000 * t)
    for t in range(61, 121):  # ... then 100 rec/s
        meter.add(float(t), 60_000 + 100 * (t - 60))
    assert meter.rate(120.0) == pytest.approx(100.0)  # not the run's average (550)
    assert meter.eta(1_000, 120.0) == pytest.approx(10.0)
    assert meter.rate(150.0) == pytest.approx(3_000 / 60)  # a stall slows it down
    assert RecentRate(start=0.0).rate(0.5) is None  # too early to tell


def test_reused_shards_are_named_and_kept_out_of_the_rate(capsys):
    clock = Clock()
    with StageProgress(console=Console(file=io.StringIO()), plain_every=0, clock=clock) as bar:
        bar.start("filter_model", 20_000, shards=10)
        for _ in range(7):  # an earlier run's shards, found done at once
            bar.advance_shard(StageStats("fp", 2_000, 1_900, reused=True))
        clock.now += 10
        bar.advance_shard(StageStats("fp", 2_000, 1_900))
        clock.now += 10
        bar.advance_shard(StageStats("fp", 2_000, 1_900))
        bar.advance_shard(StageStats("fp", 2_000, 1_900))
        bar.start("read", None)
        bar.finish_shards([StageStats("fp", 100, 90, reused=True)] * 5)
    lines = capsys.readouterr().err.splitlines()
    # 2,000 processed in 10 s, 4,000 left: 200 rec/s, 20 s (not 16,000 / 10 s = 1,600 rec/s)
    assert "[filter_model] 16000/20000 records, 200 rec/s, ETA 20 s, 7/10 shards reused" in lines
    assert lines[-2] == "[filter_model] 20000 records in 20.0 s (300 rec/s), 7/10 shards reused"
    assert lines[-1] == "[read] 500 records in 0.0 s: 5/5 shards reused"


def test_the_summary_of_a_rerun_says_what_each_stage_reused():
    stage = {"in": 404, "out": 404, "rejected": {}, "seconds": 0.5}
    body = {
        "recipe": "demo",
        "output_dir": "out/demo",
        "shards": 5,
        "wall_seconds": 1.5,
        "stages": [
            {"name": "read", **stage, "reused_shards": 5},
            {"name": "dedup_exact", **stage, "reused_shards": 3},
        ],
    }
    screen = io.StringIO()
    Console(file=screen, width=100).print(summary_table(body))
    text = screen.getvalue()
    assert re.search(r"│ read .* 5/5 │", text) and re.search(r"│ dedup_exact .* 3/5 │", text)
    assert "(8/10 shards reused)" in text  # the caption, instead of a rate over the wall time
    body["stages"] = [{**s, "reused_shards": 0} for s in body["stages"]]
    screen = io.StringIO()
    Console(file=screen, width=100).print(summary_table(body))
    assert "reused" not in screen.getvalue()
