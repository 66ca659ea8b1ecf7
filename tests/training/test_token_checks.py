"""The §6 checks catch each kind of broken example."""

from __future__ import annotations

import pytest

from sftforge.tasks.outputs.token_checks import (
    TrainingFileError,
    check_ids_and_mask,
    check_special_tokens,
    check_supervised_text,
    supervised_runs,
)


def test_ids_masks_and_lengths() -> None:
    check_ids_and_mask([1, 2, 3], [False, True, True], vocab_size=4, max_length=3, where="ok")
    with pytest.raises(TrainingFileError, match="out of range"):
        check_ids_and_mask([1, 4], [0, 1], vocab_size=4, max_length=8, where="x")
    with pytest.raises(TrainingFileError, match="out of range"):
        check_ids_and_mask([-1, 2], [0, 1], vocab_size=4, max_length=8, where="x")
    with pytest.raises(TrainingFileError, match="2 ids but 3 mask"):
        check_ids_and_mask([1, 2], [0, 1, 1], vocab_size=4, max_length=8, where="x")
    with pytest.raises(TrainingFileError, match="longer than the context 2"):
        check_ids_and_mask([1, 2, 3], [0, 1, 1], vocab_size=4, max_length=2, where="x")


def test_special_tokens_only_where_the_template_put_them() -> None:
    specials = frozenset({1, 2, 9})
    check_special_tokens([1, 5, 9, 6, 9], expected={1: 1, 9: 2}, special_ids=specials,
                         truncated=False, where="ok")  # fmt: skip
    with pytest.raises(TrainingFileError, match="tokenized as text"):
        check_special_tokens([1, 2, 9], expected={1: 1, 9: 1}, special_ids=specials,
                             truncated=False, where="x")  # fmt: skip
    with pytest.raises(TrainingFileError, match="occurs 1 times, the template put 2"):
        check_special_tokens([1, 9], expected={1: 1, 9: 2}, special_ids=specials,
                             truncated=False, where="x")  # fmt: skip
    # a truncated example may have lost some
    check_special_tokens([1, 9], expected={1: 1, 9: 2}, special_ids=specials,
                         truncated=True, where="ok")  # fmt: skip


def test_supervised_runs() -> None:
    assert supervised_runs([False, True, True, False, True]) == [(1, 3), (4, 5)]
    assert supervised_runs([]) == [] and supervised_runs([False]) == []


def test_supervised_text() -> None:
    check_supervised_text(["Hi<e>", "Bye<e>"], ["Hi<e>", "Bye<e>"], truncated=False, where="ok")
    with pytest.raises(TrainingFileError, match="run 1 decodes to 'Human: Bye<e>'"):
        check_supervised_text(
            ["Hi<e>", "Human: Bye<e>"], ["Hi<e>", "Bye<e>"], truncated=False, where="x"
        )
    with pytest.raises(TrainingFileError, match="1 supervised runs"):
        check_supervised_text(["Hi<e>"], ["Hi<e>", "Bye<e>"], truncated=False, where="x")
    # truncated: fewer runs, the last a prefix (possibly ending inside a UTF-8 character)
    check_supervised_text(["Hi<e>", "By"], ["Hi<e>", "Bye<e>", "x"], truncated=True, where="ok")
    check_supervised_text(["你\ufffd"], ["你好<e>"], truncated=True, where="ok")
    with pytest.raises(TrainingFileError):
        check_supervised_text(["Hx"], ["Hi<e>"], truncated=True, where="x")
    # a SentencePiece decoder drops the space a run starts with
    check_supervised_text(["Hi"], [" Hi"], truncated=False, where="ok")
    # merged runs (no prefix between two replies) are compared as one text
    check_supervised_text(["Hi<e>Bye<e>"], ["Hi<e>", "Bye<e>"], truncated=False, where="ok")
