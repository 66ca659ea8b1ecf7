"""Issue #13 §5, conversation details: the ShareGPT extension's edit counter in user turns,
OpenChat's eval file, Guanaco's text as QLoRA trains on it (token ids: tests/training/
test_guanaco_qlora.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

import sftforge
from sftforge.tasks.base.step_protocol import StepContext
from sftforge.tasks.outputs.json_exports import export_row
from sftforge.tasks.readers.converters import guanaco_text, to_guanaco_text
from sftforge.tasks.steps.check_structure import check_structure
from sftforge.tasks.steps.html_to_markdown import HtmlToMarkdownStep

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
GUANACO_SAMPLE = REPO / "data" / "instructions" / "openassistant_guanaco.jsonl"
EOT = "<|end_of_turn|>"


def _clean(turns: list[tuple[str, str]], roles: list[str] | None = None) -> list[str]:
    options = {"step": "html_to_markdown", **({"roles": roles} if roles else {})}
    step = HtmlToMarkdownStep(**options).make(StepContext())
    record = {"id": "c", "messages": [{"role": r, "content": c} for r, c in turns]}
    return [m["content"] for m in step(record)["messages"]]


# --- the edit counter -------------------------------------------------------------------


def test_user_turns_lose_the_extensions_edit_counter() -> None:
    assert _clean(
        [
            ("user", "1 / 1How do I reverse a list in Python?"),
            ("assistant", "<p>1 / 1</p><p>Use <code>reversed()</code>.</p>"),
            ("user", " 2 / 3Describe it in one line. "),
            ("assistant", "<p>Done.</p>"),
        ]
    ) == [
        "How do I reverse a list in Python?",
        "Use `reversed()`.",  # the assistant's "1 / 1" went as before
        "Describe it in one line.",
        "Done.",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "1 / 2 cups of flour: how many grams is that?",
        "2 / 10 apples are rotten. What share is good?",  # "2 / 1" would be no counter
        "3 / 2Is this an improper fraction?",  # N > M: no counter the extension wrote
        "1 / 1",  # nothing after it: a user who typed a fraction
        "1/1How many?",  # the extension put spaces around the slash
    ],
)
def test_user_text_about_fractions_stays(text: str) -> None:
    assert _clean([("user", text), ("assistant", "<p>Sure.</p>")])[0] == text


def test_the_counter_goes_when_user_turns_are_converted_from_html_too() -> None:
    turns = [("user", "<p>2 / 2Write a haiku.</p>"), ("assistant", "<p>1 / 2 cup of tea.</p>")]
    assert _clean(turns, roles=["user"]) == ["Write a haiku.", "<p>1 / 2 cup of tea.</p>"]


def test_text_that_starts_with_a_number_keeps_it() -> None:
    turns = [("user", "1 / 13 ways to cook rice?"), ("assistant", "<p>Boil.</p>")]
    turns += [("user", "2 / 210 / 3 is what?"), ("assistant", "<p>3.33</p>")]
    assert _clean(turns)[::2] == ["3 ways to cook rice?", "10 / 3 is what?"]


def test_real_prompts_keep_every_character() -> None:
    """The 175 Alpaca seed tasks and the 80 Vicuna questions: unchanged as they are, and
    exactly themselves again under a glued counter (skips without ../shared)."""
    if not SHARED.exists():
        pytest.skip("../shared/data is not here")
    prompts = [json.loads(x)["text"] for x in (SHARED / "vicuna80_questions.jsonl").open()]
    for line in (SHARED / "alpaca_seed_tasks.jsonl").open():
        task = json.loads(line)
        prompts += [task["instruction"]]
        prompts += [f"{task['instruction']}\n{i['input']}" for i in task["instances"]]
        prompts += [i["output"] for i in task["instances"] if i["output"].strip()]
    prompts = [p.strip() for p in prompts if p.strip()]
    assert len(prompts) > 400
    for prompt in prompts:
        cleaned = _clean([("user", prompt), ("assistant", "ok")] * 2 + [("user", f"1 / 1{prompt}")])
        assert cleaned[0] == prompt and cleaned[4] == prompt, prompt


# --- Guanaco's text -----------------------------------------------------------------------

SPACED = "### Human: Hi there \n### Assistant: Hello!\n"


def _guanaco(text: str, i: int = 0) -> dict:
    record = guanaco_text({"text": text}, "oasst1", f"oasst1-{i}")
    assert isinstance(record, dict), record
    return record


def test_guanaco_text_round_trips_its_whitespace() -> None:
    record = _guanaco(SPACED)
    assert record["messages"] == [
        {"role": "user", "content": "Hi there"},
        {"role": "assistant", "content": "Hello!"},
    ]
    assert to_guanaco_text(record["messages"], record["meta"]) == SPACED
    # the other exports take the messages: stripped, as every other source's
    conversations = export_row("sharegpt_json", record)["conversations"]
    assert [c["value"] for c in conversations] == ["Hi there", "Hello!"]


def test_canonical_rows_carry_no_copy_of_their_text() -> None:
    texts = [json.loads(line)["text"] for line in GUANACO_SAMPLE.read_text().splitlines()]
    records = [_guanaco(text, i) for i, text in enumerate(texts)]
    assert all("text" not in r["meta"] for r in records)
    assert [to_guanaco_text(r["messages"], r["meta"]) for r in records] == texts


def test_trimmed_dialogues_keep_the_written_whitespace_of_what_is_left() -> None:
    text = "### Assistant: (cut)\n### Human: Hi \n### Assistant: Hello!\n### Human:  Bye?\n"
    record = check_structure(_guanaco(text), min_chars=1)  # drops both ends
    assert [m["content"] for m in record["messages"]] == ["Hi", "Hello!"]
    assert to_guanaco_text(record["messages"], record["meta"]) == (
        "### Human: Hi \n### Assistant: Hello!\n"
    )
    edited = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hey"}]
    assert to_guanaco_text(edited, record["meta"]) == "### Human: Hi### Assistant: Hey"


# --- recipes end to end -------------------------------------------------------------------

SHAREGPT_ROWS = [
    {
        "id": "sg1",
        "conversations": [
            {"from": "human", "value": "1 / 1How do I boil an egg?"},
            {"from": "gpt", "value": "<p>1 / 1</p><p>Put it in boiling water for 9 minutes.</p>"},
        ],
    },
    {
        "id": "sg2",
        "conversations": [
            {"from": "human", "value": "1 / 2 cups of rice: how much water?"},
            {"from": "gpt", "value": "<p>About one cup of water.</p>"},
        ],
    },
]


def _run(tmp_path: Path, recipe: dict, sources: dict[str, str]) -> sftforge.RunResult:
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return sftforge.run(str(path), inputs=sources, out=tmp_path / "out", sets=["runner.workers=1"])


@pytest.mark.usefixtures("prefect_harness")
def test_conversation_recipe_without_split(tmp_path: Path) -> None:
    """No counter in the exports' user turns; OpenChat's eval files exist (empty) and the
    manifest lists them."""
    data = tmp_path / "sharegpt.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in SHAREGPT_ROWS))
    recipe = {
        "name": "details",
        "output_dir": "unused",
        "sources": [{"name": "sg", "format": "sharegpt", "path": str(data)}],
        "steps": [{"step": "html_to_markdown"}, {"step": "check_structure"}],
        "outputs": [
            {"format": "sharegpt_json"},
            {
                "format": "openchat_tokens",
                "tokenizer": {"path": str(REPO / "data" / "tokenizer"), "special_tokens": [EOT]},
            },
        ],
    }
    result = _run(tmp_path, recipe, {"sg": str(data)})
    export = tmp_path / "out" / "export"
    sharegpt = json.loads((export / "sharegpt.json").read_text())
    assert [c["conversations"][0]["value"] for c in sharegpt] == [
        "How do I boil an egg?",
        "1 / 2 cups of rice: how much water?",
    ]
    assert json.loads((export / "openchat.eval.json").read_text()) == []
    assert json.loads((export / "openchat.eval.text.json").read_text()) == []
    assert pq.read_table(export / "openchat.eval.parquet").num_rows == 0
    assert len(json.loads((export / "openchat.train.json").read_text())) == 2
    entry = result.manifest["outputs"]["openchat_tokens"]
    assert str(export / "openchat.eval.json") in entry["files"]
    assert entry["counts"]["train_examples"] == 2 and "eval_examples" not in entry["counts"]


GUANACO_ROWS = [
    SPACED,
    "### Human:  Two spaces.### Assistant: One.\n\n### Human: Last?### Assistant: Yes. ",
]


@pytest.fixture(scope="module")
def guanaco_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("guanaco")
    data = tmp / "oasst1.jsonl"
    texts = GUANACO_ROWS + GUANACO_SAMPLE.read_text().splitlines()
    data.write_text("".join(json.dumps({"text": t}) + "\n" for t in GUANACO_ROWS))
    with data.open("a") as fh:
        fh.write("".join(line + "\n" for line in texts[len(GUANACO_ROWS) :]))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp)
        sftforge.run(
            str(REPO / "configs" / "guanaco_oasst1.yaml"),
            inputs={"oasst1": str(data)},
            out=tmp / "out",
            sets=["runner.workers=1"],
        )
    return tmp / "out"


@pytest.mark.usefixtures("prefect_harness")
def test_guanaco_recipe_keeps_the_written_text_in_meta(guanaco_run: Path) -> None:
    parts = sorted((guanaco_run / "dataset").rglob("*.parquet"))
    rows = [row for part in parts for row in pq.read_table(part).to_pylist()]
    metas = {r["id"]: json.loads(r["meta"]) for r in rows}
    kept = [m["text"] for m in metas.values() if "text" in m]
    assert sorted(kept) == sorted(GUANACO_ROWS)


@pytest.mark.usefixtures("prefect_harness")
def test_guanaco_recipe_export_is_byte_exact(guanaco_run: Path) -> None:
    path = guanaco_run / "export" / "openassistant-guanaco.jsonl"
    written = [json.loads(line)["text"] for line in path.read_text().splitlines()]
    assert set(GUANACO_ROWS) <= set(written)
