"""SelFee's rules in the loop: the teacher's folded question, the early exit on "N/A", where
the clean-ups apply, one call per record, and the record id header."""

from __future__ import annotations

import pytest
from augment_support import NEEDED, NOT_NEEDED, fast_config, script, sent
from augment_support import instruction_record as record

from sftforge.tasks.steps.augment import augment_records


def test_teacher_folds_the_input_into_the_instruction(start_server, api_env, tmp_path) -> None:
    """SelFee's teacher asks the instruction and input as one question, and writes it so."""
    server = start_server()
    api_env(server)
    script(server, "n + 1", NOT_NEEDED)
    config = fast_config(preset="selfee_teacher")
    rec = record(input="n = 41", output="n + 1")
    (out,) = augment_records([rec], config, tmp_path / "j.sqlite")
    assert sent(server)[0] == [{"role": "user", "content": "Add one to n\nn = 41"}]
    assert (out["instruction"], out["input"], out["output"]) == (
        "Add one to n\nn = 41",
        "",
        "n + 1",
    )


@pytest.mark.parametrize(
    ("preset", "gold", "stops"),
    [("selfee", "", True), ("selfee_teacher", "n + 1", True), ("selfee_teacher", "N/A", False)],
)
def test_a_revision_saying_na_ends_the_chain(
    start_server, api_env, tmp_path, preset, gold, stops
) -> None:
    """SelFee's early exit: a revision containing "N/A" is dropped and the chain ends there,
    not truncated -- in the teacher script only when the gold answer has no "N/A" itself."""
    server = start_server()
    api_env(server)
    script(server, "n + 2", NEEDED, "N/A: cannot tell", NOT_NEEDED)
    (out,) = augment_records([record(output=gold)], fast_config(preset=preset), tmp_path / "j")
    if stops:
        assert out["outputs"] == [{"output": "n + 2", "feedback": NEEDED}]
        assert (out["iteration"], out["iteration_truncated"]) == (1, False)
        assert len(sent(server)) == 3 and server.state.scenarios.pending()
    else:
        assert [p["output"] for p in out["outputs"]] == ["n + 2", "N/A: cannot tell"]
        assert out["iteration"] == 2 and len(sent(server)) == 4


def test_postprocessing_runs_on_what_the_model_wrote(start_server, api_env, tmp_path) -> None:
    """SelFee's clean-ups, where SelFee applied them: not on the first answer or the first
    critique; on revisions (remark and apology cut, its leading space kept) and on the
    critiques of revisions (the "but" rule)."""
    server = start_server()
    api_env(server)
    script(
        server,
        "I apologize, but here goes. n + 2",
        "Close, but revision is needed",
        "I apologize for the error. n + 1\nThis revision fixes the offset.",
        "Score 9. Right, but revision is not needed",
    )
    (out,) = augment_records([record()], fast_config(), tmp_path / "j.sqlite")
    assert out["outputs"] == [
        {
            "output": "I apologize, but here goes. n + 2",
            "feedback": "Close, but revision is needed",
        },
        {"output": " n + 1", "feedback": "Score 9.Revision is not needed"},
    ]
    # The chat carries the cleaned revision, as SelFee's did.
    assert sent(server)[3][3] == {"role": "assistant", "content": " n + 1"}


def test_records_asking_the_same_question_make_their_own_calls(
    start_server, api_env, tmp_path
) -> None:
    """SelFee made one call per record (temperature 1.0): two records with the same
    instruction get two samples, unless `share_calls` says to share identical calls."""
    server = start_server()
    api_env(server)
    twins = [record(id="t1"), record(id="t2")]
    script(server, "n + 1", NOT_NEEDED, "1 + n", NOT_NEEDED)
    config = fast_config(concurrency=1)
    first, second = augment_records(twins, config, tmp_path / "a.sqlite")
    assert len(sent(server)) == 4
    assert {first["output"], second["output"]} == {"n + 1", "1 + n"}
    # Rerun: each record's calls come from the journal, nothing is sent again.
    again = augment_records(twins, fast_config(concurrency=2), tmp_path / "a.sqlite")
    assert again == [first, second] and len(sent(server)) == 4
    script(server, "n + 1", NOT_NEEDED)
    shared = augment_records(twins, fast_config(share_calls=True), tmp_path / "b.sqlite")
    assert len(sent(server)) == 6 and shared[0]["outputs"] == shared[1]["outputs"]


def test_record_id_header(api_env, monkeypatch, tmp_path) -> None:
    """Each call names its record in the configured header, outside the request body."""
    from augment_support import PickyServer

    with PickyServer() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        config = fast_config(record_id_header="X-Record-Id")
        (out,) = augment_records([record(id="r-7")], config, tmp_path / "j.sqlite")
    assert out["status"] == "done" and out["iteration"] == 1
    assert [h.get("x-record-id") for h in server.seen] == ["r-7", "r-7"]
    plain = fast_config()
    assert "record_id_header" not in plain.model_dump(exclude_defaults=True)


def test_call_keys_name_their_record() -> None:
    from sftforge.tasks.steps.augment.journal import call_key
    from sftforge.tasks.steps.augment.loop import record_identity

    request = {"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": "hi"}]}
    shared = call_key(request, 0)
    assert call_key(request, 0, record=None) == shared  # share_calls: the content alone
    assert len({shared, call_key(request, 0, record="a"), call_key(request, 0, record="b")}) == 3
    assert record_identity(record(id="r1")) == "r1"
    # No id: the content names it, so a rerun finds the same keys.
    anonymous = {**record(), "id": None}
    assert record_identity(anonymous) == record_identity(dict(anonymous))
    assert record_identity(anonymous) != record_identity({**anonymous, "instruction": "other"})
