"""Failed augment calls are counted, shown, and fail the run when too many: issue #12 §4.

The runs go through the real `sftforge run` command (a subprocess with its own temporary
Prefect server) against local servers: llmock answering 401 to every call, and a small server
failing a fixed subset of prompts for good.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from augment_support import (
    SECRET_KEY,
    PickyServer,
    picky_instructions,
    sftforge_run,
    stage_rows,
    write_recipe,
)
from llmock.scenarios import Fail
from rich.console import Console

from sftforge.flows.progress import summary_table
from sftforge.tasks.steps.augment.failures import (
    describe_failures,
    error_class,
    fails_stage,
    hint,
)
from sftforge.tasks.steps.augment.step import AugmentStep

HINT_401 = "AuthenticationError, HTTP 401: check OPENAI_API_KEY / base_url"


def step(**options: Any) -> AugmentStep:
    return AugmentStep.model_validate({"step": "augment", **options})


# ---------------------------------------------------------------- the rule and the words


@pytest.mark.parametrize(
    ("failed", "total", "share", "fails"),
    [
        (30, 30, 1.0, True),  # the default: every record failed
        (29, 30, 1.0, False),  # ... and only then
        (0, 30, 1.0, False),
        (0, 0, 1.0, False),  # nothing augmented (no record of the chosen datasets)
        (1, 30, 0.0, True),  # 0.0: any failure
        (0, 30, 0.0, False),
        (3, 30, 0.1, True),  # at least the share
        (2, 30, 0.1, False),
        (30, 30, None, False),  # None: never
    ],
)
def test_share_rule(failed: int, total: int, share: float | None, fails: bool) -> None:
    assert fails_stage(failed, total, share) is fails


def test_option_default_and_bounds() -> None:
    assert step().fail_at_failed_share == 1.0
    assert step(fail_at_failed_share=None).fail_at_failed_share is None
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="fail_at_failed_share"):
            step(fail_at_failed_share=bad)


@pytest.mark.parametrize(
    ("error", "label", "advice"),
    [
        ("HTTP 401: Incorrect API key provided", "AuthenticationError, HTTP 401", "OPENAI_API_KEY"),
        ("HTTP 403: no access", "PermissionDeniedError, HTTP 403", "OPENAI_API_KEY"),
        ("HTTP 404: no such model", "NotFoundError, HTTP 404", "check model / base_url"),
        ("HTTP 429: slow down after 6 attempts", "RateLimitError, HTTP 429", "rpm / tpm"),
        ("HTTP 500: oops after 2 attempts", "InternalServerError, HTTP 500", "retry later"),
        ("HTTP 400: bad", "BadRequestError, HTTP 400", "generation options"),
        ("batch line 401: bad key", "AuthenticationError, HTTP 401", "OPENAI_API_KEY"),
        ("connection error: Connection error. after 6 attempts", "APIConnectionError", "running"),
        ("timeout after 6 attempts", "APITimeoutError", "timeout_seconds"),
        ("not sent: max_cost $1.0000 reached", "BudgetExhausted", "max_cost"),
        ("answer prompt does not fit the model's context", "ContextOverflow", "context_window"),
        ("record has no instruction", "BadRecord", "instruction"),
        ("KeyError: 'x'", "KeyError", None),
        ("something else", "Error", None),
    ],
)
def test_error_classes_and_hints(error: str, label: str, advice: str | None) -> None:
    assert error_class(error) == label
    text = hint(label, step())
    assert (text is None) if advice is None else (advice in (text or ""))


def test_hint_names_the_configured_key() -> None:
    assert hint("AuthenticationError, HTTP 401", step(api_key_env="MY_KEY")) == (
        "check MY_KEY / base_url"
    )
    block = step(api_key_secret_block="openai-key")
    assert "Secret block 'openai-key'" in (hint("PermissionDeniedError, HTTP 403", block) or "")


def test_message_names_each_class_most_frequent_first() -> None:
    config = step()
    one = describe_failures(30, 30, {"AuthenticationError, HTTP 401": 30}, config)
    assert one == f"30/30 records failed ({HINT_401})"
    two = describe_failures(
        6, 10, {"APIConnectionError": 2, "AuthenticationError, HTTP 401": 4}, config
    )
    assert two == (
        f"6/10 records failed (4 {HINT_401}; "
        "2 APIConnectionError: check base_url / the server is running)"
    )


def test_summary_counts_failures_by_class_and_the_verdict_follows_the_option(tmp_path) -> None:
    from sftforge.tasks.base.step_protocol import StepContext

    def record(i: int, error: str | None) -> dict[str, Any]:
        return {
            "id": f"r{i}",
            "status": "failed" if error else "done",
            "error": error,
            "iteration": 0 if error else 1,
            "usage": {},
        }

    shards = [
        [record(0, "HTTP 401: bad key"), record(1, None)],
        [record(2, "HTTP 401: bad key"), record(3, "connection error: refused")],
    ]
    config = step()
    runner = config.make_batch(StepContext(work_dir=tmp_path))
    parts = [runner.summarize(records) for records in shards]
    assert parts[1]["failed_by_error"] == {"APIConnectionError": 1, HINT_401.split(":")[0]: 1}
    total = AugmentStep.combine_summaries(parts)
    assert total["failed"] == 3
    assert total["failed_by_error"] == {"APIConnectionError": 1, "AuthenticationError, HTTP 401": 2}
    assert runner.verdict(total) is None  # 3 of 4: under the default, shown but not fatal
    strict = step(fail_at_failed_share=0.5).make_batch(StepContext(work_dir=tmp_path))
    assert strict.verdict(total) == (
        f"3/4 records failed (2 {HINT_401}; "
        "1 APIConnectionError: check base_url / the server is running)"
    )
    # A marker written before failures were classified still combines.
    old = {k: v for k, v in parts[0].items() if k != "failed_by_error"}
    assert AugmentStep.combine_summaries([old])["failed_by_error"] == {}


def test_summary_table_shows_failed_in_red_only_where_counted() -> None:
    def stage(name: str, **extra: Any) -> dict[str, Any]:
        return {"name": name, "in": 10, "out": 10, "rejected": {}, "seconds": 1.0, **extra}

    body = {
        "recipe": "r",
        "output_dir": "out",
        "wall_seconds": 2.0,
        "stages": [stage("read"), stage("augment", augment={"failed": 3})],
    }
    table = summary_table(body)
    assert [c.header for c in table.columns][4] == "failed"
    assert list(table.columns[4].cells) == ["-", "[red]3"]
    console = Console(record=True, width=120)
    console.print(table)
    assert "3 failed" in console.export_text()
    plain = summary_table({**body, "stages": [stage("read")]})
    assert "failed" not in [c.header for c in plain.columns]


# ---------------------------------------------------------------- through `sftforge run`


@pytest.fixture(scope="module")
def prefect_home(tmp_path_factory) -> Path:
    # One home for the module's runs: the temporary server's database is made once.
    return tmp_path_factory.mktemp("prefect-home")


@pytest.fixture(scope="module")
def unauthorized(tmp_path_factory, prefect_home) -> dict[str, Any]:
    """30 records, every call answered 401; then the same command against a working server."""
    from llmock.testing import LLMockServer

    root = tmp_path_factory.mktemp("unauthorized")
    recipe = write_recipe(root, [f"Write a haiku about the number {i}." for i in range(30)])
    server = LLMockServer()
    server.start()
    try:
        server.state.scenarios.add(
            Fail(401, times=None, message=f"Incorrect API key provided: {SECRET_KEY[:8]}***")
        )
        failed = sftforge_run(recipe, server.base_url("openai"), prefect_home)
        rows = stage_rows(root / "out", "augment")
        exported = [
            p for p in ("export", "dataset", "manifest.json") if (root / "out" / p).exists()
        ]
        server.state.scenarios.clear()
        rerun = sftforge_run(recipe, server.base_url("openai"), prefect_home, "--quiet")
    finally:
        server.stop()
    return {"failed": failed, "rows": rows, "exported": exported, "rerun": rerun, "root": root}


@pytest.mark.slow
def test_every_call_401_exits_1_with_count_and_hint(unauthorized) -> None:
    result = unauthorized["failed"]
    assert result.returncode == 1, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("sftforge: run failed: stage augment"), last
    assert last.endswith(f"30/30 records failed ({HINT_401})"), last
    assert SECRET_KEY not in result.stderr and SECRET_KEY not in result.stdout
    # The stage's output is written (nothing lost, the rerun resumes from it); the run ends
    # before any export or manifest, so no file looks like a finished dataset.
    rows = unauthorized["rows"]
    assert len(rows) == 30 and all(r["status"] == "failed" for r in rows)
    assert all(r["error"].startswith("HTTP 401") for r in rows)
    assert unauthorized["exported"] == []
    journal = unauthorized["root"] / "out" / ".sftforge" / "augment" / "augment" / "journal.sqlite"
    assert journal.is_file()


@pytest.mark.slow
def test_a_rerun_against_a_working_server_retries_the_failed_records(unauthorized) -> None:
    rerun = unauthorized["rerun"]
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    manifest = json.loads((unauthorized["root"] / "out" / "manifest.json").read_text())
    summary = manifest["stages"][-1]["augment"]
    assert summary["failed"] == 0 and summary["failed_by_error"] == {}


@pytest.mark.slow
def test_every_call_401_prints_no_traceback(unauthorized) -> None:
    assert "Traceback" not in unauthorized["failed"].stderr


@pytest.mark.slow
def test_some_failures_are_counted_and_shown_under_the_default(tmp_path, prefect_home) -> None:
    recipe = write_recipe(tmp_path, picky_instructions())
    with PickyServer() as server:
        result = sftforge_run(recipe, server.base_url, prefect_home)
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    stage = manifest["stages"][-1]
    assert stage["name"] == "augment" and stage["in"] == stage["out"] == 20
    assert stage["augment"]["failed"] == 4
    assert stage["augment"]["failed_by_error"] == {
        "BadRequestError, HTTP 400": 2,
        "InternalServerError, HTTP 500": 2,
    }
    # The summary table has the failed figure, and the export keeps every record.
    assert "failed" in result.stdout and "4 failed" in result.stdout, result.stdout
    exported = [
        json.loads(line)
        for p in sorted((tmp_path / "out" / "export").rglob("*.jsonl"))
        for line in p.read_text().splitlines()
    ]
    assert sorted(r["status"] for r in exported) == ["done"] * 16 + ["failed"] * 4


@pytest.mark.slow
def test_a_low_failed_share_fails_the_run(tmp_path, prefect_home) -> None:
    recipe = write_recipe(tmp_path, picky_instructions())
    with PickyServer() as server:
        result = sftforge_run(
            recipe, server.base_url, prefect_home, "--set", "steps.0.fail_at_failed_share=0.1"
        )
    assert result.returncode == 1, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("sftforge: run failed: stage augment"), last
    assert "4/20 records failed (2 BadRequestError, HTTP 400: " in last, last
    assert "; 2 InternalServerError, HTTP 500: server error after max_attempts tries" in last
    assert not (tmp_path / "out" / "manifest.json").exists()
