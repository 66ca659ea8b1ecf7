"""`sftforge map`: a run's embed vectors laid out on a self-contained page, checked in real
headless Chromium (a real click on a point shows that record), and the layout's parts as
plain functions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from browser import PageResult, click, evaluate, open_page, problems
from ops_support import chromium_path

from sftforge.tasks.publish.map_data import display_text
from sftforge.tasks.publish.map_layout import cluster_labels, lay_out, project
from tests.conftest import REPO, SHARED_DATA
from tests.embedding_server import EmbeddingServer, bag_of_words

SFTFORGE = str(Path(sys.executable).parent / "sftforge")
CHROMIUM = chromium_path()
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium package")
HOSTILE = "</script><script>window.pwned=1</script><img src=x onerror='window.pwned=2'>"


def sftforge(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SFTFORGE, *args], env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def mapped(tmp_path_factory) -> dict[str, Any]:
    """The shipped ShareGPT sample plus one hostile record -> html_to_markdown -> embed ->
    filter_model (so that some embedded records are rejected later), then `sftforge map`."""
    root = tmp_path_factory.mktemp("map")
    hostile = {"id": "hostile", "model": "Model: GPT-4", "conversations": [
        {"from": "human", "value": f"Explain this markup: {HOSTILE}"},
        {"from": "gpt", "value": "It is a script tag."}]}  # fmt: skip
    extra = root / "hostile.jsonl"
    extra.write_text(json.dumps(hostile) + "\n")
    sources = [
        {
            "name": "sharegpt",
            "format": "sharegpt",
            "path": str(REPO / "data/sharegpt_sample.jsonl"),
        },
        {"name": "extra", "format": "sharegpt", "path": str(extra)},
    ]
    steps = [
        {"step": "html_to_markdown"},
        {"step": "embed", "dimensions": 64, "batch_size": 50, "ramp_seconds": 0},
        {"step": "filter_model", "models": ["Model: GPT-4", "gpt4"]},
    ]
    recipe = {"name": "mapped", "output_dir": str(root / "out"), "sources": sources,
              "steps": steps, "outputs": [{"format": "parquet"}],
              "runner": {"shard_size": 100, "workers": 1}}  # fmt: skip
    path = root / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    with EmbeddingServer() as server:
        env = {**os.environ, "OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "sk-0123456789"}
        env.update(PREFECT_HOME=str(root / "prefect"), PREFECT_SERVER_ANALYTICS_ENABLED="false")
        env.pop("PREFECT_API_URL", None)
        run = sftforge("run", str(path), "--quiet", env=env)
        assert run.returncode == 0, run.stderr
    made = sftforge("map", str(root / "out"), "--clusters", "5", env=env)
    assert made.returncode == 0, made.stderr
    out = root / "out"
    records = [
        row for part in sorted((out / "embed").glob("part-*.parquet"))
        for row in pq.read_table(part).to_pylist()
    ]  # fmt: skip
    return {"out": out, "page": Path(made.stdout.strip()), "records": records, "env": env}


def test_map_writes_one_page_with_every_embedded_record(mapped) -> None:
    page = mapped["page"]
    assert page == mapped["out"] / "map.html"
    text = page.read_text(encoding="utf-8")
    data = json.loads(text.split('type="application/json">', 1)[1].split("</script>", 1)[0])
    assert sorted(data["ids"]) == sorted(r["id"] for r in mapped["records"])
    manifest = json.loads((mapped["out"] / "manifest.json").read_text())
    (embed,) = [stage for stage in manifest["stages"] if stage["name"] == "embed"]
    assert len(data["ids"]) == embed["in"] == embed["embed"]["embedded"] > 300
    assert "hostile" in data["ids"]
    fates = data["columns"]["fate"]["names"]
    assert "kept" in fates and any(f.startswith("filter_model: ") for f in fates)
    assert len(data["columns"]["cluster"]["names"]) == 5


def test_the_page_loads_nothing_from_anywhere(mapped) -> None:
    text = mapped["page"].read_text(encoding="utf-8")
    markup = text.split('<script id="map-data"', 1)[0] + text.rsplit("</script>", 2)[-2]
    for needle in ("src=", "href=", "url(", "@import", "http://", "https://"):
        assert needle not in markup, needle


@needs_chromium
def test_clicking_a_point_in_chromium_shows_that_records_text(mapped) -> None:
    by_id = {r["id"]: r for r in mapped["records"]}
    # The point farthest from its nearest neighbour on screen: a click hits it alone.
    pick = """(() => { const m = window.sftforgeMap, pts = m.ids.map((_, i) => m.screenOf(i));
      let best = 0, far = -1;
      pts.forEach(([x, y], i) => { let near = Infinity;
        pts.forEach(([u, v], j) => { if (j !== i) near = Math.min(near, (x-u)**2 + (y-v)**2); });
        if (near > far) { far = near; best = i; } });
      const [ox, oy] = m.canvasOrigin();
      return {index: best, id: m.ids[best], x: ox + pts[best][0], y: oy + pts[best][1],
              count: m.count, pwned: window.pwned || 0}; })()"""
    read = """({meta: document.getElementById('record-meta').textContent,
               text: document.getElementById('record-text').textContent,
               markup: document.getElementById('record-text').children.length})"""
    result = PageResult()
    with open_page(CHROMIUM, mapped["page"].as_uri()) as session:
        target = evaluate(session, pick)
        before = evaluate(session, read)
        click(session, target["x"], target["y"])
        after = evaluate(session, read)
        hostile = evaluate(session, "window.sftforgeMap.ids.indexOf('hostile')")
        evaluate(session, f"window.sftforgeMap.show({hostile})")
        shown = evaluate(session, read)
        problems(session, result)
    assert target["count"] == len(by_id) and target["pwned"] == 0
    assert before["text"] == ""
    assert after["meta"].startswith(target["id"] + " — cluster: ")
    assert after["text"] == display_text(by_id[target["id"]], 600) and after["markup"] == 0
    assert HOSTILE in shown["text"] and shown["markup"] == 0  # text, never markup
    assert result.errors == []
    assert all(url.startswith("file://") for url in result.requests), result.requests


def test_the_run_report_links_the_map(mapped) -> None:
    report = sftforge("report", str(mapped["out"]), env=mapped["env"])
    assert report.returncode == 0, report.stderr
    page = (mapped["out"] / "report.html").read_text(encoding="utf-8")
    assert '<p class="sub" id="map-link"><a href="map.html">Dataset map</a>' in page


def test_map_without_vectors_is_one_line_and_exit_2(mapped, tmp_path) -> None:
    (tmp_path / "out").mkdir()
    result = sftforge("map", str(tmp_path / "out"), env=mapped["env"])
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "add an `embed` step" in result.stderr
    missing = sftforge("map", str(mapped["out"]), "--stage", "nope", env=mapped["env"])
    assert missing.returncode == 2 and "no vectors of stage 'nope'" in missing.stderr


# ------------------------------------------------------------------------ the layout's parts


def test_the_layout_is_seeded_and_puts_similar_texts_together() -> None:
    topics = ["python list sort order", "bread flour yeast oven", "planet orbit star light"]
    texts = [f"{topics[i % 3]} note {i}" for i in range(60)]
    vectors = np.stack([bag_of_words(t, 64) for t in texts])
    first, second = lay_out(vectors, texts, 3, seed=7), lay_out(vectors, texts, 3, seed=7)
    assert np.array_equal(first.xy, second.xy) and np.array_equal(first.clusters, second.clusters)
    assert first.xy.min() >= 0 and first.xy.max() <= 1
    for topic in range(3):  # each topic is one cluster, labelled by its own words
        members = set(first.clusters[topic::3].tolist())
        assert len(members) == 1
        assert set(first.labels[members.pop()].split(" · ")) <= set(topics[topic].split())


def test_tiny_maps_need_no_umap_and_labels_skip_common_words() -> None:
    assert project(np.ones((3, 8), np.float32), seed=0).shape == (3, 2)
    assert project(np.ones((0, 8), np.float32), seed=0).shape == (0, 2)
    labels = cluster_labels(["the cat and the hat", "the dog and the log"], np.array([0, 1]))
    assert "the" not in labels[0] and "cat" in labels[0] and "dog" in labels[1]


@pytest.mark.skipif(not (SHARED_DATA / "alpaca_seed_tasks.jsonl").is_file(), reason="no ../shared")
def test_alpacas_seed_tasks_cluster_into_labelled_groups() -> None:
    """Real instructions (Alpaca's 175 seed tasks): every cluster label's words come from its
    members' text, and no cluster holds most of the tasks."""
    rows = [json.loads(line) for line in (SHARED_DATA / "alpaca_seed_tasks.jsonl").open()]
    texts = [r["instruction"] for r in rows]
    vectors = np.stack([bag_of_words(t, 256) for t in texts])
    layout = lay_out(vectors, texts, 8, seed=0)
    assert len(rows) == 175 and len(set(layout.clusters.tolist())) == 8
    assert np.bincount(layout.clusters).max() < 0.5 * len(rows)
    for c, label in enumerate(layout.labels):
        words = " ".join(t.lower() for t, k in zip(texts, layout.clusters, strict=True) if k == c)
        assert all(w in words for w in label.split(" · "))


def test_map_data_columns_come_from_the_records_and_their_fates(tmp_path) -> None:
    from sftforge.tasks.base.shards import records_table, write_table_atomic
    from sftforge.tasks.publish.map_data import load_map_data
    from sftforge.tasks.steps.embed.vectors import vectors_part, write_vectors

    rows = [
        {"id": f"r{i}", "source": "dump", "model": m, "meta": {"language_verdict": lang},
         "messages": [{"role": "user", "content": f"question {i}"},
                      {"role": "assistant", "content": "answer"}]}
        for i, (m, lang) in enumerate([("gpt4", "en"), ("gpt3", "de"), ("gpt4", "en")])
    ]  # fmt: skip
    part = "part-00000.parquet"
    write_table_atomic(records_table(rows, "conversation"), tmp_path / "embed" / part)
    vectors = np.eye(3, 4, dtype=np.float32)
    write_vectors(vectors_part(tmp_path, "embed", 0), ["r0", "r1", "r2"], vectors)
    rejected = {"id": "r1", "source": "dump", "reason": "model_not_allowed", "detail": "gpt3",
                "record": "{}"}  # fmt: skip
    rejects = pa.Table.from_pylist([rejected])
    write_table_atomic(rejects, tmp_path / "rejects" / "filter_model" / part)
    stale = vectors_part(tmp_path, "embed", 1)  # left by an earlier run with more shards
    write_vectors(stale, ["gone"], np.ones((1, 4), dtype=np.float32))
    data = load_map_data(tmp_path, text_chars=12)
    assert data.ids == ["r0", "r1", "r2"] and data.vectors.shape == (3, 4)
    assert data.columns["model"] == ["gpt4", "gpt3", "gpt4"]
    assert data.columns["language"] == ["en", "de", "en"]
    assert data.columns["fate"] == ["kept", "filter_model: model_not_allowed", "kept"]
    assert data.texts[0] == "[user]\nquest …"  # 12 characters, then the mark
    assert data.label_texts == ["question 0", "question 1", "question 2"]  # the prompts
