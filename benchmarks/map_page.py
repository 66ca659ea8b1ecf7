"""What `sftforge map` costs at scale: layout time, page size, and drawing in Chromium.

    python benchmarks/map_page.py                    # 100,000 points
    python benchmarks/map_page.py --points 20000 --skip-umap

The records are the demo generator's conversations (data/make_sharegpt_sample.py); their
vectors are hashed bag-of-words vectors of the first user turn (256 dimensions, as the tests'
local embeddings server makes them). Prints: UMAP + k-means seconds and peak RSS of this
process (with --skip-umap the points are placed at random and only k-means runs), the page's
size, and in headless Chromium (Debian's `chromium`) the page's load time, the median of 5
full redraws and of 5 clicks' nearest-point searches. Nothing passes or fails.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "ops"))

from browser import evaluate, open_page  # noqa: E402
from ops_support import chromium_path  # noqa: E402

from sftforge.tasks.publish.map_data import MapData, display_text  # noqa: E402
from sftforge.tasks.publish.map_layout import Layout, cluster, cluster_labels, lay_out  # noqa: E402
from sftforge.tasks.publish.map_page import write_map  # noqa: E402
from tests.conftest import load_generator  # noqa: E402
from tests.embedding_server import bag_of_words  # noqa: E402

TIMING_JS = """(() => {
  const m = window.sftforgeMap, draws = [], picks = [];
  for (let k = 0; k < 5; k++) {
    const t = performance.now(); m.draw(); draws.push(performance.now() - t);
  }
  for (let k = 0; k < 5; k++) {
    const [x, y] = m.screenOf(k * 997 % m.count), [ox, oy] = m.canvasOrigin();
    const t = performance.now();  // a click: the nearest point found, the panel filled
    const at = {clientX: ox + x, clientY: oy + y, bubbles: true};
    document.getElementById('canvas').dispatchEvent(new MouseEvent('mousedown', at));
    window.dispatchEvent(new MouseEvent('mouseup', at));
    picks.push(performance.now() - t);
  }
  const med = a => a.sort((p, q) => p - q)[2];
  const shown = document.getElementById('record-text').textContent.length;
  return {draw_ms: med(draws), click_ms: med(picks), shown}; })()"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--clusters", type=int, default=12)
    parser.add_argument("--skip-umap", action="store_true")
    args = parser.parse_args()
    rows = load_generator().generate(args.points, seed=3, flawed_share=0.0)
    records = [
        {"id": f"p{i}", "messages": [{"role": "user" if t["from"] == "human" else "assistant",
                                      "content": str(t["value"])} for t in r["conversations"]]}
        for i, r in enumerate(rows)
    ]  # fmt: skip
    texts = [display_text(r, 600) for r in records]
    firsts = [r["messages"][0]["content"] if r["messages"] else "" for r in records]
    vectors = np.stack([bag_of_words(t, 256) for t in firsts])
    began = time.perf_counter()
    if args.skip_umap:
        clusters = cluster(vectors, args.clusters, 0)
        xy = np.random.default_rng(0).random((len(records), 2), dtype=np.float32)
        layout = Layout(xy, clusters, cluster_labels(firsts, clusters))
    else:
        layout = lay_out(vectors, firsts, args.clusters, 0)
    seconds = time.perf_counter() - began
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    data = MapData([r["id"] for r in records], vectors, texts, {"source": ["bench"] * len(texts)})
    out = Path(tempfile.mkdtemp(prefix="sftforge-map-bench-"))
    page = write_map(out, data, layout, "bench")
    what = "k-means only (random layout)" if args.skip_umap else "UMAP + k-means"
    print(f"{len(records):,} points: {what} {seconds:.1f} s, peak RSS {rss:,.0f} MB")
    print(f"page: {page.stat().st_size / 1e6:.1f} MB ({page})")
    chromium = chromium_path()
    if chromium is None:
        print("no chromium: browser figures skipped")
        return
    loads, timings = [], []
    for _ in range(3):
        began = time.perf_counter()
        with open_page(chromium, page.as_uri()) as session:
            loads.append(time.perf_counter() - began)
            timings.append(evaluate(session, TIMING_JS))
    draw = statistics.median(t["draw_ms"] for t in timings)
    click = statistics.median(t["click_ms"] for t in timings)
    print(
        f"chromium: page loaded in {statistics.median(loads):.1f} s (median of 3, with the "
        f"browser's start); full redraw {draw:.0f} ms, click to panel {click:.0f} ms "
        f"(medians); panel showed {timings[-1]['shown']} characters"
    )


if __name__ == "__main__":
    main()
