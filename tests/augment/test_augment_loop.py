"""The answer -> feedback -> revision loop against a real server with scripted replies."""

from __future__ import annotations

from pathlib import Path

import pytest
from augment_support import NEEDED, NOT_NEEDED, fast_config, script, sent
from augment_support import instruction_record as record
from llmock.scenarios import Fail

from sftforge.tasks.steps.augment import augment_records


def test_stops_when_the_feedback_says_not_needed(start_server, api_env, tmp_path: Path) -> None:
    server = start_server()
    api_env(server)
    script(server, "n + 2", NEEDED, "n + 1", NOT_NEEDED)
    (out,) = augment_records([record()], fast_config(), tmp_path / "j.sqlite")
    assert out["status"] == "done" and out["error"] is None
    assert out["outputs"] == [
        {"output": "n + 2", "feedback": NEEDED},
        {"output": "n + 1", "feedback": NOT_NEEDED},
    ]
    assert (out["iteration"], out["iteration_truncated"], out["truncated"]) == (2, False, False)
    assert out["output"] == "n + 1"  # no answer of its own: the chain's final one
    assert out["usage"]["prompt_tokens"] > 0 and out["usage"]["cost"] > 0
    requests = sent(server)
    assert len(requests) == 4 and not server.state.scenarios.pending()
    # SelFee's Alpaca chats: the question with a line break after it; then one chat --
    # critique request, critique, request to revise, revision, its critique request.
    assert requests[0] == [{"role": "user", "content": "Add one to n\n"}]
    critique = requests[1][0]
    assert (
        len(requests[1]) == 1
        and "Add one to n\nHere is a proposed answer:\nn + 2" in (critique["content"])
    )
    assert [m["role"] for m in requests[2]] == ["user", "assistant", "user"]
    assert requests[2][:2] == [critique, {"role": "assistant", "content": NEEDED}]
    assert "Write as if the revised answer is the first try." in requests[2][2]["content"]
    assert requests[3][:3] == requests[2]
    assert requests[3][3] == {"role": "assistant", "content": "n + 1"}
    assert "Here is a proposed answer:\nn + 1" in requests[3][4]["content"]


def test_caps_at_five_pairs(start_server, api_env, tmp_path: Path) -> None:
    server = start_server()
    api_env(server)
    script(server, "a0", *[t for i in range(1, 5) for t in (NEEDED, f"a{i}")], NEEDED)
    (out,) = augment_records([record()], fast_config(), tmp_path / "j.sqlite")
    assert (out["iteration"], out["iteration_truncated"]) == (5, True)
    assert [pair["output"] for pair in out["outputs"]] == ["a0", "a1", "a2", "a3", "a4"]
    requests = sent(server)
    assert len(requests) == 10  # 1 answer, 5 feedbacks, 4 revisions
    # The second revision call carries every round since the chat began ...
    assert [m["content"] for m in requests[4] if m["role"] == "assistant"] == [
        NEEDED,
        "a1",
        NEEDED,
    ]
    # ... and from the third answer on, each critique starts the chat afresh (SelFee's
    # last_flag): the last revision call holds only the fourth answer's critique and the
    # request to revise it, without "Write as if the revised answer is the first try".
    critique_a3, said, revise = requests[-2]
    assert "Here is a proposed answer:\na3" in critique_a3["content"]
    assert said == {"role": "assistant", "content": NEEDED}
    assert "within 500 words" in revise["content"] and "first try" not in revise["content"]
    assert len(requests[-1]) == 1 and "Here is a proposed answer:\na4" in requests[-1][0]["content"]


def test_configurable_cap(start_server, api_env, tmp_path: Path) -> None:
    server = start_server()
    api_env(server)
    script(server, "a0", NEEDED, "a1", NEEDED)
    (out,) = augment_records([record()], fast_config(max_iterations=2), tmp_path / "j.sqlite")
    assert (out["iteration"], out["iteration_truncated"]) == (2, True)


def test_existing_answer_skips_the_answer_call(start_server, api_env, tmp_path: Path) -> None:
    server = start_server()
    api_env(server)
    script(server, NOT_NEEDED)
    (out,) = augment_records([record(output="n + 1")], fast_config(), tmp_path / "j.sqlite")
    assert out["outputs"] == [{"output": "n + 1", "feedback": NOT_NEEDED}]
    assert out["output"] == "n + 1"
    (only,) = sent(server)
    assert "Here is a proposed answer:\nn + 1" in only[0]["content"]


def test_teacher_preset_keeps_the_gold_answer(start_server, api_env, tmp_path: Path) -> None:
    server = start_server()
    api_env(server)
    script(server, "n+2", NEEDED, "n+1", NOT_NEEDED)
    config = fast_config(preset="selfee_teacher")
    (out,) = augment_records([record(output="n + 1  # gold")], config, tmp_path / "j.sqlite")
    assert out["output"] == "n + 1  # gold"
    assert [pair["output"] for pair in out["outputs"]] == ["n+2", "n+1"]
    requests = sent(server)
    assert requests[0] == [{"role": "user", "content": "Add one to n"}]  # the student answers
    assert "teaching assistant" in requests[1][0]["content"]
    assert requests[1][2] == {"role": "user", "content": "Here is the answer:\nn + 1  # gold\n"}
    assert "minimal edits" in requests[2][-1]["content"]
    # The student sees the teacher's critique as it is; the teacher, critiquing the revision,
    # still has its role, the question, the gold answer, the first answer and its critique.
    assert requests[2][1:3] == [
        {"role": "assistant", "content": "n+2"},
        {"role": "user", "content": NEEDED},
    ]
    assert requests[3][:4] == requests[1] and requests[3][4:6] == [
        {"role": "assistant", "content": NEEDED},
        {"role": "user", "content": "n+1"},
    ]
    assert requests[3][6]["content"].startswith("Here is a revised proposed answer:\nn+1\n\n")
    # Without a gold answer the teacher cannot work: failed, with the reason, nothing sent.
    (bad,) = augment_records([record(id="x2")], config, tmp_path / "j.sqlite")
    assert bad["status"] == "failed" and "gold" in bad["error"] and len(sent(server)) == 4


def test_a_failed_call_fails_the_record_and_the_rerun_retries_it(
    start_server, api_env, tmp_path: Path
) -> None:
    server = start_server()
    api_env(server)
    journal = tmp_path / "j.sqlite"
    rec = record(output="n + 1")  # the first call is the feedback
    server.state.scenarios.add(Fail(400, message="bad request"))
    (out,) = augment_records([rec], fast_config(), journal)
    assert out["status"] == "failed" and "HTTP 400" in out["error"]
    assert out["outputs"] == [] and out["iteration"] == 0
    assert len(sent(server)) == 1  # a 400 is never retried
    # Retryable, but failing on every attempt: failed after max_attempts, never dropped.
    server.state.scenarios.add(Fail(503, retry_after=0.01, times=2))
    (out,) = augment_records([rec], fast_config(max_attempts=2), journal)
    assert out["status"] == "failed" and "after 2 attempts" in out["error"]
    assert len(sent(server)) == 3
    script(server, NOT_NEEDED)
    (again,) = augment_records([rec], fast_config(), journal)
    assert again["status"] == "done" and again["error"] is None
    assert again["outputs"] == [{"output": "n + 1", "feedback": NOT_NEEDED}]
    assert len(sent(server)) == 4


def _replay_script(data: dict) -> list[str]:
    """The server's replies: answer, feedback, revision, feedback, ..."""
    return [text for pair in data["outputs"] for text in (pair["output"], pair["feedback"])]


def test_replaying_selfee_chains_reproduces_them(
    start_server, api_env, tmp_path: Path, selfee_records: list[dict]
) -> None:
    """SelFee's teacher-mode CoNaLa chains, replayed as the server's replies, come out of our
    loop with the same pairs (after the clean-ups), iteration and iteration_truncated --
    including chains where a revision came back unchanged and SelFee asked for feedback again."""
    server = start_server()
    api_env(server)
    # Every chain that reached the cap (truncated or not), every one where a revision came
    # back unchanged, and a few short ones.
    picked = [
        r
        for r in selfee_records
        if r["iteration"] == 5 or len({p["output"] for p in r["outputs"]}) < r["iteration"]
    ]
    picked += [r for r in selfee_records if r["iteration"] < 3][:5]
    records = []
    for n, data in enumerate(picked):
        script(server, *_replay_script(data))
        fields = {k: data[k] for k in ("instruction", "input", "output")}
        records.append({"id": f"s{n}", "source": "selfee", "dataset": "conala", **fields})
    # Concurrency 1: records strictly in turn, so the scripted replies meet their record.
    config = fast_config(preset="selfee_teacher", concurrency=1)
    out = augment_records(records, config, tmp_path / "j.sqlite")
    assert not server.state.scenarios.pending()
    for data, got in zip(picked, out, strict=True):
        # SelFee's texts back exactly: its clean-ups leave its own output unchanged.
        assert got["outputs"] == data["outputs"]
        assert (got["iteration"], got["iteration_truncated"]) == (
            data["iteration"],
            data["iteration_truncated"],
        )
        assert got["output"] == data["output"]
    assert any(
        len({p["output"] for p in d["outputs"]}) < d["iteration"] for d in picked
    )  # the repeated-answer case is in the sample


@pytest.mark.parametrize("preset", ["selfee", "selfee_teacher"])
def test_every_record_comes_back_in_order(start_server, api_env, tmp_path, preset) -> None:
    from augment_support import make_records

    server = start_server()
    api_env(server)
    records = make_records(12)
    records[3]["instruction"] = ""  # a broken record fails alone
    if preset == "selfee_teacher":
        for r in records:
            r["output"] = "gold"
    out = augment_records(records, fast_config(preset=preset), tmp_path / "j.sqlite")
    assert [r["id"] for r in out] == [r["id"] for r in records]
    assert out[3]["status"] == "failed" and "instruction" in out[3]["error"]
    assert all(r["status"] == "done" for i, r in enumerate(out) if i != 3)
    # The echo server's critique quotes the start of its prompt: for selfee that is the
    # instruction (which says "no need" in every other record); the teacher's starts otherwise.
    expected = {1, 5} if preset == "selfee" else {5}
    assert {r["iteration"] for i, r in enumerate(out) if i != 3} == expected


def test_callable_from_inside_an_event_loop(start_server, api_env, tmp_path: Path) -> None:
    """An async Prefect task already runs a loop; the step still works from there."""
    import asyncio

    server = start_server()
    api_env(server)
    script(server, NOT_NEEDED)

    async def from_async() -> list[dict]:
        return augment_records([record(output="n + 1")], fast_config(), tmp_path / "j.sqlite")

    (out,) = asyncio.run(from_async())
    assert out["status"] == "done"


def test_finished_records_are_read_back_not_replayed(start_server, api_env, tmp_path) -> None:
    from augment_support import make_records

    server = start_server()
    api_env(server)
    records = make_records(6)
    journal = tmp_path / "j.sqlite"
    first = augment_records(records, fast_config(), journal)
    sent_first = len(sent(server))
    progress: list[dict] = []
    again = augment_records(records, fast_config(concurrency=2), journal, progress.append)
    assert again == first and len(sent(server)) == sent_first
    # Throughput settings do not matter; the saved results answer every record.
    assert progress[-1]["records_from_journal"] == 6 and progress[-1]["calls_cached"] == 0
    # A setting that shapes the chain does: the chains are replayed from the journaled
    # calls, and only the calls the new setting needs are sent.
    fewer = augment_records(records, fast_config(max_iterations=2), journal, progress.append)
    assert progress[-1]["records_from_journal"] == 0 and len(sent(server)) == sent_first
    assert {r["iteration"] for r in fewer} == {1, 2}
    assert all(r["iteration_truncated"] for r in fewer if r["iteration"] == 2)
