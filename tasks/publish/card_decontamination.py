"""The dataset card's "Decontamination" section: which benchmarks the data was checked
against, how many records each took out, and how reworded items were looked for (a
`decontaminate` stage's `contamination` summary in the manifest)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

TableFn = Callable[[list[str], list[list[Any]]], str]


def decontamination_section(manifest: dict[str, Any], table_of: TableFn) -> str:
    """Which benchmarks the data was checked against and how many records each took out (a
    stage that counts hits per benchmark: decontaminate); nothing when none ran."""
    rows, skipped, semantic = [], [], []
    for stage in manifest["stages"]:
        for found in (v for v in stage.values() if isinstance(v, dict) and "hits" in v):
            if found.get("semantic"):
                semantic.append(_semantic_note(stage["name"], found["semantic"]))
            for name, b in (found.get("benchmarks") or {}).items():
                cells = [name, f"`{b.get('source')}`", b.get("items"), b.get("hits", 0)]
                rows.append([f"`{stage['name']}`", *cells])
            skipped += [f"`{name}` ({why})" for name, why in (found.get("skipped") or {}).items()]
    if not rows and not skipped:
        return ""
    table = table_of(["stage", "benchmark", "source", "items", "removed"], rows) if rows else ""
    not_checked = f"Not checked (could not be loaded): {', '.join(skipped)}." if skipped else ""
    return (
        "## Decontamination\n\nRecords holding a benchmark prompt (a normalised exact match or "
        f"shared word n-grams) were rejected as `contaminated`.\n\n{table}\n\n{not_checked}\n\n"
        + "".join(semantic)
    )


def _semantic_note(stage: str, s: dict[str, Any]) -> str:
    """How `stage` checked for reworded items (embedding similarity, an LLM judge)."""
    judged = f", {s['judged']} judged: {s['yes']} yes, {s['no']} no, {s['unclear']} unclear"
    return (
        f"`{stage}` also checked for reworded benchmark items by embedding similarity, decided by "
        f"{s.get('decided_by')}: {s['texts']} texts, {s['pairs']} close pairs"
        f"{judged if s.get('judged') else ''}; API cost ${s.get('cost', 0):.4f}.\n\n"
    )
