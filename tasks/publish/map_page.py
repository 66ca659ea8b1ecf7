"""OUT/map.html: one self-contained page (no network at view time) of a run's dataset map.

The points are drawn on a canvas (100,000 points redraw in milliseconds, where one SVG node
per point would not), coloured by k-means cluster or by any column, with a search box, wheel
zoom and drag pan; clicking a point shows its record in the side panel (as text: record
content never becomes markup). The data travels in one JSON script block whose `</` are
escaped, so no record can close it.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from sftforge.tasks.base.atomic import write_bytes_atomic
from sftforge.tasks.publish.map_data import MapData
from sftforge.tasks.publish.map_layout import Layout

MAP = "map.html"


def categorical(values: list[str]) -> dict[str, Any]:
    """A column as category names (most frequent first) and one code per record."""
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    names = sorted(counts, key=lambda v: (-counts[v], v))
    code = {name: i for i, name in enumerate(names)}
    return {
        "names": names,
        "counts": [counts[n] for n in names],
        "codes": [code[v] for v in values],
    }


def page_data(data: MapData, layout: Layout, title: str) -> dict[str, Any]:
    clusters = [f"{c}: {layout.labels[c]}" for c in layout.clusters.tolist()]
    columns = {"cluster": categorical(clusters)}
    for name, values in data.columns.items():
        if len(set(values)) > 1 or name == "fate":
            columns[name] = categorical(values)
    return {
        "title": title,
        "ids": data.ids,
        "x": [round(float(v), 5) for v in layout.xy[:, 0]],
        "y": [round(float(v), 5) for v in layout.xy[:, 1]],
        "texts": data.texts,
        "columns": columns,
    }


def render_map(data: MapData, layout: Layout, title: str) -> str:
    blob = json.dumps(page_data(data, layout, title), ensure_ascii=False, separators=(",", ":"))
    blob = blob.replace("</", "<\\/").replace("<!--", "<\\!--")
    return (
        _TEMPLATE.replace("__TITLE__", html.escape(title))
        .replace("__COUNT__", f"{len(data.ids):,}")
        .replace("__DATA__", blob)
    )


def write_map(out: Path, data: MapData, layout: Layout, title: str) -> Path:
    path = out / MAP
    write_bytes_atomic(path, render_map(data, layout, title).encode("utf-8"))
    return path


_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy"
 content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__ — dataset map</title>
<style>
body{margin:0;font:14px system-ui,sans-serif;display:flex;height:100vh;color:#222}
#left{flex:1;display:flex;flex-direction:column;min-width:0}
#bar{padding:6px 8px;border-bottom:1px solid #ddd;display:flex;gap:10px;align-items:center}
#bar input{flex:1;max-width:320px}
#plot{flex:1;position:relative}
canvas{position:absolute;inset:0;width:100%;height:100%;cursor:crosshair}
#side{width:38%;max-width:560px;border-left:1px solid #ddd;display:flex;flex-direction:column}
#legend{max-height:35%;overflow:auto;padding:6px 8px;border-bottom:1px solid #ddd}
#legend div{white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
#legend span{display:inline-block;width:10px;height:10px;margin-right:6px}
#panel{flex:1;overflow:auto;padding:8px}
#record-meta{color:#555;margin-bottom:6px}
#record-text{white-space:pre-wrap;font-family:ui-monospace,monospace;font-size:12.5px}
</style></head>
<body>
<div id="left">
 <div id="bar"><b>__TITLE__</b> <span>__COUNT__ records</span>
  <label>colour by <select id="color-by"></select></label>
  <input id="search" type="search" placeholder="search record text">
  <span id="matches"></span></div>
 <div id="plot"><canvas id="canvas"></canvas></div>
</div>
<div id="side"><div id="legend"></div>
 <div id="panel"><div id="record-meta">Click a point to see its record.</div>
 <div id="record-text"></div></div></div>
<script id="map-data" type="application/json">__DATA__</script>
<script>
"use strict";
const D = JSON.parse(document.getElementById("map-data").textContent);
const N = D.ids.length, canvas = document.getElementById("canvas"), ctx = canvas.getContext("2d");
const select = document.getElementById("color-by"), search = document.getElementById("search");
const lower = D.texts.map(t => t.toLowerCase());
let view = {scale: 1, ox: 0, oy: 0}, column = "cluster", match = null, chosen = -1;
const PALETTE = ["#1f77b4","#ff7f0e","#2ca02c","#d62728","#9467bd","#8c564b","#e377c2",
  "#7f7f7f","#bcbd22","#17becf","#aec7e8","#ffbb78","#98df8a","#ff9896","#c5b0d5",
  "#c49c94","#f7b6d2","#dbdb8d","#9edae5","#393b79"];
const colour = i => i < PALETTE.length ? PALETTE[i] : `hsl(${(i * 137.5) % 360},55%,55%)`;
for (const name of Object.keys(D.columns)) {
  const o = document.createElement("option"); o.value = o.textContent = name; select.append(o);
}
function size() {
  const r = canvas.getBoundingClientRect(), d = window.devicePixelRatio || 1;
  canvas.width = Math.max(1, r.width * d); canvas.height = Math.max(1, r.height * d);
  ctx.setTransform(d, 0, 0, d, 0, 0); draw();
}
function frame() {  // the plot area in CSS pixels, measured once per draw or click
  const r = canvas.getBoundingClientRect(), pad = 12;
  return {w: r.width, h: r.height, iw: r.width - 2 * pad, ih: r.height - 2 * pad, pad};
}
function at(i, f) {  // a point's position inside the canvas, in CSS pixels
  return [f.pad + D.x[i] * f.iw * view.scale + view.ox,
          f.pad + (1 - D.y[i]) * f.ih * view.scale + view.oy];
}
const screenOf = i => at(i, frame());
function dot(i, f, codes, alpha) {
  const [x, y] = at(i, f);
  ctx.globalAlpha = alpha; ctx.fillStyle = colour(codes[i]); ctx.fillRect(x - 1.5, y - 1.5, 3, 3);
}
function draw() {
  const f = frame(), codes = D.columns[column].codes;
  ctx.clearRect(0, 0, f.w, f.h);
  if (match === null) {
    for (let i = 0; i < N; i++) dot(i, f, codes, 0.85);
  } else {  // the search's matches drawn over the faded rest
    for (let i = 0; i < N; i++) if (!match[i]) dot(i, f, codes, 0.08);
    for (let i = 0; i < N; i++) if (match[i]) dot(i, f, codes, 0.95);
  }
  ctx.globalAlpha = 1;
  if (chosen >= 0) {
    const [x, y] = at(chosen, f);
    ctx.strokeStyle = "#000"; ctx.lineWidth = 2; ctx.strokeRect(x - 5, y - 5, 10, 10);
  }
}
function legend() {
  const col = D.columns[column], box = document.getElementById("legend");
  box.replaceChildren();
  col.names.slice(0, 60).forEach((name, i) => {
    const row = document.createElement("div"), sw = document.createElement("span");
    sw.style.background = colour(i); row.append(sw, `${name} (${col.counts[i]})`);
    row.title = name; box.append(row);
  });
  if (col.names.length > 60) box.append(`… ${col.names.length - 60} more`);
}
function show(i) {
  chosen = i;
  const meta = Object.entries(D.columns).map(([c, col]) => `${c}: ${col.names[col.codes[i]]}`);
  document.getElementById("record-meta").textContent = `${D.ids[i]} — ${meta.join(" · ")}`;
  document.getElementById("record-text").textContent = D.texts[i];
  draw();
}
function nearest(cx, cy, radius) {
  const f = frame();
  let best = -1, bestD = radius * radius;
  for (let i = 0; i < N; i++) {
    if (match !== null && !match[i]) continue;
    const [x, y] = at(i, f), d = (x - cx) ** 2 + (y - cy) ** 2;
    if (d <= bestD) { best = i; bestD = d; }
  }
  return best;
}
let drag = null;
canvas.addEventListener("mousedown", e => { drag = {x: e.clientX, y: e.clientY, moved: false}; });
window.addEventListener("mousemove", e => {
  if (!drag) return;
  const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
  if (Math.abs(dx) + Math.abs(dy) > 2) drag.moved = true;
  if (drag.moved) { view.ox += dx; view.oy += dy; drag.x = e.clientX; drag.y = e.clientY; draw(); }
});
window.addEventListener("mouseup", e => {
  if (drag && !drag.moved) {
    const r = canvas.getBoundingClientRect(), i = nearest(e.clientX - r.left, e.clientY - r.top, 8);
    if (i >= 0) show(i);
  }
  drag = null;
});
canvas.addEventListener("wheel", e => {
  e.preventDefault();
  const r = canvas.getBoundingClientRect(), f = e.deltaY < 0 ? 1.2 : 1 / 1.2;
  const mx = e.clientX - r.left, my = e.clientY - r.top;
  view.ox = mx - (mx - view.ox) * f; view.oy = my - (my - view.oy) * f; view.scale *= f; draw();
}, {passive: false});
select.addEventListener("change", () => { column = select.value; legend(); draw(); });
search.addEventListener("input", () => {
  const q = search.value.trim().toLowerCase();
  match = q ? lower.map(t => t.includes(q)) : null;
  document.getElementById("matches").textContent =
    q ? `${match.filter(Boolean).length} match` : "";
  draw();
});
window.addEventListener("resize", size);
window.sftforgeMap = {screenOf, show, draw, count: N, ids: D.ids,
  canvasOrigin: () => { const r = canvas.getBoundingClientRect(); return [r.left, r.top]; }};
legend(); size();
</script></body></html>
"""
