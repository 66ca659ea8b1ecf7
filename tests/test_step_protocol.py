"""The step protocol: the registry is the one list of steps, a step from outside the package
runs in a recipe, and a batch step's progress goes to its own flow's display."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from sftforge.schemas.loading import ConfigError, load_recipe, resolve_source_files
from sftforge.schemas.recipe import Recipe
from sftforge.schemas.steps import registered_steps
from sftforge.tasks.base.step_protocol import BatchStep, FilterPassStep, RecordStep, StepContext
from sftforge.tasks.pipeline.plan import plan_run
from sftforge.tasks.pipeline.read_stage import run_read
from sftforge.tasks.pipeline.stages import run_batch_stage

REPO = Path(__file__).resolve().parents[1]
BUILT_IN = {
    "html_to_markdown": RecordStep,
    "check_structure": RecordStep,
    "filter_blocked_words": RecordStep,
    "filter_model": RecordStep,
    "filter_language": RecordStep,
    "filter_question": RecordStep,
    "dedup_exact": FilterPassStep,
    "sample_per_group": FilterPassStep,
    "augment": BatchStep,
}


def test_every_built_in_step_is_registered_with_one_protocol():
    steps = registered_steps()
    for name, base in BUILT_IN.items():
        assert issubclass(steps[name], base), name
        others = {RecordStep, FilterPassStep, BatchStep} - {base}
        assert not any(issubclass(steps[name], other) for other in others), name


def test_the_recipe_schema_is_the_registry(tmp_path):
    schema = Recipe.model_json_schema()
    mapping = schema["properties"]["steps"]["items"]["discriminator"]["mapping"]
    assert set(mapping) == set(registered_steps())
    path = tmp_path / "r.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "r",
                "output_dir": "out",
                "steps": [{"step": "nope"}],
                "sources": [{"name": "s", "format": "sharegpt", "path": "x.jsonl"}],
            }
        )
    )
    with pytest.raises(ConfigError) as error:
        load_recipe(path)
    assert all(name in str(error.value) for name in registered_steps())


def _plugin_recipe(tmp_path: Path, plugins: list[str]) -> Path:
    rows = [
        {
            "id": "a",
            "conversations": [
                {"from": "human", "value": "mail me at ann@example.org"},
                {"from": "gpt", "value": "Sure, bob@example.com here."},
            ],
        },
        {
            "id": "b",
            "conversations": [
                {"from": "human", "value": "x@y.io"},
                {"from": "gpt", "value": "z@w.io"},
            ],
        },
        {
            "id": "c",
            "conversations": [
                {"from": "human", "value": "no address"},
                {"from": "gpt", "value": "fine"},
            ],
        },
    ]
    data = tmp_path / "in.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    path = tmp_path / "r.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "plugin",
                "output_dir": str(tmp_path / "out"),
                "plugins": plugins,
                "sources": [{"name": "s", "format": "sharegpt", "path": str(data)}],
                "steps": [
                    {"step": "redact_emails", "replacement": "[email]"},
                    {"step": "dedup_exact"},
                ],
                "runner": {"workers": 2, "shard_size": 2},
            }
        )
    )
    return path


def test_an_unknown_plugin_is_a_config_error_naming_it(tmp_path):
    path = _plugin_recipe(tmp_path, ["no_such_module_here"])
    with pytest.raises(ConfigError, match=r"plugins\[0\]: cannot import 'no_such_module_here'"):
        load_recipe(path)


@pytest.mark.usefixtures("prefect_harness")
def test_a_step_from_outside_the_package_runs_in_a_recipe(tmp_path):
    from sftforge.flows.recipe_flow import flow_for
    from sftforge.tasks.pipeline.request import RunRequest

    path = _plugin_recipe(tmp_path, ["tests.example_steps.redact_emails"])
    # spawned workers import it too
    body = flow_for(2)(request=RunRequest(recipe_path=str(path)), quiet=True)
    stage = {s["name"]: s for s in body["stages"]}["redact_emails"]
    assert (stage["in"], stage["out"], stage["rejected"]) == (3, 2, {"only_emails": 1})
    rows = [
        r
        for p in sorted((tmp_path / "out" / "dataset").glob("*.parquet"))
        for r in pq.read_table(p).to_pylist()
    ]
    assert [r["id"] for r in rows] == ["a", "c"]
    assert rows[0]["messages"][0]["content"] == "mail me at [email]"
    assert "redact_emails" in registered_steps()


def _augment_recipe(tmp_path: Path, name: str, n: int) -> Path:
    rows = [{"instruction": f"{name}: say hello {i}", "input": "", "output": ""} for i in range(n)]
    data = tmp_path / f"{name}.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": name,
                "output_dir": str(tmp_path / name),
                "seed": 1,
                "sources": [
                    {
                        "name": "alpaca",
                        "format": "hf",
                        "path": str(data),
                        "mapping": {"instruction": "{instruction}", "input": "{input}"},
                    }
                ],
                "steps": [
                    {
                        "step": "augment",
                        "local_server": True,
                        "rpm": 60000,
                        "tpm": 10000000,
                        "ramp_seconds": 0,
                        "max_iterations": 2,
                        "concurrency": 2,
                        "max_tokens": {"answer": 32, "feedback": 16, "revision": 32},
                    }
                ],
            }
        )
    )
    return path


def test_two_augment_stages_at_once_each_report_to_their_own_display(tmp_path, monkeypatch):
    """What a backfill does: two flows in one process, each with its own progress display.
    (A module-level sink, as before, sent both stages' lines to whichever flow set it last.)"""
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-local-0123456789abcdef0123456789abcdef")
    lines: dict[str, list[str]] = {"small": [], "large": []}
    sizes = {"small": 3, "large": 9}
    errors: list[BaseException] = []

    def run(name: str) -> None:
        try:
            path = _augment_recipe(tmp_path, name, sizes[name])
            recipe = load_recipe(path)
            files = resolve_source_files(recipe, path)
            plan = plan_run(recipe, files)
            out = Path(recipe.output_dir)
            shards = len(run_read(recipe, files, out, plan))
            (segment,) = plan.segments
            run_batch_stage(out, segment, shards, StepContext(seed=1, report=lines[name].append))
        except BaseException as exc:  # noqa: BLE001 - surfaced below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(name,)) for name in sizes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    for name, n in sizes.items():
        assert lines[name], name
        done = [int(line.split(" done")[0]) for line in lines[name]]
        assert max(done) == n, (name, lines[name][-1])  # its own records, all of them


def test_help_lists_every_registered_step(capsys):
    from sftforge.flows.cli import main

    with pytest.raises(SystemExit):
        main(["run", "--help"])
    listed = capsys.readouterr().out.split("steps (")[1]
    kinds = {"conversation": {"conversation"}, "instruction": {"instruction", "augmented"}}
    for name, cls in registered_steps().items():
        # the kinds column: "any", or the kinds it takes (augmented records are instructions)
        taken = (
            "any"
            if len(cls.kinds) == 3
            else next(k for k, v in kinds.items() if v >= set(cls.kinds))
        )
        assert f"\n  {name:<21} {taken} " in listed
