from __future__ import annotations

import subprocess
import sys

from sftforge.tasks.base.outcome import Rejected
from sftforge.tasks.steps.dedup_exact import DedupExactStep, conversation_key
from sftforge.tasks.steps.filter_blocked_words import make_blocked_words_filter
from sftforge.tasks.steps.filter_language import detect_language, make_language_filter, prose
from sftforge.tasks.steps.filter_model import make_model_filter
from tests.helpers import conv, run_filter_pass

EN_Q = "Can you explain how photosynthesis works in plants, step by step?"
EN_A = "Plants capture light energy with chlorophyll and turn water and carbon dioxide into sugar."


# ------------------------------------------------------------ blocked words


def test_blocked_words_case_insensitive_substring():
    keep = make_blocked_words_filter(["openai", "chatgpt"])
    out = keep(conv(("user", "hi there"), ("assistant", "I was trained by OpenAI's team.")))
    assert isinstance(out, Rejected) and out.reason == "blocked_word"
    assert "'openai'" in out.detail and "message 1" in out.detail
    record = conv(("user", "hello"), ("assistant", "An open AI model"))
    assert keep(record) is record


def test_blocked_words_recipe_decides_the_list():
    openchat = make_blocked_words_filter(["openai"])
    record = conv(("user", "Is ChatGPT good?"), ("assistant", "It depends."))
    assert openchat(record) is record
    assert isinstance(make_blocked_words_filter(["openai", "chatgpt"])(record), Rejected)


def test_blocked_words_regex_characters_are_literal():
    keep = make_blocked_words_filter(["c++", "a.b"])
    assert isinstance(keep(conv(("user", "I love C++"), ("assistant", "ok"))), Rejected)
    record = conv(("user", "axb"), ("assistant", "ok"))
    assert keep(record) is record


# ------------------------------------------------------------ model


def test_model_filter_defaults_and_unknown():
    keep = make_model_filter(["Model: GPT-4", "gpt4"])
    assert keep(conv(("user", "q"), model="Model: GPT-4"))["model"] == "Model: GPT-4"
    assert keep(conv(("user", "q"), model="gpt4"))["model"] == "gpt4"
    out = keep(conv(("user", "q"), model="Model: Default (GPT-3.5)"))
    assert isinstance(out, Rejected) and out.reason == "model_not_allowed"
    assert keep(conv(("user", "q"), model=None)).reason == "model_unknown"
    record = conv(("user", "q"), model=None)
    assert make_model_filter(["gpt4"], keep_unknown=True)(record) is record


# ------------------------------------------------------------ dedup


def test_dedup_first_occurrence_survives_with_survivor_id():
    a = conv(("user", "Hi  there"), ("assistant", "Hello!"), id="a")
    b = conv(("user", "Hi there"), ("assistant", "Hello!\n"), id="b")  # whitespace differs only
    c = conv(("user", "Hi there"), ("assistant", "Hello?"), id="c")
    # b in a later shard: "first" is across shards, in input order
    results = run_filter_pass(DedupExactStep(step="dedup_exact"), [[a], [b, c]], "conversation")
    assert results[0] is a
    out = results[1]
    assert isinstance(out, Rejected) and out.reason == "duplicate" and out.detail == "a"
    assert results[2] is c


def test_dedup_role_and_separator_matter():
    assert conversation_key([{"role": "user", "content": "ab"}]) != conversation_key(
        [{"role": "assistant", "content": "ab"}]
    )
    one = [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]
    two = [{"role": "user", "content": "a b"}]
    assert conversation_key(one) != conversation_key(two)


def test_dedup_key_is_stable_across_processes():
    # Python's hash() is salted per process; ours must not be.
    code = (
        "from sftforge.tasks.steps.dedup_exact import conversation_key;"
        "print(conversation_key([{'role':'user','content':'héllo wörld'}]).hex())"
    )
    keys = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
        ).stdout.strip()
        for seed in ("1", "2", "3")
    }
    assert len(keys) == 1
    assert keys == {conversation_key([{"role": "user", "content": "héllo wörld"}]).hex()}


# ------------------------------------------------------------ language


def test_detect_language_offline_bundled_model():
    assert detect_language(EN_A)[0] == "en"
    assert detect_language("Je voudrais réserver une table pour deux personnes ce soir.")[0] == "fr"
    assert detect_language("请帮我写一首关于春天的短诗。")[0] == "zh"
    assert detect_language("   ") == ("und", 0.0)


def test_language_filter_keeps_english_and_records_meta():
    keep = make_language_filter(["en"], min_score=0.3)
    out = keep(conv(("user", EN_Q), ("assistant", EN_A)))
    assert out["meta"]["language"]["user"]["lang"] == "en"
    assert out["meta"]["language"]["all"]["lang"] == "en"
    assert 0.3 <= out["meta"]["language"]["all"]["score"] <= 1.0


def test_language_filter_rejects_other_languages_on_user_turns():
    keep = make_language_filter(["en"], min_score=0.3)
    # The answer is English, the user wrote Spanish: the user scope catches it.
    out = keep(
        conv(
            ("user", "¿Puedes explicarme cómo funciona la fotosíntesis de manera sencilla?"),
            ("assistant", EN_A + " " + EN_A),
        )
    )
    assert isinstance(out, Rejected) and out.reason == "wrong_language"
    assert out.detail.startswith("user: es")


def test_language_filter_min_score_and_scopes():
    strict = make_language_filter(["en"], min_score=0.99999)
    out = strict(conv(("user", "ok so"), ("assistant", EN_A)))
    assert isinstance(out, Rejected) and out.reason in ("low_language_score", "wrong_language")
    only_all = make_language_filter(["en"], min_score=0.3, scopes=["all"])
    assert isinstance(only_all(conv(("user", EN_Q), ("assistant", EN_A))), dict)


def test_code_is_not_a_language():
    text = "Fix this please\n```python\ndef f(x):\n    return x\n```\nand `x_y`"
    assert prose(text, 2000) == "Fix this please and"
    keep = make_language_filter(["en"], min_score=0.0, scopes=["user"])
    out = keep(conv(("user", "```\nSELECT * FROM t;\n```"), ("assistant", EN_A)))
    assert isinstance(out, Rejected) and out.reason == "language_unknown"


def test_language_filter_custom_model_path_must_exist(tmp_path):
    import pytest

    with pytest.raises(FileNotFoundError):
        make_language_filter(["en"], model_path=str(tmp_path / "lid.176.bin"))(
            conv(("user", EN_Q), ("assistant", EN_A))
        )
