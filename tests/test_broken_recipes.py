"""Broken recipes and command lines (issue #12, section 4): each one, through the real
`sftforge validate` and `sftforge run`, is exit 2 and exactly one stderr line `sftforge: …`
naming the file (or the `--set` / `--input` / `--out` it came from) and the key — never a
traceback, never a hang, never a file written."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

try:
    import resource
except ImportError:  # not on Windows
    resource = None  # type: ignore[assignment]

import sftforge
from sftforge.flows.cli import main
from sftforge.schemas.config_errors import MAX_RECIPE_BYTES, MAX_VALUES
from sftforge.schemas.loading import ConfigError, load_recipe
from sftforge.tasks.pipeline.request import reserved_stage_names

RECORD = (
    '{"id": "a", "conversations": [{"from": "human", "value": "hello there, how are you?"},'
    ' {"from": "gpt", "value": "fine, thank you, and you?"}]}\n'
)
BILLION_LAUGHS = "lol0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"lol{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]\n" for i in range(1, 10)
)


def base(tmp: Path) -> dict[str, Any]:
    """A recipe that validates: the cases break one thing in it."""
    return {
        "name": "t",
        "output_dir": str(tmp / "out"),
        "sources": [{"name": "s", "format": "sharegpt", "path": str(tmp / "in.jsonl")}],
        "steps": [{"step": "check_structure"}, {"step": "dedup_exact"}],
    }


Edit = Callable[[dict[str, Any], Path], None]


def put(key: str, value: Any) -> Edit:
    """An edit setting `a.b[0].c` (as `--set` names keys) to value."""
    parts = key.replace("[", ".").replace("]", "").split(".")

    def edit(data: dict[str, Any], tmp: Path) -> None:
        node: Any = data
        for part in parts[:-1]:
            node = node[int(part)] if part.isdigit() else node[part]
        last = parts[-1]
        node[int(last) if last.isdigit() else last] = value(tmp) if callable(value) else value

    return edit


def drop(key: str) -> Edit:
    def edit(data: dict[str, Any], tmp: Path) -> None:
        *parents, last = key.split(".")
        node: Any = data
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        del node[int(last) if last.isdigit() else last]

    return edit


@dataclass(frozen=True)
class Case:
    id: str
    # An edit of the base recipe; or top-level keys (YAML text) that replace the base's;
    # or, as bytes, the whole file.
    recipe: Edit | str | bytes | None = None
    args: tuple[str, ...] = ()  # {tmp} and {recipe} are filled in
    who: str = "FILE"  # what the line starts with: FILE (the recipe), --set, --input, --out …
    key: str = ""  # what the line must name
    config: str | None = None  # the CONFIG argument, when it is not the recipe written


CASES = [
    # --- every top-level key with a wrong type, unknown keys ---
    Case("name-list", put("name", [1]), key="name: expected a string"),
    Case("name-bool", put("name", True), key="name: expected a string, got True (quote it)"),
    Case("name-pattern", put("name", "my recipe!"), key="name: 'my recipe!' does not match"),
    Case("description-mapping", put("description", {"a": 1}), key="description"),
    Case("plugins-string", put("plugins", "mymod"), key="plugins: expected a list"),
    Case("plugins-missing", put("plugins", ["no_such_mod_x"]), key="plugins[0]: cannot import"),
    Case("output_dir-number", put("output_dir", 5), key="output_dir: expected a string"),
    Case("output_dir-empty", put("output_dir", ""), key="output_dir: must name a directory"),
    Case("output_dir-file", put("output_dir", lambda t: str(t / "in.jsonl")), key="output_dir"),
    Case("seed-string", put("seed", "abc"), key="seed: expected an integer"),
    Case("seed-huge", put("seed", 10**30), key="seed: number too large"),
    Case("seed-inf", "seed: .inf\n", key="seed: expected a finite number"),
    Case("sources-number", put("sources", 5), key="sources: expected a list"),
    Case("sources-empty", put("sources", []), key="sources: must not be empty"),
    Case("sources-item-number", put("sources", [5]), key="sources[0]: expected a mapping"),
    Case("steps-mapping", put("steps", {"step": "dedup_exact"}), key="steps: expected a list"),
    Case("outputs-string", put("outputs", "parquet"), key="outputs: expected a list"),
    Case("split-number", put("split", 0.1), key="split: expected a mapping"),
    Case("runner-string", put("runner", "local"), key="runner: expected a mapping"),
    Case("partitions-list", put("partitions", []), key="partitions: expected a mapping"),
    Case("unknown-top-key", put("colour", "red"), key="colour: unknown key"),
    Case("workers-huge", put("runner", {"workers": 10**12}), key="runner.workers: expected"),
    Case("shard_size-zero", put("runner", {"shard_size": 0}), key="runner.shard_size"),
    Case("split-empty", put("split", {}), key="split: give exactly one"),
    Case(
        "partitions-source",
        put("partitions", {"source": "x", "pattern": "d/{date}/*"}),
        key="partitions.source: no source named 'x'",
    ),
    Case("split-fraction", put("split", {"eval_fraction": 2}), key="split.eval_fraction"),
    # --- sources ---
    Case("source-format", put("sources[0].format", "xml"), key="sources[0].format: expected"),
    Case("source-no-path", drop("sources.0.path"), key="sources[0]: a sharegpt source needs"),
    Case("source-name", put("sources[0].name", "a b"), key="sources[0].name"),
    Case("source-missing-file", put("sources[0].path", "nope.jsonl"), key="sources[0].path"),
    Case("source-dev-null", put("sources[0].path", "/dev/null"), key="not a regular file"),
    Case("source-empty-glob", put("sources[0].path", lambda t: f"{t}/*.none"), key="nothing"),
    Case(
        "sources-same-name",
        put("sources", [{"name": "s", "format": "sharegpt", "path": "a"}] * 2),
        key="sources[1].name: two sources are named 's'",
    ),
    # --- steps: unknown, option types, stage names ---
    Case("unknown-step", put("steps[0].step", "translate"), key="steps[0]: unknown step"),
    Case("step-no-step-key", put("steps[0]", {"min_chars": 3}), key="steps[0]: each step needs"),
    Case("step-unhashable-tag", put("steps[0].step", [1]), key="steps[0]: unknown step"),
    Case("step-option-type", put("steps[0].min_chars", "x"), key="steps[0].min_chars: expected"),
    Case("step-option-nan", "steps: [{step: filter_language, min_score: .nan}]\n", key="min_score"),
    Case("step-unknown-option", put("steps[0].min_charz", 3), key="steps[0].min_charz: unknown"),
    Case("stage-twice", put("steps[1]", {"step": "check_structure"}), key="steps[1].step: stage"),
    Case(
        "stage-twice-by-case",
        put("steps", [{"step": "dedup_exact", "name": "Dedup_Exact"}, {"step": "dedup_exact"}]),
        key="steps[1].step: stage name 'dedup_exact' is used twice (steps[0] too)",
    ),
    *[
        Case(f"stage-{name}", put("steps[0].name", name), key="steps[0].name: stage name")
        for name in ("dataset", "export", "rejects", "read", "partitions", "DATASET")
    ],
    # --- outputs ---
    Case("output-format", put("outputs", [{"format": "xml"}]), key="outputs[0]: unknown format"),
    Case("output-no-format", put("outputs", [{}]), key="outputs[0]: each output needs"),
    Case("output-format-list", put("outputs", [{"format": [1]}]), key="outputs[0]: unknown"),
    Case(
        "output-shards-huge",
        put("outputs", [{"format": "jsonl", "shards": {"count": 10**9}}]),
        key="outputs[0].shards.count",
    ),
    Case(
        "outputs-same-file",
        put("outputs", [{"format": "jsonl"}, {"format": "jsonl"}]),
        key="outputs[0] and outputs[1] both write",
    ),
    Case("output-kind", put("outputs", [{"format": "alpaca_json"}]), key="outputs[0].format"),
    # --- the file itself: not a mapping, not YAML, not text, unsafe, explosive ---
    Case("recipe-list", b"- name: t\n- output_dir: o\n", key="expected a mapping at the top"),
    Case("recipe-empty", b"", key="the recipe is empty"),
    Case("recipe-scalar", b"just words\n", key="not a string"),
    Case("not-yaml", b"name: [unclosed\n", key="invalid YAML at line 2"),
    Case("yaml-tabs", b"name: t\n\tseed: 1\n", key="invalid YAML at line 2"),
    Case("binary", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", key="not a text file"),
    Case("nul-char", b"name: t\x00\n", key="invalid YAML at line 1"),
    Case(
        "python-tag",
        "name: !!python/object/apply:os.system [echo hi]\n",
        key="line 9: tag !!python/object/apply:os.system is not allowed",
    ),
    Case("two-documents", b"name: a\n---\nname: b\n", key="line 2: expected a single document"),
    Case("key-twice", b"steps: []\nname: t\nsteps: []\n", key="line 3: key 'steps' is given"),
    Case("billion-laughs", BILLION_LAUGHS.encode(), key="lol4: YAML aliases expand to over"),
    Case("alias-loop", "name: t\ndescription: &a [*a]\n", key="description[0]: a YAML alias"),
    Case("deep-nesting", "name: " + "[" * 5000 + "]" * 5000 + "\n", key="nested too deeply"),
    Case("int-5000-digits", "seed: " + "7" * 5000 + "\n", key="4300 digits"),
    Case("int-key", "5: x\n", key="5: keys must be strings"),
    Case("data-file-as-config", b'{"id": 1}\n' * (MAX_RECIPE_BYTES // 10 + 1), key="too large"),
    *(  # a device: read without end unless the read is bounded
        [Case("dev-zero-as-config", config="/dev/zero", key="too large")]
        if Path("/dev/zero").exists()
        else []
    ),
    Case("config-missing", config="{tmp}/absent.yaml", key="no such file"),
    Case("config-directory", config="{tmp}", key="cannot read"),
    Case("config-empty-arg", config="", who="CONFIG", key="expected a recipe file"),
    # --- --set ---
    Case("set-bad-yaml", args=("--set", "steps[0].roles=[user"), who="--set", key="steps[0]"),
    Case("set-python-tag", args=("--set", "name=!!python/name:os.system"), who="--set"),
    Case("set-at", args=("--set", "name=@x"), who="--set", key="invalid YAML"),
    Case("set-no-equals", args=("--set", "seed"), who="--set", key="expected KEY=VALUE"),
    Case("set-empty-key", args=("--set", "=5"), who="--set", key="bad key"),
    Case("set-no-item", args=("--set", "steps[9].x=1"), who="--set", key="no item 9"),
    Case("set-inside-string", args=("--set", "name.x=1"), who="--set", key="inside a string"),
    Case(
        "set-wrong-type",
        args=("--set", "steps[0].min_chars=abc"),
        who="--set",
        key="steps[0].min_chars: expected an integer",
    ),
    Case("set-reserved", args=("--set", "steps[0].name=export"), who="--set", key="steps[0].name"),
    Case("set-huge", args=("--set", "runner.workers=" + "9" * 30), who="--set", key="too large"),
    Case(
        "set-bomb",
        args=(
            "--set",
            "description="
            + "[&a [1,1,1,1,1,1,1,1,1,1],"
            + ",".join(
                f"&{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 10) + "]" for i in range(6)
            )
            + "]",
        ),
        who="--set",
        key="description",
    ),
    Case("set-newline", args=("--set", "description=a\nb: ["), who="--set", key="\\n"),
    Case("set-unknown-step", args=("--set", "steps[0]={step: nope}"), who="--set", key="steps[0]"),
    Case(
        "set-sources-input",
        args=("--set", "sources=5", "--input", "s={tmp}/in.jsonl"),
        who="--set",
        key="sources: expected a list",
    ),
    Case(
        "set-output_dir-file",
        args=("--set", "output_dir={recipe}"),
        who="--set",
        key="output_dir: is a file",
    ),
    # --- --input ---
    Case("input-no-equals", args=("--input", "s"), who="--input", key="expected NAME=PATH"),
    Case("input-no-path", args=("--input", "s="), who="--input", key="expected NAME=PATH"),
    Case("input-unknown-source", args=("--input", "x=a"), key="--input x: no source named 'x'"),
    Case("input-missing-file", args=("--input", "s={tmp}/nope"), key="--input s: no such file"),
    Case("input-long-name", args=("--input", "s=" + "x" * 5000), key="--input s: cannot read"),
    # --- --out ---
    Case("out-empty", args=("--out", ""), who="--out", key="expected a directory"),
    Case("out-blank", args=("--out", "  "), who="--out", key="expected a directory"),
    Case("out-is-file", args=("--out", "{recipe}"), who="--out", key="is a file"),
    Case("out-below-file", args=("--out", "{recipe}/sub"), who="--out", key="is below"),
    Case("out-name-too-long", args=("--out", "{tmp}/" + "o" * 5000), who="--out", key="cannot"),
]


def _prepare(case: Case, tmp: Path) -> tuple[str, list[str]]:
    """Write the input and the case's recipe; the CONFIG argument and the options."""
    (tmp / "in.jsonl").write_text(RECORD)
    recipe = tmp / "recipe.yaml"
    data = base(tmp)
    if isinstance(case.recipe, bytes):
        recipe.write_bytes(case.recipe)
    elif isinstance(case.recipe, str):  # a key given twice is an error of its own: replace
        for line in case.recipe.splitlines():
            data.pop(line.split(":", 1)[0], None)
        recipe.write_text(yaml.safe_dump(data, sort_keys=False) + case.recipe)
    else:
        if case.recipe is not None:
            case.recipe(data, tmp)
        recipe.write_text(yaml.safe_dump(data, sort_keys=False))

    def fill(text: str) -> str:  # not str.format: `--set` values hold braces
        return text.replace("{tmp}", str(tmp)).replace("{recipe}", str(recipe))

    config = str(recipe) if case.config is None else fill(case.config)
    return config, [fill(arg) for arg in case.args]


def check_line(err: str, case: Case, config: str) -> None:
    assert "Traceback" not in err
    assert err.endswith("\n") and err.count("\n") == 1, err
    line = err.removesuffix("\n")
    assert line.startswith("sftforge: "), line
    message = line.removeprefix("sftforge: ")
    who = config if case.who == "FILE" else case.who
    assert message.startswith(who), f"{message!r} should start with {who!r}"
    assert case.key in message, f"{message!r} should name {case.key!r}"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_validate_refuses_in_one_line(case, tmp_path, capsys):
    config, args = _prepare(case, tmp_path)
    assert main(["validate", config, *args]) == 2
    check_line(capsys.readouterr().err, case, config)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_run_refuses_before_anything_runs(case, tmp_path, capsys, monkeypatch):
    config, args = _prepare(case, tmp_path)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    assert main(["run", "--quiet", config, *args]) == 2
    check_line(capsys.readouterr().err, case, config)
    # refused before anything was written: no OUT, nothing in the working directory
    assert not (tmp_path / "out").exists() and list(work.iterdir()) == []


def _one_gib() -> None:
    """The child's address space capped at 1 GiB: a billion laughs expanded would need
    tens of GB (validating a good recipe takes ~100 MB), so eating memory fails the test."""
    assert resource is not None
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


SUBPROCESS = ["set-bad-yaml", "python-tag", "out-empty", "billion-laughs", "set-sources-input"]


@pytest.mark.parametrize("name", SUBPROCESS)
def test_no_traceback_reaches_stderr(name, tmp_path):
    """The installed entry point, in its own process: stderr is the one line and nothing
    else (no warning, no traceback), and the run does not hang or write anything."""
    case = next(c for c in CASES if c.id == name)
    config, args = _prepare(case, tmp_path)
    work = tmp_path / "cwd"
    work.mkdir()
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect")}
    for command in ("validate", "run"):
        done = subprocess.run(
            [sys.executable, "-m", "sftforge.flows.cli", command, config, *args],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,  # a hang fails here
            preexec_fn=_one_gib if resource is not None else None,
        )
        assert done.returncode == 2, done.stderr
        check_line(done.stderr, case, config)
        assert done.stdout == ""
    assert list(work.iterdir()) == []  # `--out ""` wrote nothing into the working directory


def test_a_set_message_says_it_came_from_set(tmp_path):
    config, _ = _prepare(Case("x"), tmp_path)
    with pytest.raises(ConfigError) as info:
        load_recipe(config, sets=["steps[0].min_chars=abc"])
    assert (
        str(info.value) == "--set steps[0].min_chars=abc: steps[0].min_chars: expected an integer"
    )
    # a problem with the item a --set went into: the file's key, and the --set named too
    with pytest.raises(
        ConfigError, match=r"steps\[0\] \(after --set steps\[0\]\.step=nope\): unknown step 'nope'"
    ):
        load_recipe(config, sets=["steps[0].step=nope"])


def test_reserved_stage_names_come_from_the_output_layout():
    assert {"dataset", "export", "rejects", "read", ".sftforge", "partitions"} <= set(
        reserved_stage_names()
    )


def test_what_merely_looks_alike_still_validates(tmp_path, capsys):
    """The checks refuse what is broken, not what looks like it: a stage name that starts
    with a reserved one, aliases and merge keys that expand to little, a key written once
    beside a merged one, a long list written out, an OUT that does not exist yet."""
    config, _ = _prepare(Case("ok"), tmp_path)
    data = base(tmp_path)
    words = "".join(f"      - word{i}\n" for i in range(MAX_VALUES + 10))
    data.pop("steps")
    Path(config).write_text(
        yaml.safe_dump(data, sort_keys=False)
        + "steps:\n"
        + "  - &check {step: check_structure, min_chars: 2}\n"
        + "  - <<: *check\n    name: check_again\n"
        + "  - {step: dedup_exact, name: dataset_dedup}\n"
        + "  - step: filter_blocked_words\n    words:\n"
        + words
    )
    sets = ["--set", "sources[0].meta_fields=[&k kind, *k]"]
    assert main(["validate", config, *sets, "--out", str(tmp_path / "new" / "deeper")]) == 0
    recipe = load_recipe(config)
    assert [s.stage for s in recipe.steps][:3] == [
        "check_structure",
        "check_again",
        "dataset_dedup",
    ]
    assert len(recipe.steps[3].words) == MAX_VALUES + 10
    capsys.readouterr()


def test_python_api_raises_config_error(tmp_path):
    config, _ = _prepare(Case("x"), tmp_path)
    with pytest.raises(sftforge.ConfigError, match=r"^--set 'a=b': expected a list"):
        sftforge.run(config, sets="a=b")
    with pytest.raises(sftforge.ConfigError, match=r"^--set steps\[0\]\.roles=\[user: invalid"):
        sftforge.run(config, sets=["steps[0].roles=[user"])
    with pytest.raises(sftforge.ConfigError, match=r"^--out '': expected a directory"):
        sftforge.run(config, out="")
    with pytest.raises(sftforge.ConfigError, match=r"^--input 5: expected"):
        sftforge.run(config, inputs=5)
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(BILLION_LAUGHS)
    with pytest.raises(sftforge.ConfigError, match="YAML aliases expand"):
        sftforge.Recipe.from_yaml(bomb)
    assert not (tmp_path / "out").exists()


def test_python_api_checks_out_before_writing_a_recipe_object(tmp_path, monkeypatch):
    """sftforge.run(Recipe, out=…) writes OUT/.sftforge/recipe.yaml: OUT is checked first."""
    config, _ = _prepare(Case("x"), tmp_path)
    recipe = sftforge.Recipe.from_yaml(config)
    monkeypatch.chdir(tmp_path)
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    for out, message in (("", "empty name"), (a_file, "is a file"), (a_file / "x", "is below")):
        with pytest.raises(sftforge.ConfigError, match=message):
            sftforge.run(recipe, out=out)
    assert not (tmp_path / ".sftforge").exists() and a_file.read_text() == "x"
