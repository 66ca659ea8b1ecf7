"""Prefect artifacts of a run: a table of stages, and a summary linking the outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect.artifacts import create_markdown_artifact, create_table_artifact


def artifact_key(recipe: str, what: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes; one key per recipe
    so that the UI's artifact history of a key is the history of that recipe."""
    name = "".join(c if c.isalnum() else "-" for c in recipe.lower()).strip("-")
    return f"sftforge-{name}-{what}"


def _link(label: str, path: str) -> str:
    return f"[{label}]({Path(path).resolve().as_uri()})"


def publish_artifacts(body: dict[str, Any]) -> None:
    rows = [
        {
            "stage": s["name"],
            "in": s["in"],
            "out": s["out"],
            "rejected": sum(s["rejected"].values()),
            "rejected_by_reason": ", ".join(f"{k}: {v}" for k, v in s["rejected"].items()) or "-",
            "seconds": s["seconds"],
            "records_per_s": round(s["in"] / s["seconds"], 1) if s["seconds"] else None,
        }
        for s in body["stages"]
    ]
    create_table_artifact(
        rows,
        key=artifact_key(body["recipe"], "stages"),
        description=f"sftforge · {body['recipe']}: records per stage",
    )
    out = body["output_dir"]
    paths = {k: v["path"] if isinstance(v, dict) else v for k, v in body["outputs"].items()}
    links = [f"- {_link(kind, path)} `{path}`" for kind, path in paths.items()]
    links.append(f"- {_link('manifest', f'{out}/manifest.json')} `{out}/manifest.json`")
    links.append(f"- {_link('rejects', f'{out}/rejects')} `{out}/rejects/<stage>/`")
    first, last = body["stages"][0], body["stages"][-1]
    create_markdown_artifact(
        f"# {body['recipe']}\n\n"
        f"**{first['in']}** records in, **{last['out']}** out "
        f"({first['in'] - last['out']} rejected), {body['shards']} shards, "
        f"{body['wall_seconds']:.1f} s wall, config hash `{body['config_hash']}`.\n\n"
        "## Outputs\n\n" + "\n".join(links) + "\n\n"
        f"Plots: `sftforge report {out}` writes `{out}/report.html`.\n",
        key=artifact_key(body["recipe"], "summary"),
        description=f"sftforge · {body['recipe']}: summary and outputs",
    )
