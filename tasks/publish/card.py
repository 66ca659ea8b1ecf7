"""The README.md dataset card of a pushed dataset: Hub metadata (YAML) and how it was made.

The YAML carries `configs` (data files per split) and `dataset_info` (features, splits with
num_examples and num_bytes), so `datasets.load_dataset` reads the folder as published.
The body gives the recipe, the sources with their declared licenses, each stage's counts
and rejects, token statistics, and for augmented data the model, calls and cost.
"""

from __future__ import annotations

from typing import Any

from huggingface_hub import DatasetCardData

from sftforge.tasks.publish.card_decontamination import decontamination_section
from sftforge.tasks.publish.card_near import near_duplicates_section
from sftforge.tasks.publish.hf_features import features_yaml
from sftforge.tasks.publish.hub import HubFolder
from sftforge.tasks.publish.run_stats import RunStats, summary

_FIELDS = {
    "conversation": {
        "id": "the input's id (or `<source>/<file>:<line>` when it had none)",
        "source": "the recipe source the record came from",
        "model": "the model named by the input (nullable)",
        "messages": "`[{role, content}]`, roles `system` / `user` / `assistant`",
        "meta": "JSON text: the input's other fields and what the steps added (e.g. language)",
    },
    "instruction": {
        "id": "a stable id",
        "source": "the recipe source the record came from",
        "dataset": "the dataset name (SelFee's merge naming)",
        "instruction": "the instruction",
        "input": "its input (may be empty)",
        "output": "the answer",
        "meta": "JSON text: fields kept from the input",
    },
}
_FIELDS["augmented"] = {
    **_FIELDS["instruction"],
    "outputs": "`[{output, feedback}]`: SelFee's answer → feedback → revision chain",
    "iteration": "number of (answer, feedback) pairs",
    "iteration_truncated": "true when the revision cap ended the chain",
    "truncated": "true when a prompt was cut to fit the model's context",
    "usage": "`{prompt_tokens, completion_tokens, cost}` of the record's calls",
    "status": "`done`, or `failed` (see `error`)",
    "error": "why the chain failed",
}


def _size_category(n: int) -> str:
    for limit, label in (
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
        (10_000_000, "1M<n<10M"),
    ):
        if n < limit:
            return label
    return "10M<n<100M"


def _licenses(recipe: dict[str, Any]) -> list[str]:
    declared = [s.get("license") for s in recipe.get("sources") or []]
    return sorted({lic for lic in declared if lic})


def data_configs(
    configs: dict[str, dict[str, str]], options: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The card's `configs:`: per config, per split, the data files' path pattern — what
    `datasets.load_dataset(folder[, config])` reads (the Hub push's card and OUT/README.md);
    `options`: the `datasets` builder's settings, the same for every config."""
    return [
        {
            "config_name": name,
            "data_files": [{"split": split, "path": path} for split, path in splits.items()],
            **(options or {}),
        }
        for name, splits in configs.items()
    ]


def card_metadata(
    folder: HubFolder, stats: RunStats, recipe: dict[str, Any], pretty_name: str
) -> DatasetCardData:
    splits = [
        {"name": s.name, "num_bytes": s.num_bytes, "num_examples": s.num_examples}
        for s in folder.splits
    ]
    languages = [
        lang
        for lang, n in stats.after.languages.most_common()
        if lang != "und" and n >= max(1, 0.01 * stats.after.sampled)
    ]
    licenses = _licenses(recipe)
    return DatasetCardData(
        pretty_name=pretty_name,
        license=licenses if licenses else None,
        language=languages or None,
        task_categories=["text-generation"],
        size_categories=[_size_category(sum(s.num_examples for s in folder.splits))],
        tags=["sft", "sftforge", stats.manifest["recipe"]],
        configs=data_configs({"default": {s.name: f"data/{s.name}-*" for s in folder.splits}}),
        # datasets' own YAML form of the features, so its reader parses what it expects.
        dataset_info={
            "features": features_yaml(folder.schema),
            "splits": splits,
            "download_size": sum(s.download_size for s in folder.splits),
            "dataset_size": sum(s.num_bytes for s in folder.splits),
        },
    )


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _sources(recipe: dict[str, Any], stats: RunStats) -> str:
    rows = []
    for source in recipe.get("sources") or []:
        name = source.get("name", "?")
        origin = source.get("dataset") or source.get("path") or "-"
        rows.append(
            [
                f"`{name}`",
                source.get("format", "-"),
                f"`{origin}`",
                source.get("license") or "not declared",
                stats.before.sources.get(name, 0),
                stats.after.sources.get(name, 0),
            ]
        )
    if not rows:
        return "The run's recipe was not recorded (OUT/recipe.yaml is missing)."
    return _table(["source", "format", "dataset / path", "license", "records parsed", "kept"], rows)


def _stages(manifest: dict[str, Any]) -> str:
    rows = [
        [
            f"`{s['name']}`",
            s["in"],
            s["out"],
            ", ".join(f"{reason}: {n}" for reason, n in s["rejected"].items()) or "-",
        ]
        for s in manifest["stages"]
    ]
    return _table(["stage", "in", "out", "rejected (reason: count)"], rows)


def _tokens(stats: RunStats) -> str:
    rows = []
    for label, side in (("before filtering", stats.before), ("published", stats.after)):
        t = summary(side.tokens)
        rows.append(
            [
                label,
                side.total,
                side.sampled,
                t["mean"],
                t["median"],
                t["p95"],
                t["max"],
                round(t["mean"] * side.total),
            ]
        )
    note = (
        f"Tokens per record (all messages), counted with `{stats.token_counter}` "
        "(tiktoken's gpt-3.5-turbo encoding when available offline, else sftforge's estimate "
        'of it, which errs high). "Before filtering" is the output of '
        f"`{stats.before_stage}`. Large sets are measured on a seeded sample of records."
    )
    header = ["records", "count", "measured", "mean", "median", "p95", "max", "total (est.)"]
    return note + "\n\n" + _table(header, rows)


def _augmentation(stats: RunStats) -> str:
    aug = stats.augmentation
    if aug is None:
        return ""
    reasons = ", ".join(f"{k}: {v}" for k, v in aug.stop_reasons.most_common())
    iterations = ", ".join(f"{k}: {v}" for k, v in sorted(aug.iterations.items()))
    return (
        "## Augmentation\n\n"
        + _table(
            ["", ""],
            [
                ["model", f"`{aug.model or 'not recorded'}`"],
                ["records", aug.records],
                ["prompt tokens", aug.prompt_tokens],
                ["completion tokens", aug.completion_tokens],
                ["cost (USD)", f"{aug.cost:.4f}"],
                ["revisions per record (iterations: records)", iterations or "-"],
                ["stop reasons", reasons or "-"],
                ["prompts cut to fit the context", aug.context_cut],
            ],
        )
        + "\n\n"
    )


def render_card(
    folder: HubFolder,
    stats: RunStats,
    recipe_text: str | None,
    recipe: dict[str, Any],
    repo_id: str,
) -> str:
    manifest = stats.manifest
    name = repo_id.split("/")[-1]
    meta = card_metadata(folder, stats, recipe, name)
    fields = _FIELDS.get(stats.kind, {})
    feature_rows = [[f"`{f.name}`", f"`{f.type}`", fields.get(f.name, "")] for f in folder.schema]
    split_rows = [
        [f"`{s.name}`", s.num_examples, len(s.files), s.download_size] for s in folder.splits
    ]
    versions = manifest.get("versions") or {}
    recipe_block = (
        f"```yaml\n{recipe_text.rstrip()}\n```"
        if recipe_text
        else "Not recorded (OUT/recipe.yaml is missing)."
    )
    description = recipe.get("description") or f"Records made by the `{manifest['recipe']}` recipe."
    body = f"""
# {name}

{description}

Built with sftforge from the recipe `{manifest["recipe"]}` (config hash
`{manifest["config_hash"]}`, sftforge {versions.get("sftforge", "?")}, prefect
{versions.get("prefect", "?")}). Every input record is accounted for: it is either in this
dataset or was rejected by a stage for the reason counted below.

## Usage

```python
from datasets import load_dataset

ds = load_dataset("{repo_id}")
```

## Dataset structure

{_table(["split", "examples", "files", "parquet bytes"], split_rows)}

{_table(["field", "type", "meaning"], feature_rows)}

## Sources

Licenses are as declared in the recipe; check each source's own terms before use.

{_sources(recipe, stats)}

## Processing

{_stages(manifest)}

{decontamination_section(manifest, _table)}{near_duplicates_section(manifest)}## Token statistics

{_tokens(stats)}

{_augmentation(stats)}## Recipe

{recipe_block}
"""
    return f"---\n{meta.to_yaml()}\n---\n{body.lstrip()}"
