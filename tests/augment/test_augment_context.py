"""Every request fits the model's context: a 20,000-token instruction against a server that
rejects prompts over 4,096 tokens."""

from __future__ import annotations

import random
from pathlib import Path

from augment_support import fast_config
from llmock.verdict import judge

from sftforge.tasks.steps.augment import augment_records
from sftforge.tasks.steps.augment.tokens import TRUNCATION_MARK, count_messages, make_counter

WINDOW = 4096


def long_instruction(tokens: int) -> str:
    rng = random.Random(0)
    words = ["alpha", "beta", "gamma", "delta", "list", "sort", "value", "index", "map", "key"]
    counter = make_counter("gpt-3.5-turbo", "estimate")
    text = "Summarise the following log. " + " ".join(rng.choice(words) for _ in range(tokens))
    assert counter.count(text) >= tokens
    return text + " What went wrong?"


def test_a_20000_token_instruction_is_cut_to_fit(start_server, api_env, tmp_path: Path) -> None:
    server = start_server(context_window=WINDOW)
    api_env(server)
    record = {
        "id": "big",
        "source": "test",
        "dataset": "unit",
        "input": "",
        "output": "",
        "instruction": long_instruction(20_000),
    }
    small = {**record, "id": "small", "instruction": "Add one to n (no need to explain)"}
    config = fast_config(
        max_tokens={"answer": 512, "feedback": 128, "revision": 512}, context_window=WINDOW
    )
    big_out, small_out = augment_records([record, small], config, tmp_path / "j.sqlite")

    assert big_out["status"] == "done", big_out["error"]
    assert big_out["truncated"] is True and small_out["truncated"] is False
    assert big_out["instruction"] == record["instruction"]  # the record itself is untouched
    log = server.state.journal.records(wait=2.0)
    assert log and all(r.status == 200 for r in log)  # never rejected for length
    counter = make_counter("gpt-3.5-turbo", "estimate")
    for r in log:
        prompt = count_messages(counter, r.body["messages"])
        assert prompt + r.body["max_tokens"] <= WINDOW
    first = (
        log[0].body["messages"]
        if TRUNCATION_MARK in log[0].body["messages"][0]["content"]
        else log[1].body["messages"]
    )
    text = first[0]["content"]
    # The middle went; the start and the question at the end stayed (with the line break
    # SelFee's prompt puts after the instruction).
    assert text.startswith("Summarise the following log.")
    assert text.endswith("What went wrong?\n")
    judge(log).assert_ok(strict=True)


def test_a_server_counting_more_than_us_gets_a_shorter_prompt(
    start_server, api_env, tmp_path: Path
) -> None:
    """If the server's tokenizer counts more than ours, its 400 tells by how much; the prompt is
    fitted again to its count -- a new, shorter request, not a retry of the rejected one."""
    server = start_server(context_window=1500)  # the server's model is smaller than we think
    api_env(server)
    record = {
        "id": "big",
        "source": "test",
        "dataset": "unit",
        "input": "",
        "output": "",
        "instruction": long_instruction(3000),
    }
    (out,) = augment_records([record], fast_config(context_window=WINDOW), tmp_path / "j.sqlite")
    assert out["status"] == "done" and out["truncated"] is True
    statuses = [r.status for r in server.state.journal.records(wait=2.0)]
    # One rejection teaches the whole run; every later call fits at once.
    assert statuses[0] == 400 and statuses.count(400) == 1 and statuses[-1] == 200
    judge(server.state.journal.records(wait=2.0)).assert_ok(strict=True)
