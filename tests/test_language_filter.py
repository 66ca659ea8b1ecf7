"""The English filter keeps English (issue #13 §2) and still rejects other languages.

Real data from ../shared where it exists (skipped without it); hand-written records in
tests/data/language_filter_samples.jsonl otherwise: English that lid.176 misreads (short
prompts, unfenced code, tables, multiplication tables, numbers) and instructions and
conversations in German, French, Russian, Chinese, Japanese and Korean.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from sftforge.tasks.base.outcome import Rejected
from sftforge.tasks.base.step_protocol import StepContext
from sftforge.tasks.steps.filter_language import FilterLanguageStep, prose
from sftforge.tasks.steps.language_text import is_code_or_table
from tests.conftest import SHARED_DATA
from tests.helpers import conv

SAMPLES = Path(__file__).parent / "data" / "language_filter_samples.jsonl"
OTHER_LANGUAGES = ("de", "fr", "ru", "zh", "ja", "ko")
# How the shipped recipes check: conversations (demo, openchat) and SelFee's instructions.
SCOPES = (["user", "all"], ["user", "assistant"])


def record(row: dict[str, Any]) -> dict[str, Any]:
    if row["kind"] == "instruction":
        fields = {k: row[k] for k in ("instruction", "input", "output")}
        return {"id": "i", "source": "t", **fields, "meta": {}}
    roles = ("user", "assistant")
    return conv(*((roles[i % 2], text) for i, text in enumerate(row["turns"])))


def samples(lang: str, case: str | None = None) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in SAMPLES.read_text(encoding="utf-8").splitlines()]
    return [record(r) for r in rows if r["lang"] == lang and case in (None, r.get("case"))]


def shared(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"../shared/data/{name} is not here")
    return path


def alpaca_seed_records() -> list[dict[str, Any]]:
    """The 175 Alpaca seed tasks, one instruction record per instance."""
    tasks = [json.loads(line) for line in shared("alpaca_seed_tasks.jsonl").open()]
    return [
        {"id": t["id"], "source": "alpaca", "instruction": t["instruction"], **inst, "meta": {}}
        for t in tasks
        for inst in t["instances"]
    ]


def shipped_filter(scopes: list[str], **options: Any) -> Any:
    """The step as a recipe builds it: the step's defaults, not the function's."""
    step = FilterLanguageStep(step="filter_language", scopes=scopes, **options)
    return step.make(StepContext())


def rejected(keep: Any, records: list[dict[str, Any]]) -> list[Rejected]:
    return [out for out in map(keep, records) if isinstance(out, Rejected)]


# ------------------------------------------------------------ prose: code, tables, numbers out


def test_prose_leaves_out_unfenced_code_tables_and_numbers():
    cpp = "What does this print?\n#include <iostream>\nint main() {\n    int x = 5;\n"
    cpp += "    std::cout << x * 2 << std::endl;\n    return 0;\n}"
    assert prose(cpp, 2000) == "What does this print?"
    python = "Fix this:\ndef f(items):\n    for i in range(len(items)):\n        items[i] += 1"
    assert prose(python, 2000) == "Fix this:"
    html = '<!DOCTYPE html>\n<html>\n<body>\n<div class="card">Welcome home</div>\n</body>'
    assert prose(html, 2000) == "Welcome home"
    table = "Planets:\n| Planet | Moons |\n|---|---|\n| Earth | 1 |\n| Mars | 2 |"
    assert prose(table, 2000) == "Planets:"
    times = "The 7 times table:\n7 x 1 = 7\n7 x 2 = 14\n7 x 3 = 21"
    assert prose(times, 2000) == "The 7 times table:"


def test_sentences_with_brackets_and_names_are_prose():
    for line in (
        "Born: October 28, 1955 (age 66)",
        "Ingredients (Makes 4 servings):",
        "Die Funktion gibt eine neue Liste zurück (siehe oben).",
        "For each entity, return the link; if none, say so.",
        "使用 Python 的 requests 库发送请求。",
    ):
        assert not is_code_or_table(line), line


# ------------------------------------------------------------ English is kept


def test_alpaca_seed_tasks_are_kept():
    records = alpaca_seed_records()
    for scopes in SCOPES:
        lost = rejected(shipped_filter(scopes), records)
        if scopes == ["user", "all"]:
            # Before: "Write a knock knock joke about bananas." was Spanish (0.22).
            assert len(lost) <= 0.005 * len(records), [r.detail for r in lost]
        else:
            # Before: 27 of 175 (code, "Yes", "[-4, 2, 5]", a table as Polish). Only the
            # outputs really in another language remain: a Chinese translation, an Arabic
            # sentence, Italian dish names.
            assert {r.detail.split(" ")[1] for r in lost} <= {"zh", "ar", "it"}, lost
            assert len(lost) <= 3


def test_vicuna_questions_are_kept():
    lines = shared("vicuna80_questions.jsonl").open()
    records = [conv(("user", json.loads(line)["text"])) for line in lines]
    assert rejected(shipped_filter(["user", "all"]), records) == []


@pytest.mark.parametrize("scopes", SCOPES)
@pytest.mark.parametrize("case", ["short", "code", "table", "numbers"])
def test_english_that_lid176_misreads_is_kept(case, scopes):
    records = samples("en", case)
    assert records
    lost = rejected(shipped_filter(scopes), records)
    assert lost == [], [r.detail for r in lost]


def test_short_prompts_are_undetermined_with_their_scores_kept():
    keep = shipped_filter(["user"])
    for prompt, guess in (
        ("Write an 1850-word horror story.", "en"),  # en 0.07 before: low_language_score
        ("Write a biography of Albert Einstein.", "de"),  # de 0.28 before: wrong_language
    ):
        out = keep(conv(("user", prompt), ("assistant", "Sure.")))
        assert isinstance(out, dict), out
        user = out["meta"]["language"]["user"]
        assert user["lang"] == "und" and user["why"] == "short"
        assert user["top"][0][0] == guess and 0 < user["score"] < 0.75
        assert out["meta"]["language_verdict"] == "und"


def test_a_scope_that_can_be_judged_decides_the_record():
    keep = shipped_filter(["user", "all"])
    answer = "Albert Einstein was born in Ulm in 1879 and developed the theory of relativity."
    out = keep(conv(("user", "Write a biography of Albert Einstein."), ("assistant", answer)))
    assert out["meta"]["language"]["user"]["lang"] == "und"
    assert out["meta"]["language"]["all"]["lang"] == "en"
    assert out["meta"]["language_verdict"] == "en"


# ------------------------------------------------------------ undetermined: kept, counted, optional


def test_undetermined_records_are_kept_by_default_or_rejected_when_asked():
    record = conv(("user", "2+2?"), ("assistant", "4"))  # no words: numbers only
    kept = shipped_filter(["user", "all"])(record)
    assert kept["meta"]["language_verdict"] == "und"
    assert kept["meta"]["language"]["all"]["why"] == "no_prose"
    out = shipped_filter(["user", "all"], undetermined="reject")(record)
    assert isinstance(out, Rejected) and out.reason == "language_undetermined"
    assert out.detail == "user: no_prose (0.0), all: no_prose (0.0)"
    with pytest.raises(ValidationError):
        FilterLanguageStep(step="filter_language", undetermined="drop")


def test_only_fenced_code_is_still_language_unknown():
    fenced = conv(("user", "```\nSELECT * FROM t;\n```"), ("assistant", "```sql\nSELECT 1;\n```"))
    out = shipped_filter(["user", "all"])(fenced)
    assert isinstance(out, Rejected) and out.reason == "language_unknown"


def test_step_counts_kept_records_by_verdict():
    step = FilterLanguageStep(step="filter_language")
    keep = step.make(StepContext())
    records = [
        conv(("user", "Write an 1850-word horror story."), ("assistant", "Sure.")),
        conv(("user", "Hi"), ("assistant", "Hello! How can I help you today with your plans?")),
        conv(("user", "Explain photosynthesis to a ten-year-old, please, in a few sentences.")),
    ]
    kept = [out for out in map(keep, records) if isinstance(out, dict)]
    parts = [step.summarize(kept[:1]), step.summarize(kept[1:])]
    assert FilterLanguageStep.combine_summaries(parts) == {"en": 2, "und": 1}


# ------------------------------------------------------------ other languages are rejected


@pytest.mark.parametrize("scopes", SCOPES)
def test_other_languages_are_still_rejected(scopes):
    keep = shipped_filter(scopes)
    caught: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    for lang in OTHER_LANGUAGES:
        records = samples(lang)
        assert len(records) >= 50
        sizes[lang] = len(records)
        caught[lang] = sum(out.reason == "wrong_language" for out in rejected(keep, records))
    assert sum(caught.values()) >= 0.98 * sum(sizes.values()), caught
    # The misses, both French: "D'accord." (lid.176: en 0.71) and the greeting "Salut / Salut !
    # Quoi de neuf ?" (it 0.31, fr 0.19: undetermined, so kept).
    for lang in OTHER_LANGUAGES:
        assert caught[lang] >= sizes[lang] - 2, (lang, caught[lang], sizes[lang])


def test_short_text_in_another_script_is_not_english():
    keep = shipped_filter(["user", "all"])
    # lid.176 ranks en (0.34) or fr (0.48) first on these; their script says otherwise.
    for prompt in ("按照金庸武侠的风格，生成小说", "请你用python写一下Dijkstra算法的代码"):
        out = keep(conv(("user", prompt)))
        assert isinstance(out, Rejected) and out.detail.startswith("user: zh"), out


def test_dreamer_chinese_instructions_are_rejected():
    folder = shared("dreamer_test_data")
    prompts = [p for f in sorted(folder.glob("*.json")) for p in json.loads(f.read_text())]
    lost = rejected(shipped_filter(["user", "all"]), [conv(("user", p)) for p in prompts])
    # Kept: three Chinese requests to translate or rate an English passage, mostly English.
    assert len(lost) >= len(prompts) - 3
