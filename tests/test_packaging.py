"""The package as a user installs it: the wheel, its dependency ranges, its extras.

The slow test builds the wheel, installs it with the lock's pins into a fresh virtual
environment and runs both demos from a directory outside the repository; the others check the
pyproject against the tree and the lock, and what a user sees when an extra is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.conftest import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
FOLDERS = {"flows": "sftforge.flows", "tasks": "sftforge.tasks", "schemas": "sftforge.schemas"}


def _lock() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[_norm(name)] = version
    return pins


def _norm(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _modules() -> list[str]:
    """Every module of flows/, tasks/, schemas/ and sftforge/, as its path in the wheel."""
    paths = []
    for folder in ("sftforge", *FOLDERS):
        for path in sorted((REPO / folder).rglob("*.py")):
            relative = path.relative_to(REPO / folder)
            if "__pycache__" not in relative.parts:
                paths.append(
                    f"sftforge/{relative}"
                    if folder == "sftforge"
                    else f"sftforge/{folder}/{relative}"
                )
    return paths


# --- pyproject against the tree and the lock (fast) -------------------------------------------


def test_every_subpackage_is_listed_and_mapped():
    setuptools = PYPROJECT["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    for folder, package in FOLDERS.items():
        assert setuptools["package-dir"][package] == folder
        for init in (REPO / folder).rglob("__init__.py"):
            parts = init.parent.relative_to(REPO / folder).parts
            assert ".".join((package, *parts)) in listed, f"{init.parent} missing from packages"


def test_the_lock_satisfies_every_range_and_extra():
    pins = _lock()
    project = PYPROJECT["project"]
    requirements = [*project["dependencies"]]
    for extra in ("dask", "report", "map", "dev"):
        requirements += project["optional-dependencies"][extra]
    for text in requirements:
        req = Requirement(text)
        assert _norm(req.name) in pins, f"{req.name} is not in requirements.lock"
        assert req.specifier.contains(pins[_norm(req.name)], prereleases=True), (
            f"requirements.lock pins {req.name}=={pins[_norm(req.name)]}, outside {req.specifier}"
        )
    # DESIGN.md: prefect 3.7.x with fastapi 0.139.x is the pair that starts a server here.
    assert pins["prefect"].startswith("3.7.") and pins["fastapi"].startswith("0.139.")


def test_heavy_parts_are_extras_not_dependencies():
    names = {_norm(Requirement(r).name) for r in PYPROJECT["project"]["dependencies"]}
    heavy = {"prefect-dask", "distributed", "matplotlib", "llmock", "pytest", "psutil"}
    assert not names & {*heavy, "umap-learn", "scikit-learn", "numba"}


def test_lint_forbids_the_folders_as_import_names(tmp_path):
    """`import tasks` works in a checkout and fails from the wheel: ruff rejects it (TID251)."""
    ruff = Path(sys.executable).parent / "ruff"
    if not ruff.is_file():
        pytest.skip("ruff is not installed (the dev extra)")
    sample = tmp_path / "sample.py"
    bad = [
        "import tasks",
        "import flows.cli",
        "import schemas.loading",
        "from tasks.base import extras",
        "from flows import cli",
        "from schemas.recipe import Recipe",
    ]
    sample.write_text("\n".join([*bad, "import sftforge.tasks", "from sftforge.flows import cli"]))
    config = ["--config", str(REPO / "pyproject.toml"), "--no-cache", "--select", "TID251"]
    lines = subprocess.run(
        [str(ruff), "check", *config, "--output-format", "concise", str(sample)],
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    flagged = sorted(int(line.split(":")[1]) for line in lines if "TID251" in line)
    assert flagged == list(range(1, len(bad) + 1)), lines
    clean = subprocess.run(
        [str(ruff), "check", *config, "."], cwd=REPO, capture_output=True, text=True
    )
    assert clean.returncode == 0, clean.stdout


# --- a missing extra: one line naming it (fast) -----------------------------------------------


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err.strip()


def test_dask_runner_without_the_extra(monkeypatch, capsys, tmp_path):
    from sftforge.flows.cli import main

    monkeypatch.setitem(sys.modules, "prefect_dask", None)
    monkeypatch.chdir(REPO)
    code = main(["run", "configs/demo.yaml", "--set", "runner.kind=dask", "--out", str(tmp_path)])
    assert code == 2
    assert _one_line(capsys) == (
        "sftforge: runner.kind=dask needs the 'dask' extra: pip install 'sftforge[dask]' "
        "(cannot import prefect_dask)"
    )
    assert not (tmp_path / "manifest.json").exists()


def test_report_without_the_extra(monkeypatch, capsys, tmp_path):
    from sftforge.flows.cli import main

    (tmp_path / "manifest.json").write_text("{}")
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    # The report's modules import matplotlib when they are imported: import them afresh.
    for name in [m for m in sys.modules if m.startswith("sftforge.tasks.publish.report")]:
        monkeypatch.delitem(sys.modules, name)
    assert main(["report", str(tmp_path)]) == 2
    assert _one_line(capsys) == (
        "sftforge: sftforge report needs the 'report' extra: pip install 'sftforge[report]' "
        "(cannot import matplotlib)"
    )


def test_map_without_the_extra(monkeypatch, capsys, tmp_path):
    import numpy as np

    from sftforge.flows.cli import main
    from sftforge.tasks.steps.embed.vectors import vectors_part, write_vectors

    ids = [f"r{i}" for i in range(6)]
    write_vectors(vectors_part(tmp_path, "embed", 0), ids, np.eye(6, 8, dtype=np.float32))
    monkeypatch.setitem(sys.modules, "sklearn.cluster", None)
    monkeypatch.setitem(sys.modules, "umap", None)
    assert main(["map", str(tmp_path)]) == 2
    assert _one_line(capsys) == (
        "sftforge: sftforge map needs the 'map' extra: pip install 'sftforge[map]' "
        "(cannot import sklearn.cluster)"
    )
    assert not (tmp_path / "map.html").exists()


def test_augment_local_server_without_the_extra(monkeypatch, tmp_path):
    from sftforge.schemas.loading import load_recipe
    from sftforge.tasks.base.extras import MissingExtra
    from sftforge.tasks.base.step_protocol import StepContext

    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setitem(sys.modules, "llmock.testing", None)
    recipe = load_recipe(REPO / "configs" / "demo_selfee.yaml")
    augment = next(s for s in recipe.steps if s.step == "augment")
    runner = augment.make_batch(StepContext(work_dir=tmp_path))
    record = {
        "id": "a",
        "source": "alpaca",
        "dataset": "alpaca",
        "instruction": "Hi",
        "input": "",
        "output": "",
    }
    with pytest.raises(MissingExtra) as caught:
        runner.apply_batch([record])
    assert str(caught.value) == (
        "augment with local_server: true needs the 'dev' extra: pip install 'sftforge[dev]' "
        "(cannot import llmock.testing)"
    )


@pytest.mark.slow
def test_augment_local_server_without_the_extra_from_the_cli(
    prefect_harness, monkeypatch, capsys, tmp_path
):
    """Raised inside the flow's augment stage: exit 2, and the run's last line names the extra
    (Prefect's own log of the failed task comes before it, as for any failed stage)."""
    from sftforge.flows.cli import main

    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setitem(sys.modules, "llmock.testing", None)
    monkeypatch.chdir(REPO)
    assert main(["run", "configs/demo_selfee.yaml", "--quiet", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "sftforge: augment with local_server: true needs the 'dev' extra: "
        "pip install 'sftforge[dev]' (cannot import llmock.testing)"
    )


# --- the wheel, installed in a fresh environment (slow) ---------------------------------------


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{cmd}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _source_tree(dest: Path) -> Path:
    """The working tree's files (tracked and new, not ignored) in `dest`: the build sees no
    build/ or egg-info left over in the repository, and leaves nothing there."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            capture_output=True,
            check=True,
        ).stdout.decode()
    except (OSError, subprocess.CalledProcessError):  # not a git checkout
        skip = shutil.ignore_patterns(".*", "build", "out", "*.egg-info", "__pycache__")
        return Path(shutil.copytree(REPO, dest, ignore=skip))
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():  # a tracked file deleted in the working tree is gone
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def _install(venv: Path, wheel: Path) -> str:
    """A fresh venv with the lock's pins and the wheel; uv when the dev extra brought it."""
    python = venv / "bin" / "python"
    uv = Path(sys.executable).parent / "uv"
    base = getattr(sys, "_base_executable", sys.executable)
    lock = str(REPO / "requirements.lock")
    if uv.is_file():
        _run([base, "-m", "venv", "--without-pip", str(venv)])
        pip = [str(uv), "pip", "install", "--quiet", "--python", str(python)]
        _run([*pip, "-r", lock])
        _run([*pip, "--no-deps", str(wheel)])
        _run([str(uv), "pip", "check", "--python", str(python)])  # ranges vs the lock
        return "uv"
    _run([base, "-m", "venv", str(venv)])
    pip = [str(python), "-m", "pip", "install", "--quiet", "--no-compile", "--no-deps"]
    _run([*pip, "-r", lock])
    _run([*pip, str(wheel)])
    _run([str(python), "-m", "pip", "check"])
    return "pip"


@pytest.mark.slow
def test_wheel_installs_alone_and_runs_both_demos_outside_the_repo(tmp_path, record_property):
    timings: dict[str, float] = {}

    began = time.perf_counter()
    source = _source_tree(tmp_path / "src")
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            str(source),
            "--wheel-dir",
            str(tmp_path / "wheels"),
        ],
        cwd=source,
    )
    wheels = list((tmp_path / "wheels").glob("sftforge-*.whl"))
    assert len(wheels) == 1, wheels
    timings["build"] = time.perf_counter() - began

    names = set(zipfile.ZipFile(wheels[0]).namelist())
    tops = {name.split("/", 1)[0] for name in names}
    assert {top for top in tops if not top.endswith(".dist-info")} == {"sftforge"}
    assert not tops & {"flows", "tasks", "schemas", "configs", "data"}
    missing = [module for module in _modules() if module not in names]
    assert not missing, f"modules missing from the wheel: {missing}"
    assert "sftforge/tasks/steps/augment/step.py" in names
    for shipped in (
        "configs/demo.yaml",
        "configs/demo_selfee.yaml",
        "data/sharegpt_sample.jsonl",
        "data/instructions/alpaca.json",
        "data/tokenizer/tokenizer.json",
    ):
        assert f"sftforge/{shipped}" in names

    began = time.perf_counter()
    venv = tmp_path / "venv"
    installer = _install(venv, wheels[0])
    timings["install"] = time.perf_counter() - began

    work = tmp_path / "elsewhere"  # outside the repository
    work.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {
            "PYTHONPATH",
            "VIRTUAL_ENV",
            "PREFECT_API_URL",
            "OPENAI_BASE_URL",
            "OPENAI_API_KEY",
            "PYTHONHOME",
        }
    }
    env.update(
        PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        PREFECT_HOME=str(tmp_path / "prefect-home"),  # its own database, its own server
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
    )
    probe = _run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import importlib.util as u, sys, sftforge; print(sftforge.__file__); "
            "print([m for m in ('flows', 'tasks', 'schemas') if u.find_spec(m)]); print(sys.path)",
        ],
        cwd=work,
        env=env,
    ).stdout.splitlines()
    assert probe[0].startswith(str(venv)) and probe[1] == "[]"
    assert str(REPO) not in probe[2]

    began = time.perf_counter()
    done = _run([str(venv / "bin" / "sftforge"), "demo", str(work), "--quiet"], cwd=work, env=env)
    timings["demos"] = time.perf_counter() - began
    assert "files copied" in done.stdout

    import pyarrow.parquet as pq

    for name in ("demo", "demo_selfee"):
        out = work / "out" / name
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["versions"]["sftforge"] == PYPROJECT["project"]["version"]
        stages = manifest["stages"]
        for stage in stages:
            assert stage["in"] == stage["out"] + sum(stage["rejected"].values())
        parts = sorted((out / "dataset").rglob("*.parquet"))
        assert parts, f"{out}/dataset is empty"
        assert sum(pq.read_metadata(p).num_rows for p in parts) == stages[-1]["out"] > 0

    for key, seconds in timings.items():
        record_property(f"{key}_seconds", round(seconds, 1))
    record_property("installer", installer)
    print(f"wheel test ({installer}): " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
