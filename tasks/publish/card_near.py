"""The dataset card's "Near-duplicates" section: how a `dedup_near` stage ran (from its
`near_duplicates` summary in the manifest) and what it removed."""

from __future__ import annotations

from typing import Any

HEAD = ["stage", "shingle (words)", "bands × rows of permutations", "verified at Jaccard",
        "clusters", "removed", "cluster sizes (size: clusters)"]  # fmt: skip


def near_duplicates_section(manifest: dict[str, Any]) -> str:
    """Markdown (ending in a blank line), or nothing when no stage has the summary."""
    rows = []
    for stage in manifest["stages"]:
        near = stage.get("near_duplicates")
        if not near:
            continue
        sizes = ", ".join(f"{k}: {v}" for k, v in near.get("cluster_sizes", {}).items())
        lsh = f"{near.get('bands')} × {near.get('rows')} of {near.get('permutations')}"
        threshold = near.get("threshold")
        rows.append([f"`{stage['name']}`", near.get("shingle"), lsh,
                     "no" if threshold is None else threshold, near.get("clusters", 0),
                     near.get("rejected", 0), sizes or "-"])  # fmt: skip
    if not rows:
        return ""
    table = ["| " + " | ".join(HEAD) + " |", "|" + "---|" * len(HEAD)]
    table += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return (
        "## Near-duplicates\n\nRecords whose MinHash signatures put them in a cluster of "
        "near-duplicates (word shingles, LSH) were rejected as `near_duplicate`; the first "
        "record of each cluster in input order was kept.\n\n" + "\n".join(table) + "\n\n"
    )
