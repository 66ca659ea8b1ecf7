"""Bad instruction input: each bad row is a reject with its reason; an unreadable file is
one clear exit-2 line naming it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from sftforge.flows.cli import main
from sftforge.schemas.recipe import SourceConfig
from sftforge.tasks.pipeline.read_stage import SourceConverter
from sftforge.tasks.readers.sources import UnreadableInput, iter_source

MAPPING = {"instruction": "{instruction}", "input": "{input}", "output": "{output}"}


def convert(path: Path, **source_kw) -> tuple[list[dict], list[dict]]:
    source = SourceConfig(name="s", format="hf", path=str(path), mapping=MAPPING, **source_kw)
    convert = SourceConverter(source)
    kept, rejects = [], []
    for item in iter_source(source, [path]):
        for record, reject in convert(item):
            (kept if record is not None else rejects).append(record or reject)
    return kept, rejects


def test_missing_fields_wrong_types_empty_instructions(tmp_path):
    rows = [
        {"instruction": "Name a colour.", "input": "", "output": "Blue."},
        {"instruction": "No output here", "input": ""},
        {"instruction": ["a", "list"], "input": "", "output": "x"},
        {"instruction": "   ", "input": "", "output": "x"},
        {"instruction": "Add", "input": 3, "output": "4"},
    ]
    path = tmp_path / "a.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    kept, rejects = convert(path)
    assert [r["instruction"] for r in kept] == ["Name a colour.", "Add"]
    assert kept[1]["input"] == "3"
    # Rows are read one by one (#12): the row without an output is missing that field.
    assert [r["reason"] for r in rejects] == ["missing_field", "wrong_type", "empty_instruction"]
    assert "no field 'output'" in rejects[0]["detail"]
    # The row exactly as written: nothing lost, nothing added.
    assert json.loads(rejects[0]["record"]) == rows[1]
    assert rejects[0]["detail"].startswith("a.jsonl:2:")


def test_csv_with_a_broken_quote_keeps_what_came_before(tmp_path):
    path = tmp_path / "a.csv"
    good = "".join(f'"Question {i}","","Answer {i}"\n' for i in range(3))
    path.write_text("instruction,input,output\n" + good + '"broken,"x","y"\n' + good)
    kept, rejects = convert(path)
    # Row by row (#12): the broken row is one reject with its line and text, none lost.
    assert [r["instruction"] for r in kept] == [f"Question {i}" for i in (0, 1, 2, 0, 1, 2)]
    assert [r["reason"] for r in rejects] == ["invalid_csv"]
    assert "line 5" in rejects[0]["detail"] and rejects[0]["record"] == '"broken,"x","y"'


def test_parquet_with_a_different_schema_rejects_rows(tmp_path):
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"question": ["q1", "q2"], "answer": ["a1", "a2"]}), path)
    kept, rejects = convert(path)
    assert kept == [] and [r["reason"] for r in rejects] == ["missing_field", "missing_field"]


def write_recipe(tmp_path: Path, path: Path) -> Path:
    recipe = {
        "name": "bad",
        "output_dir": str(tmp_path / "out"),
        "sources": [{"name": "s", "format": "hf", "path": str(path), "mapping": MAPPING}],
        "outputs": [{"format": "alpaca_json"}],
    }
    config = tmp_path / "r.yaml"
    config.write_text(yaml.safe_dump(recipe))
    return config


@pytest.mark.usefixtures("prefect_harness")
def test_non_utf8_file_is_exit_2_naming_the_file(tmp_path, capsys):
    path = tmp_path / "latin1.json"
    path.write_bytes('[{"instruction": "caf\xe9", "input": "", "output": "x"}]'.encode("latin-1"))
    code = main(["run", str(write_recipe(tmp_path, path)), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and "latin1.json" in err and "Traceback" not in err


def test_unknown_extension_is_a_config_error(tmp_path, capsys):
    path = tmp_path / "data.xml"
    path.write_text("<rows/>")
    source = SourceConfig(name="s", format="hf", path=str(path), mapping=MAPPING)
    with pytest.raises(UnreadableInput, match="data.xml"):
        list(iter_source(source, [path]))


def test_unreachable_hub_dataset_is_one_line_from_validate(tmp_path):
    """validate opens a Hub dataset (#12): one line naming it, exit 2, no retry chatter."""
    recipe = {
        "name": "hub",
        "output_dir": str(tmp_path / "out"),
        "sources": [
            {"name": "s", "format": "hf", "dataset": "no-such-org/no-such-set", "mapping": MAPPING}
        ],
        "outputs": [{"format": "alpaca_json"}],
    }
    config = tmp_path / "r.yaml"
    config.write_text(yaml.safe_dump(recipe))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    cmd = [sys.executable, "-m", "sftforge.flows.cli", "validate", str(config)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "no-such-org/no-such-set" in done.stderr
    assert done.stderr.startswith("sftforge: ") and "Traceback" not in done.stderr


def test_csv_rows_keep_their_text_line_numbers_and_encoding(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(
        b"\xef\xbb\xbfinstruction,input,output\r\n"
        b'"Line one\r\nline two","","NA"\r\n'  # a quoted cell over two lines; NA stays text
        b'"Bad \xff byte","","x"\r\n'
        b'"Short row",""\r\n'
        b'"Last","","1.50"'  # no final newline
    )
    kept, rejects = convert(path)
    assert [(r["instruction"], r["output"]) for r in kept] == [
        ("Line one\r\nline two", "NA"),
        ("Last", "1.50"),
    ]
    assert [(r["reason"], r["detail"].split(":")[1], r["record"]) for r in rejects] == [
        ("invalid_unicode", "4", '"Bad \\xff byte","","x"'),
        ("invalid_csv", "5", '"Short row",""'),
    ]
