"""Declarative source mapping and the named converters."""

from __future__ import annotations

import pytest

from sftforge.schemas.recipe import InstructionMapping
from sftforge.tasks.base.outcome import Rejected
from sftforge.tasks.readers.converters import (
    code_contests,
    first_pair,
    guanaco_text,
    to_guanaco_text,
)
from sftforge.tasks.readers.mapping import (
    MappingError,
    explode,
    render,
    render_choice,
    to_instruction,
)

CONALA_PREFIX = "generate the python code snippet from the following natural language:\n"


def test_render_fields_paths_filters_and_braces():
    row = {"q": "Why?", "d": {"text": "Because"}, "opts": ["A)1", "B)2"], "l": [{"x": "first"}]}
    assert render("{q}\n{d.text}", row) == "Why?\nBecause"
    assert render("{opts|lines}", row) == "A)1\nB)2"
    assert render("{l[0].x}", row) == "first"
    assert render("{{literal}} {q}", row) == "{literal} Why?"
    assert render("{n}", {"n": 42}) == "42"
    assert render("[{n}]", {"n": None}) == "[]"
    assert render("{s|nospace}", {"s": "晚 风 摇 树"}) == "晚风摇树"


@pytest.mark.parametrize(
    "template, row, reason",
    [
        ("{missing}", {}, "missing_field"),
        ("{a[3]}", {"a": [1]}, "missing_field"),
        ("{a}", {"a": ["list"]}, "wrong_type"),
        ("{a|lines}", {"a": "text"}, "wrong_type"),
        ("{a|shout}", {"a": "x"}, "bad_template"),
    ],
)
def test_render_errors(template, row, reason):
    with pytest.raises(MappingError) as info:
        render(template, row)
    assert info.value.reason == reason


def test_choice_takes_first_non_empty_alternative():
    choice = ["{rewritten_intent}", "{intent}"]
    assert (
        render_choice(choice, {"rewritten_intent": None, "intent": "sort a list"}) == "sort a list"
    )
    assert render_choice(choice, {"rewritten_intent": "sort it", "intent": "x"}) == "sort it"
    assert render_choice(choice, {"rewritten_intent": "", "intent": "x"}) == "x"
    with pytest.raises(MappingError):
        render_choice(choice, {})


def test_explode_one_row_per_element():
    row = {"question": "q", "answers": [{"t": "a1"}, {"t": "a2"}]}
    assert [(s, r["answers"]["t"]) for s, r in explode(row, "answers")] == [
        (".0", "a1"),
        (".1", "a2"),
    ]
    assert list(explode(row, None)) == [("", row)]
    with pytest.raises(MappingError):
        list(explode({"answers": "x"}, "answers"))


def test_to_instruction_conala_prefix_and_meta():
    mapping = InstructionMapping(
        instruction=[CONALA_PREFIX + "{rewritten_intent}", CONALA_PREFIX + "{intent}"],
        output="{snippet}",
        id="conala-{question_id}",
    )
    row = {
        "question_id": 7,
        "intent": "reverse list x",
        "rewritten_intent": None,
        "snippet": "x[::-1]",
    }
    out = to_instruction(row, mapping, "conala", "conala", "fb", ["question_id"])
    assert out == {
        "id": "conala-7",
        "source": "conala",
        "dataset": "conala",
        "instruction": CONALA_PREFIX + "reverse list x",
        "input": "",
        "output": "x[::-1]",
        "meta": {"question_id": 7},
    }


def test_to_instruction_rejects_empty_and_missing():
    mapping = InstructionMapping(instruction="{q}", output="{a}")
    assert (
        to_instruction({"q": " ", "a": "x"}, mapping, "s", "d", "i", []).reason
        == "empty_instruction"
    )
    assert to_instruction({"q": "x", "a": ""}, mapping, "s", "d", "i", []).reason == "empty_output"
    assert to_instruction({"q": "x"}, mapping, "s", "d", "i", []).reason == "missing_field"
    assert to_instruction({"q": ["x"], "a": "y"}, mapping, "s", "d", "i", []).reason == "wrong_type"


GUANACO = (
    "### Human: Can you explain monopsony?### Assistant: A monopsony is a market with one buyer."
    "### Human: Give an example.### Assistant: A mining town with one employer."
)


def test_guanaco_text_round_trip():
    record = guanaco_text({"text": GUANACO}, "oasst1", "oasst1-0")
    assert [m["role"] for m in record["messages"]] == ["user", "assistant", "user", "assistant"]
    assert record["messages"][0]["content"] == "Can you explain monopsony?"
    assert to_guanaco_text(record["messages"]) == GUANACO
    assert guanaco_text({"text": "hello"}, "s", "i").reason == "wrong_format"
    assert guanaco_text({}, "s", "i").reason == "missing_field"


def test_code_contests_picks_a_python_solution():
    row = {
        "name": "1A_theatre",
        "description": "Count flagstones.",
        "solutions": {"language": [2, 1, 3], "solution": ["int main(){}", "print 1", "print(1)"]},
    }
    out = code_contests(row, "cc", "dmcc", "fb")
    assert out["output"] == "print(1)" and out["id"] == "1A_theatre" and out["dataset"] == "dmcc"
    row["solutions"] = {"language": [2], "solution": ["int main(){}"]}
    assert code_contests(row, "cc", "dmcc", "fb").reason == "no_python_solution"


def test_first_pair():
    conv = {
        "id": "c",
        "source": "sharegpt",
        "model": None,
        "meta": {"title": "t"},
        "messages": [
            {"role": "system", "content": "s"},
            {"role": "user", "content": "q1"},
            {"role": "assistant", "content": "a1"},
            {"role": "user", "content": "q2"},
            {"role": "assistant", "content": "a2"},
        ],
    }
    out = first_pair(conv, "sharegpt")
    assert (out["instruction"], out["output"], out["dataset"]) == ("q1", "a1", "sharegpt")
    conv["messages"] = [{"role": "assistant", "content": "a"}]
    assert isinstance(first_pair(conv, "sharegpt"), Rejected)
