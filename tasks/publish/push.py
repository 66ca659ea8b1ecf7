"""`sftforge push`: build the Hub folder (data shards + dataset card), then upload it —
or, for a dry run, leave it in DIR, exactly as it would have been uploaded."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from sftforge.tasks.base.atomic import write_bytes_atomic
from sftforge.tasks.pipeline.snapshot import read_recipe_snapshot
from sftforge.tasks.publish.card import render_card
from sftforge.tasks.publish.hub import MAX_SHARD_BYTES, HubFolder, build_folder, upload
from sftforge.tasks.publish.run_stats import collect


def build(out: Path, dest: Path, repo_id: str, max_shard_bytes: int = MAX_SHARD_BYTES) -> HubFolder:
    folder = build_folder(out, dest, max_shard_bytes)
    snapshot = read_recipe_snapshot(out)
    text, recipe = snapshot if snapshot else (None, {})
    stats = collect(out, recipe)
    card = render_card(folder, stats, text, recipe, repo_id)
    write_bytes_atomic(dest / "README.md", card.encode("utf-8"))
    return folder


def push(
    out: Path,
    repo_id: str,
    *,
    private: bool = False,
    dry_run: Path | None = None,
    token: str | None = None,
    max_shard_bytes: int = MAX_SHARD_BYTES,
) -> str:
    """What was done, in one line: the dry-run folder, or the commit's URL."""
    if dry_run is not None:
        folder = build(out, dry_run, repo_id, max_shard_bytes)
        files = sum(len(s.files) for s in folder.splits)
        return f"{dry_run}: README.md and {files} parquet files (nothing uploaded)"
    assert token, "a token is needed to upload"
    with tempfile.TemporaryDirectory(prefix="sftforge-push-") as tmp:
        staging = Path(tmp) / "folder"
        folder = build(out, staging, repo_id, max_shard_bytes)
        manifest = json.loads((out / "manifest.json").read_text())
        message = f"sftforge push: {manifest['recipe']} (config {manifest['config_hash']})"
        url = upload(folder.path, repo_id, token, private, message)
    return f"pushed {repo_id}: {url}"
