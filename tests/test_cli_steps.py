"""`sftforge steps` and `sftforge --version` (issue #14 §5), through the real command: every
registered step and every output format with a one-line description, taken from the
registries (and the same table ends `run --help`); the installed version."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from sftforge.flows.step_list import summary
from sftforge.schemas.steps import registered_steps
from sftforge.tasks.outputs.registry import FORMATS

SCRIPT = Path(sys.executable).parent / "sftforge"
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "sftforge.flows.cli"]


def sftforge(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    done = subprocess.run([*COMMAND, *args], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return done


def shipped_steps() -> dict[str, type]:
    """The registry as a fresh `sftforge` process has it: without the example steps other
    tests of the session register."""
    return {n: c for n, c in registered_steps().items() if c.__module__.startswith("sftforge.")}


def rows(text: str, section: str) -> dict[str, str]:
    """Name -> the rest of its line, in one section of the table (piped: one line each)."""
    block = text.split(section, 1)[1].split("\n\n", 1)[0]
    lines = [line for line in block.splitlines()[2:] if line.strip()]  # heading, column names
    return {line.split()[0]: line.split(None, 1)[1] for line in lines}


def test_steps_lists_every_step_and_format_from_the_registries():
    out = sftforge("steps").stdout
    steps = rows(out, "steps (")
    assert set(steps) == set(shipped_steps())
    for name, cls in shipped_steps().items():
        described = summary(cls.__doc__)
        assert described and steps[name].endswith(described), (name, steps[name])
        # one line: a step's docstring may wrap its first sentence
        assert "\n" not in described and "  " not in described
    formats = rows(out, "output formats (")
    assert list(formats) == list(FORMATS)
    for name, fmt in FORMATS.items():
        assert fmt.summary and formats[name].endswith(fmt.summary), name
    assert steps["check_structure"].startswith("conversation ")
    assert formats["alpaca_json"].startswith("instruction ")


def test_a_docstring_summary_is_its_first_sentence_on_one_line():
    doc = """Exact dedup, first kept: on the whole
    conversation (e.g. FastChat's). More detail here.

    Options: …"""
    assert summary(doc) == "Exact dedup, first kept: on the whole conversation (e.g. FastChat's)."
    assert summary(None) == ""


def test_run_help_shows_the_same_table():
    # The table as a fresh process makes it (this one may hold other tests' example steps).
    code = "from sftforge.flows.step_list import steps_text; print(steps_text(width=80))"
    fresh = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert fresh.returncode == 0, fresh.stderr
    for command in ("run", "validate"):
        help_text = sftforge(command, "--help").stdout
        assert fresh.stdout.strip("\n") in help_text
        table = help_text[help_text.index("steps (") :]
        assert max(len(line) for line in table.splitlines()) <= 80
        for name in [*shipped_steps(), *FORMATS]:
            assert f"\n  {name} " in table, name


def test_version_is_the_installed_one():
    done = sftforge("--version")
    assert done.stdout == f"sftforge {version('sftforge')}\n"
