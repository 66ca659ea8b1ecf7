"""The Python API end to end under the Prefect test harness: `sftforge.run` and its
RunResult, `sftforge.load`, the output folder as a `datasets` folder (README `configs:`),
Recipe objects, config errors — and the one RunRequest that the CLI, the deployment entry
point and the backfill all build, each reading the recipe file once per run."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import datasets
import pytest
import yaml

import sftforge
from sftforge.schemas import loading
from sftforge.tasks.pipeline.request import RunRequest
from tests.ops.ops_support import make_partitions

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.usefixtures("prefect_harness")

DEMO = str(REPO / "configs" / "demo.yaml")
SETS = ["runner.workers=1", "split.eval_size=20"]


@pytest.fixture(autouse=True)
def _datasets_cache(tmp_path, monkeypatch):
    # `datasets` caches what it loads; keep that out of the home directory.
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> sftforge.RunResult:
    out = tmp_path_factory.mktemp("api") / "demo"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(REPO)  # the demo's paths (inputs, tokenizer) are relative to the repository
        return sftforge.run(DEMO, out=out, sets=SETS)


@pytest.fixture
def reads(monkeypatch) -> list[str]:
    """Every read of a recipe file, by path."""
    seen: list[str] = []
    original = loading.read_recipe_data

    def counted(path):
        seen.append(str(path))
        return original(path)

    monkeypatch.setattr(loading, "read_recipe_data", counted)
    return seen


@pytest.fixture
def requests(monkeypatch) -> list[RunRequest]:
    """The RunRequest of every run started through `run_request` (CLI, deployment, API)."""
    import sftforge.flows.backfill_flow as backfill_flow
    import sftforge.flows.recipe_flow as recipe_flow

    seen: list[RunRequest] = []
    original = recipe_flow.run_request

    def spy(request, **kwargs):
        seen.append(request)
        return original(request, **kwargs)

    monkeypatch.setattr(recipe_flow, "run_request", spy)
    monkeypatch.setattr(backfill_flow, "run_request", spy)
    return seen


def small_demo_inputs(tmp_path: Path) -> dict[str, str]:
    """The demo's sources, smaller: the runs here check plumbing, not filtering."""
    lines = (REPO / "data" / "sharegpt_sample.jsonl").read_text().splitlines()[:40]
    sample = tmp_path / "sample.jsonl"
    sample.write_text("\n".join(lines) + "\n")
    return {"sharegpt": str(sample), "sharegpt_pages": str(REPO / "data" / "sharegpt_pages")}


# ---------------------------------------------------------------- run and load


def test_run_returns_the_manifest_and_the_outputs(demo):
    out = demo.output_dir
    assert demo.manifest == json.loads((out / "manifest.json").read_text())
    assert demo.manifest["recipe"] == "demo" and "versions" in demo.manifest
    assert demo.outputs["parquet"] == out / "dataset"
    assert demo.outputs["sharegpt_json"] == out / "export" / "sharegpt"
    assert demo.outputs["openchat_tokens"] == out / "export" / "openchat"
    assert list(demo.stages) == [s["name"] for s in demo.manifest["stages"]]
    assert list(demo.stages)[0] == "read" and demo.stages["filter_language"]["out"] > 50
    with pytest.raises(dataclasses.FrozenInstanceError):
        demo.output_dir = Path("elsewhere")  # type: ignore[misc]


def test_load_gives_the_final_records_a_stage_and_its_rejects(demo):
    out, stages = demo.output_dir, demo.stages
    final = sftforge.load(out)
    assert set(final) == {"train", "eval"} and final["eval"].num_rows == 20
    assert final["train"].num_rows + 20 == stages["filter_language"]["out"]
    assert "messages" in final["train"].column_names

    kept = sftforge.load(out, stage="dedup_exact")
    assert list(kept) == ["train"] and kept["train"].num_rows == stages["dedup_exact"]["out"]

    rejected = sftforge.load(out, stage="filter_model", rejects=True)["train"]
    assert rejected.num_rows == sum(stages["filter_model"]["rejected"].values()) > 0
    assert rejected.column_names == ["id", "source", "reason", "detail", "record"]
    assert set(rejected["reason"]) == set(stages["filter_model"]["rejected"])

    # A stage that rejected nothing has no rejects file: an empty split, same columns.
    assert stages["html_to_markdown"]["rejected"] == {}
    none = sftforge.load(out, stage="html_to_markdown", rejects=True)["train"]
    assert none.num_rows == 0 and none.column_names == rejected.column_names

    every = sftforge.load(out, rejects=True)
    counts = {name: sum(s["rejected"].values()) for name, s in stages.items()}
    assert {split: ds.num_rows for split, ds in every.items()} == {
        name: n for name, n in counts.items() if n
    }

    with pytest.raises(sftforge.ConfigError, match="no stage 'nope'"):
        sftforge.load(out, stage="nope")
    with pytest.raises(sftforge.ConfigError, match="no manifest.json"):
        sftforge.load(out / "dataset")


def test_the_output_folder_loads_with_datasets(demo):
    out = demo.output_dir
    readme = (out / "README.md").read_text()
    front = yaml.safe_load(readme.split("---\n")[1])
    assert [c["config_name"] for c in front["configs"]] == ["default", "rejects"]

    final = datasets.load_dataset(str(out))
    ours = sftforge.load(out)
    assert {s: d.num_rows for s, d in final.items()} == {s: d.num_rows for s, d in ours.items()}
    assert final["train"]["id"] == ours["train"]["id"]

    rejects = datasets.load_dataset(str(out), "rejects")
    expected = {n: sum(s["rejected"].values()) for n, s in demo.stages.items()}
    assert {s: d.num_rows for s, d in rejects.items()} == {n: c for n, c in expected.items() if c}


def test_a_recipe_object_runs_and_an_empty_split_loads(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    # An eval fraction so small that no record falls in it: an eval split with zero rows.
    recipe = sftforge.Recipe.from_yaml(
        DEMO,
        sets=["runner.workers=1", "split.eval_fraction=1e-12"],
        inputs=small_demo_inputs(tmp_path),
    )
    assert isinstance(recipe, sftforge.Recipe) and recipe.split is not None
    result = sftforge.run(recipe, out=tmp_path / "out")
    out = tmp_path / "out"
    # The recipe object ran from a file (the request is a path), kept beside the state.
    assert sftforge.Recipe.from_yaml(out / ".sftforge" / "recipe.yaml") == recipe
    assert result.manifest["config_hash"] == loading.recipe_hash(recipe)
    final = result.stages["filter_language"]["out"]
    loaded = sftforge.load(out)
    assert loaded["eval"].num_rows == 0 and loaded["train"].num_rows == final
    assert loaded["eval"].features == loaded["train"].features
    # `datasets` cannot make a split of files with no rows: the README leaves it out.
    by_datasets = datasets.load_dataset(str(out))
    assert list(by_datasets) == ["train"] and by_datasets["train"].num_rows == final


def test_a_bad_recipe_or_input_is_a_config_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(Path(DEMO).read_text().replace("min_chars: 16", "min_charz: 16"))
    with pytest.raises(sftforge.ConfigError, match=r"bad\.yaml: steps\[1\]\.min_charz"):
        sftforge.run(bad, out=tmp_path / "out")
    with pytest.raises(sftforge.ConfigError, match="min_charz"):
        sftforge.Recipe.from_yaml(bad)
    with pytest.raises(sftforge.ConfigError, match="no such file"):
        sftforge.run(DEMO, inputs={"sharegpt": str(tmp_path / "missing.jsonl")}, out=tmp_path)
    assert not (tmp_path / "out").exists()  # refused before anything ran


def test_a_failed_stage_raises_run_failed_naming_it(tmp_path):
    source = {"name": "s", "format": "sharegpt", "path": small_demo_inputs(tmp_path)["sharegpt"]}
    steps = [{"step": "check_structure"}, {"step": "breaks"}]  # tests/example_steps/breaks.py
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "name": "breaks",
                "output_dir": str(tmp_path / "out"),
                "sources": [source],
                "plugins": ["tests.example_steps.breaks"],
                "steps": steps,
            }
        )
    )
    with pytest.raises(sftforge.RunFailed, match="the step broke") as failed:
        sftforge.run(recipe, sets=["runner.workers=1"])
    assert failed.value.stage == "breaks"
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_import_sftforge_is_light():
    code = "import sys, sftforge; print(sorted({'prefect', 'datasets'} & set(sys.modules)))"
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert shown.stdout.strip() == "[]", shown.stderr


# ---------------------------------------------------------------- one RunRequest, one read


def test_cli_run_and_validate_read_the_recipe_once(tmp_path, reads, requests):
    from sftforge.flows.cli import main

    inputs = small_demo_inputs(tmp_path)
    args = [f"--input=sharegpt={inputs['sharegpt']}", "--set", "runner.workers=1"]
    assert main(["validate", DEMO, *args]) == 0
    assert reads == [DEMO] and requests == []

    reads.clear()
    out = tmp_path / "out"
    assert main(["run", DEMO, *args, "--out", str(out), "--quiet"]) == 0
    assert reads == [DEMO]
    assert requests == [
        RunRequest(
            recipe_path=DEMO,
            inputs={"sharegpt": inputs["sharegpt"]},
            out=str(out),
            sets=["runner.workers=1"],
        )
    ]
    assert (out / "README.md").is_file() and (out / "manifest.json").is_file()


def test_the_deployment_entry_point_builds_the_same_request(tmp_path, reads, requests):
    from sftforge.flows.deployments import run_recipe_deployment

    inputs = small_demo_inputs(tmp_path)
    out = str(tmp_path / "out")
    body = run_recipe_deployment(
        recipe_path=DEMO, inputs=inputs, out=out, sets=["runner.workers=1"]
    )
    assert body["recipe"] == "demo"
    request = RunRequest(recipe_path=DEMO, inputs=inputs, out=out, sets=["runner.workers=1"])
    assert requests == [request] and reads == [DEMO]
    # What a backfill sends a deployment is what the entry point takes.
    assert RunRequest(**request.parameters()) == request
    assert json.loads(json.dumps(request.model_dump(mode="json"))) == {
        "recipe_path": DEMO,
        "inputs": [[name, path] for name, path in inputs.items()],
        "out": out,
        "sets": ["runner.workers=1"],
        "limit": None,
    }


def test_a_backfill_reads_each_partitions_recipe_once(tmp_path, reads, requests):
    from sftforge.flows.cli import main

    recipe = make_partitions(tmp_path, [1, 2], records=20, workers=1)
    spec = "2023-04-01..2023-04-03"  # the 3rd has no files: planned, never run
    assert main(["backfill", str(recipe), "--partitions", spec, "--quiet"]) == 0
    # Once for the plan, once per partition with files (its hash); the runs read nothing.
    assert reads == [str(recipe)] * 3
    parts = tmp_path / "out" / "partitions"
    assert sorted(requests, key=lambda r: r.out or "") == [
        RunRequest(
            recipe_path=str(recipe),
            inputs={"sharegpt": f"{tmp_path}/dumps/{day}/*.jsonl"},
            out=str(parts / day),
        )
        for day in ("2023-04-01", "2023-04-02")
    ]
    for day in ("2023-04-01", "2023-04-02"):
        assert (parts / day / "README.md").is_file()
