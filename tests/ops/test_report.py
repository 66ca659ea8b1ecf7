"""The run report (a self-contained HTML page of plots, checked in real headless Chromium) and
the Prefect artifacts every flow run publishes."""

from __future__ import annotations

import io
import re

import pytest
from ops_support import chromium_path

from sftforge.flows.cli import main
from sftforge.tasks.publish.artifacts import artifact_key

CHROMIUM = chromium_path()
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium package")

CONVERSATION_PLOTS = [
    "plot-turns",
    "plot-tokens",
    "plot-stages",
    "plot-rejects",
    "plot-languages",
    "plot-models",
]
AUGMENTED_PLOTS = ["plot-revisions", "plot-stop-reasons", "plot-cost"]

# Each plot: its id, whether it holds an SVG with drawn marks, and its size on the page.
PLOTS_JS = """
JSON.stringify([...document.querySelectorAll('figure.plot')].map(f => {
  const svg = f.querySelector('svg');
  const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
  return {id: f.id, marks: svg ? svg.querySelectorAll('path, use, rect').length : 0,
          width: box.width, height: box.height,
          title: f.querySelector('figcaption').textContent};
}))
"""


def check_page(report, tmp_path, expected: list[str], empty: tuple[str, ...] = ()) -> list[dict]:
    """Load the page in Chromium; every expected plot is there and drawn (`empty` ones show
    their "nothing to plot" text instead of marks)."""
    import json

    from browser import render
    from PIL import Image

    result = render(CHROMIUM, report.as_uri(), PLOTS_JS)
    assert result.errors == []
    # Self-contained: the page itself is the only thing loaded.
    assert result.requests == [report.as_uri()]
    plots = json.loads(result.value)
    assert [p["id"] for p in plots] == expected
    for plot in plots:
        assert plot["width"] > 300 and plot["height"] > 100, plot
        assert plot["marks"] > (2 if plot["id"] in empty else 10), plot
    shot = tmp_path / "report.png"
    shot.write_bytes(result.screenshot)
    image = Image.open(io.BytesIO(result.screenshot)).convert("L")
    assert image.size[0] == 1280 and image.size[1] > 300 * len(expected)
    low, high = image.getextrema()
    assert high - low > 100  # not a blank page
    return plots


@needs_chromium
def test_report_renders_every_plot_in_chromium(demo_run, tmp_path):
    assert main(["report", str(demo_run.out)]) == 0
    report = demo_run.out / "report.html"
    page = report.read_text()
    assert "<script" not in page and not re.search(r"(src|href)=\"(https?:|//)", page)
    assert f"{demo_run.body['stages'][0]['in']} records in" in page
    check_page(report, tmp_path, CONVERSATION_PLOTS)


@needs_chromium
def test_report_of_augmented_data_adds_revisions_stops_and_cost(augmented_run, tmp_path):
    assert main(["report", str(augmented_run)]) == 0
    report = augmented_run / "report.html"
    page = report.read_text()
    assert "gpt-3.5-turbo" in page
    # Nothing was rejected in this run: its rejects plot says so.
    plots = check_page(
        report, tmp_path, CONVERSATION_PLOTS + AUGMENTED_PLOTS, empty=("plot-rejects",)
    )
    assert "no records were rejected" in page
    assert "dataset" in plots[5]["title"]  # instruction records: datasets stand in for models


def test_report_needs_a_finished_run(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "no manifest.json" in capsys.readouterr().err


@pytest.mark.usefixtures("prefect_harness")
def test_flow_run_publishes_stage_table_and_summary(demo_run):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[demo_run.flow_run_id])
            )
        )
    by_key = {a.key: a for a in artifacts}
    assert set(by_key) == {artifact_key("demo", "stages"), artifact_key("demo", "summary")}
    table = by_key["sftforge-demo-stages"]
    assert table.type == "table"
    import json

    rows = json.loads(table.data) if isinstance(table.data, str) else table.data
    assert [r["stage"] for r in rows] == [s["name"] for s in demo_run.body["stages"]]
    for row, stage in zip(rows, demo_run.body["stages"], strict=True):
        assert (row["in"], row["out"], row["seconds"]) == (
            stage["in"],
            stage["out"],
            stage["seconds"],
        )
        assert row["rejected"] == sum(stage["rejected"].values())
        for reason, n in stage["rejected"].items():
            assert f"{reason}: {n}" in row["rejected_by_reason"]
        assert row["records_per_s"] is None or row["records_per_s"] > 0
    summary = by_key["sftforge-demo-summary"]
    assert summary.type == "markdown"
    links = re.findall(r"\[([^\]]+)\]\((file://[^)]+)\)", summary.data)
    assert {label for label, _ in links} >= {"parquet", "manifest", "rejects"}
    assert all(target.startswith(demo_run.out.resolve().as_uri()) for _, target in links)
    assert artifact_key("Selfee_v1.2", "x") == "sftforge-selfee-v1-2-x"
