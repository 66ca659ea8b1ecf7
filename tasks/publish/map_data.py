"""What `sftforge map` draws: every record an `embed` stage gave a vector, with its text and
the columns a user colours by (source, model or dataset, and its fate: kept, or the later
stage that rejected it and why)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from sftforge.tasks.steps.embed.step import record_text
from sftforge.tasks.steps.embed.vectors import VECTORS_DIR, read_vectors

KEPT = "kept"


class NoVectors(ValueError):
    """OUT holds no vectors to draw (the message says what to add to the recipe)."""


@dataclass
class MapData:
    ids: list[str]
    vectors: np.ndarray  # n x dimensions, float32
    texts: list[str]  # what the side panel shows (cut to the page's budget per record)
    columns: dict[str, list[str]] = field(default_factory=dict)  # name -> value per record
    # What the cluster labels are made of: the prompts (user turns; instruction + input),
    # which the vectors usually embed, not the answers' markup. Empty: `texts`.
    label_texts: list[str] = field(default_factory=list)


def embed_stages(out: Path) -> list[str]:
    folder = out / VECTORS_DIR
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def choose_stage(out: Path, stage: str | None) -> str:
    stages = embed_stages(out)
    if stage is not None:
        if stage not in stages:
            raise NoVectors(f"{out}: no vectors of stage {stage!r} (found: {stages or 'none'})")
        return stage
    if not stages:
        raise NoVectors(
            f"{out}: no vectors; add an `embed` step to the recipe (see the README) and rerun"
        )
    if len(stages) > 1:
        raise NoVectors(f"{out}: vectors of several stages {stages}; choose one with --stage")
    return stages[0]


def display_text(row: dict, chars: int) -> str:
    """A record as the panel shows it: each turn under its role, or instruction/input/output."""
    if row.get("messages") is not None:
        parts = [f"[{m['role']}]\n{m['content']}" for m in row["messages"]]
    else:
        names = ("instruction", "input", "output")
        parts = [f"[{name}]\n{row[name]}" for name in names if row.get(name)]
    text = "\n\n".join(parts)
    return text if len(text) <= chars else text[:chars] + " …"


def fates(out: Path) -> dict[str, str]:
    """id -> "<stage>: <reason>" for every record a stage rejected."""
    found: dict[str, str] = {}
    for part in sorted((out / "rejects").glob("*/part-*.parquet")):
        table = pq.read_table(part, columns=["id", "reason"])
        stage = part.parent.name
        ids, reasons = table.column("id").to_pylist(), table.column("reason").to_pylist()
        for rid, reason in zip(ids, reasons, strict=True):
            if rid is not None:
                found.setdefault(rid, f"{stage}: {reason}")
    return found


def load_map_data(out: Path, stage: str | None = None, text_chars: int = 600) -> MapData:
    stage = choose_stage(out, stage)
    ids, vectors = read_vectors(out, stage)
    if not ids:
        raise NoVectors(f"{out}: stage {stage!r} wrote no vectors")
    wanted = {rid: i for i, rid in enumerate(ids)}
    texts = [""] * len(ids)
    prompts = [""] * len(ids)
    columns: dict[str, list[str]] = {"source": [""] * len(ids)}
    seen: set[str] = set()
    for part in sorted((out / stage).glob("part-*.parquet")):
        for row in pq.read_table(part).to_pylist():
            i = wanted.get(row["id"])
            if i is None:
                continue
            seen.add(row["id"])
            texts[i] = display_text(row, text_chars)
            prompts[i] = record_text(row, "user")
            for name in ("source", "model", "dataset"):
                if name in row:
                    columns.setdefault(name, [""] * len(ids))[i] = str(row[name] or "")
            meta = json.loads(row.get("meta") or "{}") if isinstance(row.get("meta"), str) else {}
            if isinstance(meta, dict) and meta.get("language_verdict"):  # filter_language's
                columns.setdefault("language", [""] * len(ids))[i] = str(meta["language_verdict"])
    rejected = fates(out)
    columns["fate"] = [rejected.get(rid, KEPT) for rid in ids]
    data = MapData(ids, vectors, texts, columns, prompts)
    # Vectors of records the stage no longer holds (a part left by a run with more shards)
    # are not drawn.
    return _only(data, [i for i, rid in enumerate(ids) if rid in seen])


def _only(data: MapData, keep: list[int]) -> MapData:
    if len(keep) == len(data.ids):
        return data
    return MapData(
        [data.ids[i] for i in keep],
        data.vectors[keep],
        [data.texts[i] for i in keep],
        {name: [values[i] for i in keep] for name, values in data.columns.items()},
        [data.label_texts[i] for i in keep] if data.label_texts else [],
    )
