"""Which commands the warm process may run (#14 §2), as plain functions: its key follows the
code and the environment a command would import with, and only runs and backfills on the
local server, where no Prefect settings file sits in the working directory, are eligible."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from sftforge.flows import warm_client


def test_warm_key_follows_code_and_environment(tmp_path: Path, monkeypatch) -> None:
    package = tmp_path / "warmkeypkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "step.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(warm_client, "_PACKAGES", ("warmkeypkg",))
    env = {"HOME": "/home/u", "PWD": "/a", "_": "/usr/bin/sftforge"}
    key = warm_client.warm_key(env)
    # What differs between two shell commands and nothing reads at import: the same key.
    assert warm_client.warm_key({**env, "PWD": "/b", "_": "/x", "SHLVL": "3"}) == key
    assert warm_client.warm_key({**env, "PREFECT_LOGGING_LEVEL": "DEBUG"}) != key
    assert warm_client.warm_key({**env, "HOME": "/home/v"}) != key
    stat = (package / "step.py").stat()
    os.utime(package / "step.py", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert warm_client.warm_key(env) != key  # an edited module: a new warm process


def test_warm_eligible_only_for_runs_on_the_local_server(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("PREFECT_PROFILES_PATH", "/nonexistent/profiles.toml")
    # The `sftforge` command decides before importing Prefect; in this test process another
    # test may have loaded Prefect's settings under the session's test harness, whose API
    # URL would count as configured (configured_api_url), so hide them as the command has none.
    monkeypatch.delitem(sys.modules, "prefect.settings", raising=False)
    env: dict[str, str] = {}
    assert warm_client.warm_eligible(["run", "c.yaml"], env)
    assert warm_client.warm_eligible(["backfill", "c.yaml"], env)
    assert not warm_client.warm_eligible(["validate", "c.yaml"], env)
    assert not warm_client.warm_eligible(["run", "c.yaml", "--verbose"], env)
    assert not warm_client.warm_eligible(["run", "c.yaml"], {"SFTFORGE_WARM": "0"})
    assert not warm_client.warm_eligible(["run", "c.yaml"], {"SFTFORGE_LOCAL_SERVER": "0"})
    # Prefect's settings files in the working directory are read at import: not warm.
    monkeypatch.chdir(tmp_path)
    assert warm_client.warm_eligible(["run", "c.yaml"], env)
    (tmp_path / "pyproject.toml").write_text("[tool.prefect]\nlogging.level = 'DEBUG'\n")
    assert not warm_client.warm_eligible(["run", "c.yaml"], env)
    (tmp_path / "pyproject.toml").unlink()
    (tmp_path / "prefect.toml").write_text("[logging]\nlevel = 'DEBUG'\n")
    assert not warm_client.warm_eligible(["run", "c.yaml"], env)
    (tmp_path / "prefect.toml").unlink()
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    assert not warm_client.warm_eligible(["run", "c.yaml"], env)


if sys.platform != "linux":  # fork, SO_PEERCRED and /proc: the warm process is Linux's
    pytestmark = pytest.mark.skip("the warm process runs on Linux only")
