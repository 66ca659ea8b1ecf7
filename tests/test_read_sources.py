"""Readers and the read stage's parsing: every input item becomes a record or a reject."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from sftforge.schemas.recipe import ShareGPTFields, SourceConfig
from sftforge.tasks.base.outcome import Rejected
from sftforge.tasks.readers.sharegpt import to_conversation, to_sharegpt
from sftforge.tasks.readers.sources import iter_sharegpt_file, iter_source

GOOD = {
    "id": "a1",
    "model": "gpt4",
    "conversations": [
        {"from": "human", "value": "Hello there, how are you?"},
        {"from": "gpt", "value": "<p>Fine!</p>"},
    ],
}


def items(path: Path):
    return list(iter_sharegpt_file(path))


def test_jsonl_with_bad_lines_and_blank_lines(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_bytes(
        (json.dumps(GOOD) + "\n\n{not json\n" + json.dumps({**GOOD, "id": "a2"}) + "\n").encode()
        + b'{"id": "bad-utf8", "v": "\xff\xfe"}\n'
    )
    got = items(path)
    assert [i.value["id"] for i in got if i.value] == ["a1", "a2"]
    errors = [i for i in got if i.error]
    assert len(errors) == 2
    assert errors[0].where == "d.jsonl:3" and errors[0].text == "{not json"
    # Bad bytes are named as such (#12), and kept visible as escapes in the reject's text.
    assert errors[1].reason == "invalid_unicode"
    assert errors[1].text == '{"id": "bad-utf8", "v": "\\xff\\xfe"}'


def test_json_list_is_streamed(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps([GOOD, {**GOOD, "id": "a2"}], indent=2))
    got = items(path)
    assert [i.value["id"] for i in got] == ["a1", "a2"]
    assert isinstance(got[0].value["conversations"], list)


def test_json_list_truncated_keeps_the_head_and_reports_the_rest(tmp_path):
    path = tmp_path / "d.json"
    text = json.dumps([GOOD, {**GOOD, "id": "a2"}, {**GOOD, "id": "a3"}])
    path.write_text(text[: len(text) - 40])
    got = items(path)
    assert [i.value["id"] for i in got if i.value] == ["a1", "a2"]
    # The cut record is one reject that keeps its text (#12): nothing is lost.
    assert got[-1].reason == "truncated_input" and "ends inside a record" in got[-1].error
    assert got[-1].text == text[: len(text) - 40][text.index('{"id": "a3"') :]


def test_json_file_holding_jsonl_and_gzip(tmp_path):
    path = tmp_path / "d.json.gz"
    with gzip.open(path, "wt") as fh:
        fh.write(json.dumps(GOOD) + "\n" + json.dumps({**GOOD, "id": "a2"}) + "\n")
    assert [i.value["id"] for i in items(path)] == ["a1", "a2"]


def test_empty_files_give_nothing(tmp_path):
    for name in ("e.json", "e.jsonl"):
        (tmp_path / name).write_text("")
        assert items(tmp_path / name) == []
    (tmp_path / "w.json").write_text("  \n ")
    assert items(tmp_path / "w.json") == []


def test_saved_share_page(tmp_path):
    payload = {
        "props": {
            "pageProps": {
                "id": "Xyz12",
                "content": {
                    "title": "T",
                    "model": {"slug": "gpt-4", "title": "GPT-4"},
                    "items": GOOD["conversations"],
                },
            }
        }
    }
    page = tmp_path / "p.html"
    page.write_text(
        '<html><script id="__NEXT_DATA__" type="application/json">'
        + json.dumps(payload).replace("</", "<\\/")
        + "</script></html>"
    )
    (got,) = items(page)
    record = to_conversation(got.value, "s", ShareGPTFields(), "fallback")
    assert record["id"] == "Xyz12" and record["model"] == "GPT-4"
    assert record["meta"] == {"title": "T"}
    assert [m["role"] for m in record["messages"]] == ["user", "assistant"]
    (tmp_path / "bad.html").write_text("<html>nothing</html>")
    (bad,) = items(tmp_path / "bad.html")
    assert bad.reason == "invalid_record"


def test_hf_source_reads_local_files_through_datasets(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(json.dumps({**GOOD, "id": f"h{i}"}) for i in range(5)) + "\n")
    source = SourceConfig(name="hf", format="hf", path=str(path))
    got = list(iter_source(source, [path]))
    assert [i.value["id"] for i in got] == [f"h{i}" for i in range(5)]


@pytest.mark.parametrize(
    "value, detail",
    [
        ([1, 2], "expected an object"),
        ({"id": "x"}, "is not a list (missing)"),
        ({"id": "x", "conversations": "hi"}, "is not a list (str)"),
        ({"id": "x", "conversations": ["hi"]}, "turn 0 is not an object"),
        ({"id": "x", "conversations": [{"value": "hi"}]}, "turn 0 has no `from`"),
        ({"id": "x", "conversations": [{"from": "human", "value": 3}]}, "turn 0: `value` is int"),
        ({"id": "x", "conversations": [{"from": "human"}]}, "turn 0: `value` is missing"),
    ],
)
def test_invalid_records(value, detail):
    out = to_conversation(value, "s", ShareGPTFields(), "fb")
    assert isinstance(out, Rejected) and out.reason == "invalid_record"
    assert detail in out.detail


def test_roles_map_and_unknown_roles_survive_for_check_structure():
    value = {
        "conversations": [
            {"from": "system", "value": "s"},
            {"from": "human", "value": "q"},
            {"from": "gpt", "value": "a"},
            {"from": "bot", "value": "?"},
        ]
    }
    out = to_conversation(value, "s", ShareGPTFields(), "fallback-id")
    assert [m["role"] for m in out["messages"]] == ["system", "user", "assistant", "bot"]
    assert out["id"] == "fallback-id" and out["model"] is None


def test_custom_field_names_and_round_trip():
    fields = ShareGPTFields(id="uid", conversations="turns", role="role", content="text", model="m")
    value = {
        "uid": 7,
        "m": "gpt4",
        "turns": [{"role": "user", "text": "q"}, {"role": "assistant", "text": "a"}],
    }
    out = to_conversation(value, "s", fields, "fb")
    assert out["id"] == "7" and out["model"] == "gpt4"
    assert to_sharegpt(out) == {
        "id": "7",
        "model": "gpt4",
        "conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}],
    }
