"""The texts of a record a step checks or embeds: a conversation's turns by role (in Python
from a record, or in Arrow from a shard's `messages` column, where only the chosen turns'
text becomes Python strings), an instruction's instruction + input, or its output."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

TextScope = Literal["user", "first_user", "assistant", "all"]


def record_parts(record: dict[str, Any], scope: TextScope) -> list[tuple[str, str]]:
    """(where, text) of the texts checked: turns of a conversation (`message i`); an
    instruction's instruction and input as one text, its output as another."""
    messages = record.get("messages")
    if messages is not None:
        wanted = {"user": ("user",), "first_user": ("user",), "assistant": ("assistant",)}
        roles = wanted.get(scope)
        found = [
            (f"message {i}", m["content"])
            for i, m in enumerate(messages)
            if roles is None or m["role"] in roles
        ]
        return found[:1] if scope == "first_user" else found
    query = "\n".join(t for t in (record.get("instruction"), record.get("input")) if t)
    parts = {"user": [("instruction", query)], "first_user": [("instruction", query)]}
    parts["assistant"] = [("output", record.get("output") or "")]
    parts["all"] = parts["user"] + parts["assistant"]
    return parts[scope]


def conversation_parts(
    column: pa.ChunkedArray, scope: TextScope
) -> tuple[list[tuple[int, str]], list[str]]:
    """`record_parts` over a shard's `messages` column in Arrow: only the checked turns'
    text becomes Python strings (ShareGPT's long answers stay in Arrow for `text: user`)."""
    lists = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    flat = lists.flatten()
    rows = pc.list_parent_indices(lists).to_numpy()
    position = np.arange(len(rows)) - np.searchsorted(rows, rows)  # the turn's index
    if scope == "all":
        keep = np.ones(len(rows), dtype=bool)
    else:
        role = "assistant" if scope == "assistant" else "user"
        equal = pc.equal(pc.struct_field(flat, "role"), role)
        keep = pc.fill_null(equal, False).to_numpy(zero_copy_only=False)
        if scope == "first_user":
            chosen = np.flatnonzero(keep)
            first = chosen[np.unique(rows[chosen], return_index=True)[1]]
            keep = np.zeros(len(rows), dtype=bool)
            keep[first] = True
    contents = pc.fill_null(pc.struct_field(flat, "content"), "").filter(pa.array(keep))
    owners = [
        (r, f"message {i}")
        for r, i in zip(rows[keep].tolist(), position[keep].tolist(), strict=True)
    ]
    return owners, contents.to_pylist()
