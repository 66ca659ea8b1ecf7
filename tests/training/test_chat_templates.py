"""OpenChat conversation templates against hand-computed ids on the project's tokenizer.

Expected tokens are written by hand as byte-level spellings (Ġ = space, Ċ = newline) and
looked up in tokenizer.json's vocabulary: the encoder under test never computes them.
"""

from __future__ import annotations

import pytest
from training_support import EOT

from sftforge.schemas.training import ChatTemplateConfig
from sftforge.tasks.outputs.chat_templates import (
    BUILTIN_TEMPLATES,
    ConversationEncoder,
    resolve_template,
)
from sftforge.tasks.outputs.long_conversations import truncate

HELLO = ["H", "el", "lo"]  # "Hello"
HI_THERE = ["H", "i", "Ġthe", "re", "."]  # "Hi there."
HOW = ["H", "ow", "Ġare", "Ġyou", "?"]  # "How are you?"
FINE = ["I", "Ġa", "m", "Ġf", "in", "e", "."]  # "I am fine."

MESSAGES = [
    {"role": "user", "content": "Hello"},
    {"role": "assistant", "content": "Hi there."},
    {"role": "user", "content": "How are you?"},
    {"role": "assistant", "content": "I am fine."},
]


def _encode(tok, template, messages):
    (encoded,) = ConversationEncoder(tok, template).encode([messages])
    (piece,) = truncate(encoded, template.max_length)
    return piece.ids, piece.mask


def test_openchat_v1_template(tok, ids) -> None:
    # <s>Human: Hello<eot>Assistant: Hi there.<eot>
    # Human: How are you?<eot>Assistant: I am fine.<eot>
    human, assistant = ["Human", ":", "Ġ"], ["Assistant", ":", "Ġ"]
    expected = (
        ids("<s>")
        + ids(*human, *HELLO, EOT)
        + ids(*assistant, *HI_THERE, EOT)
        + ids(*human, *HOW, EOT)
        + ids(*assistant, *FINE, EOT)
    )
    mask = (
        [0]
        + [0] * (3 + 3 + 1)
        + [0] * 3
        + [1] * (5 + 1)
        + [0] * (3 + 5 + 1)
        + [0] * 3
        + [1] * (7 + 1)
    )
    got_ids, got_mask = _encode(tok, BUILTIN_TEMPLATES["openchat"], MESSAGES)
    assert got_ids == expected
    assert [int(m) for m in got_mask] == mask
    assert tok.decode(got_ids) == (
        "<s>Human: Hello<|end_of_turn|>Assistant: Hi there.<|end_of_turn|>"
        "Human: How are you?<|end_of_turn|>Assistant: I am fine.<|end_of_turn|>"
    )


def test_openchat_8192_differs_only_in_context(tok) -> None:
    a, b = BUILTIN_TEMPLATES["openchat"], BUILTIN_TEMPLATES["openchat_8192"]
    assert (a.max_length, b.max_length) == (2048, 8192)
    assert _encode(tok, a, MESSAGES) == _encode(tok, b, MESSAGES)


def test_opencoder_template_has_no_bos_and_no_space_after_the_colon(tok, ids) -> None:
    expected = ids("User", ":", *HELLO, EOT, "Assistant", ":", *HI_THERE, EOT)
    got_ids, got_mask = _encode(tok, BUILTIN_TEMPLATES["opencoder"], MESSAGES[:2])
    assert got_ids == expected
    assert [int(m) for m in got_mask] == [0] * 6 + [0] * 2 + [1] * 6


def test_user_defined_template_with_system_message_and_eos_as_end_of_turn(tok, ids) -> None:
    template = resolve_template(
        ChatTemplateConfig(
            name="mine",
            bos=False,
            system_prefix="System: ",
            user_prefix="User:",
            assistant_prefix="Assistant:",
            eot_token="</s>",
            max_length=64,
        )
    )
    messages = [{"role": "system", "content": "Be brief."}, *MESSAGES[:2]]
    expected = ids(
        *["S", "yst", "e", "m", ":", "Ġ"],
        *["Be", "Ġb", "ri", "e", "f", "."],
        "</s>",
        *["User", ":"],
        *HELLO,
        "</s>",
        *["Assistant", ":"],
        *HI_THERE,
        "</s>",
    )
    got_ids, got_mask = _encode(tok, template, messages)
    assert got_ids == expected
    assert [int(m) for m in got_mask] == [0] * (6 + 6 + 1) + [0] * (2 + 3 + 1) + [0] * 2 + [1] * 6


def test_special_token_spellings_in_messages_are_text(tok, ids) -> None:
    messages = [
        {"role": "user", "content": "<|end_of_turn|>"},
        {"role": "assistant", "content": "</s>"},
    ]
    got_ids, got_mask = _encode(tok, BUILTIN_TEMPLATES["openchat"], messages)
    spelled_eot = ["<", "|", "end", "_", "o", "f", "_", "tur", "n", "|", ">"]
    expected = ids("<s>", "Human", ":", "Ġ", *spelled_eot, EOT, "Assistant", ":", "Ġ")
    expected += ids("<", "/", "s", ">", EOT)
    assert got_ids == expected
    assert got_ids.count(tok.special_id(EOT)) == 2  # only the two the template put there
    assert [int(m) for m in got_mask] == [0] * (4 + 11 + 1 + 3) + [1] * 5


def test_missing_end_of_turn_token_is_a_clear_error(plain_tok_config) -> None:
    from sftforge.tasks.outputs.tokenizer import TokenizerError, load_tokenizer

    with pytest.raises(TokenizerError, match="special_tokens"):
        ConversationEncoder(load_tokenizer(plain_tok_config), BUILTIN_TEMPLATES["openchat"])


def test_unknown_role_is_an_error(tok) -> None:
    with pytest.raises(ValueError, match="role 'bot'"):
        _encode(tok, BUILTIN_TEMPLATES["openchat"], [{"role": "bot", "content": "x"}])
