"""The run report (a self-contained HTML page of plots, checked in real headless Chromium) and
the Prefect artifacts every flow run publishes."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

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
# Instruction records: one prompt and one answer each -- their lengths, and the datasets.
INSTRUCTION_PLOTS = [
    "plot-instruction-length",
    "plot-output-length",
    "plot-tokens",
    "plot-stages",
    "plot-rejects",
    "plot-languages",
    "plot-datasets",
]
AUGMENTED_PLOTS = ["plot-revisions", "plot-stop-reasons", "plot-cost"]

# Each plot: its id, whether it holds an SVG with drawn marks, and its size on the page; each
# group of sample records: its stage (and reason), whether it is open, and what its samples
# show (`children`: elements inside the text -- none when the record's markup is escaped).
PLOTS_JS = """
JSON.stringify({plots: [...document.querySelectorAll('figure.plot')].map(f => {
  const svg = f.querySelector('svg');
  const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
  return {id: f.id, marks: svg ? svg.querySelectorAll('path, use, rect').length : 0,
          width: box.width, height: box.height,
          title: f.querySelector('figcaption').textContent};
}), samples: [...document.querySelectorAll('#samples details.kept, #samples details.rejects')]
  .map(d => ({kind: d.className, stage: d.dataset.stage, reason: d.dataset.reason || null,
              open: d.open, visible: d.querySelector('pre') ?
                d.querySelector('pre').checkVisibility() : null,
              samples: [...d.querySelectorAll('.sample pre')].map(
                p => ({children: p.children.length, text: p.textContent}))}))})
"""


def check_page(report, tmp_path, expected: list[str], empty: tuple[str, ...] = ()) -> dict:
    """Load the page in Chromium; every expected plot is there and drawn (`empty` ones show
    their "nothing to plot" text instead of marks). Returns the plots and the samples."""
    import json

    from browser import render
    from PIL import Image

    result = render(CHROMIUM, report.as_uri(), PLOTS_JS)
    assert result.errors == []
    # Self-contained: the page itself is the only thing loaded.
    assert result.requests == [report.as_uri()]
    page = json.loads(result.value)
    plots = page["plots"]
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
    return page


def check_samples(samples: list[dict], stages: list[dict]) -> None:
    """Per stage, its first kept records and, per reject reason, three (or all, if fewer)
    rejected ones -- closed until opened, their text escaped (no element inside)."""
    kept = {s["stage"]: s for s in samples if s["kind"] == "kept"}
    rejects = {(s["stage"], s["reason"]): s for s in samples if s["kind"] == "rejects"}
    assert list(kept) == [stage["name"] for stage in stages]
    expected = {(st["name"], r): n for st in stages for r, n in st["rejected"].items()}
    assert set(rejects) == set(expected)
    for key, n in expected.items():
        assert len(rejects[key]["samples"]) == min(3, n), key
    for group in samples:
        assert group["open"] is False and group["visible"] in (False, None)  # collapsed
        assert all(sample["children"] == 0 for sample in group["samples"])


@needs_chromium
def test_report_renders_every_plot_in_chromium(demo_run, tmp_path):
    assert main(["report", str(demo_run.out)]) == 0
    report = demo_run.out / "report.html"
    page = report.read_text()
    assert "<script" not in page and not re.search(r"(src|href)=\"(https?:|//)", page)
    assert f"{demo_run.body['stages'][0]['in']} records in" in page
    shown = check_page(report, tmp_path, CONVERSATION_PLOTS)
    stages = demo_run.body["stages"]
    check_samples(shown["samples"], stages)
    # The ShareGPT pages' HTML, rejected at read, shows as the text it was, not as markup.
    read = [s for s in shown["samples"] if s["stage"] == "read" and s["kind"] == "rejects"]
    assert any("<div" in sample["text"] for group in read for sample in group["samples"])
    final = next(s for s in shown["samples"] if s["stage"] == stages[-1]["name"])
    assert final["samples"][0]["text"].startswith("[user]\n")  # turns with their roles


MARKUP = '<script>alert("x")</script><img src=x onerror="alert(1)">'


def instruction_run(out: Path) -> dict:
    """A small augmented run (read -> augment, ops_support.write_augmented_run) with a second
    dataset, and records the read stage rejected, one of them markup."""
    from ops_support import write_augmented_run

    from sftforge.tasks.base.shards import (
        read_records,
        records_table,
        reject_part,
        rejects_table,
        write_table_atomic,
    )

    write_augmented_run(out)
    for folder, kind in (
        ("read", "instruction"),
        ("augment", "augmented"),
        ("dataset", "augmented"),
    ):
        path = out / folder / "part-00000.parquet"
        records = read_records(path, kind)
        for i, record in enumerate(records):
            if i % 4 == 0:
                record["dataset"] = record["source"] = "alpaca"
        write_table_atomic(records_table(records, kind), path)
    reasons = ["invalid_record"] * 4 + ["wrong_type"]
    rejects = [
        {
            "id": f"bad-{i}",
            "source": "conala",
            "reason": reason,
            "detail": "instruction: not a string",
            "record": json.dumps({"instruction": MARKUP if i == 0 else None, "n": i}),
        }
        for i, reason in enumerate(reasons)
    ]
    write_table_atomic(rejects_table(rejects), reject_part(out, "read", 0))
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["stages"][0]["in"] += len(rejects)
    manifest["stages"][0]["rejected"] = {"invalid_record": 4, "wrong_type": 1}
    (out / "manifest.json").write_text(json.dumps(manifest))
    return manifest


@needs_chromium
def test_report_of_instruction_data_plots_lengths_datasets_revisions_and_cost(tmp_path):
    out = tmp_path / "out"
    manifest = instruction_run(out)
    assert main(["report", str(out)]) == 0
    report = out / "report.html"
    page = report.read_text()
    assert "gpt-3.5-turbo" in page
    # Not the conversation plots: no "messages per record" (always 2 here), no "Model mix".
    assert "messages per record" not in page and "Model mix" not in page
    shown = check_page(report, tmp_path, INSTRUCTION_PLOTS + AUGMENTED_PLOTS)
    titles = {p["id"]: p["title"] for p in shown["plots"]}
    assert titles["plot-instruction-length"].startswith("Instruction length")
    assert titles["plot-output-length"].startswith("Output length")
    assert titles["plot-datasets"].startswith("Dataset mix")
    mix = page.split('id="plot-datasets"')[1].split("</figure>")[0]
    assert "conala" in mix and "alpaca" in mix  # both datasets on the mix's axis
    check_samples(shown["samples"], manifest["stages"])
    texts = [s["text"] for group in shown["samples"] for s in group["samples"]]
    assert any('<script>alert(\\"x\\")</script>' in text for text in texts)  # as text
    assert "<script" not in page  # and not as markup
    kept = next(s for s in shown["samples"] if s["stage"] == "augment")
    assert kept["samples"][0]["text"].startswith("### instruction\n")


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
