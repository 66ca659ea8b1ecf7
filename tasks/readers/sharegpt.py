"""ShareGPT-style records ({id, conversations: [{from, value}], model?}) -> Conversation dicts."""

from __future__ import annotations

from typing import Any

from sftforge.schemas.recipe import ShareGPTFields
from sftforge.tasks.base.outcome import Rejected

ROLE_MAP: dict[str, str] = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "chatgpt": "assistant",
    "assistant": "assistant",
    "bard": "assistant",
    "bing": "assistant",
    "system": "system",
}


def _model_name(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):  # saved pages sometimes carry {"slug": …, "title": …}
        for key in ("title", "slug", "name"):
            if isinstance(value.get(key), str):
                return value[key]
    return None


def to_conversation(
    value: Any, source: str, fields: ShareGPTFields, fallback_id: str
) -> dict[str, Any] | Rejected:
    """Map one parsed input record to the conversation schema.

    Roles are mapped (human→user, gpt→assistant, system); a role we do not know is kept
    as written so that check_structure rejects it as `wrong_format` with its name.
    """
    if not isinstance(value, dict):
        return Rejected("invalid_record", f"expected an object, got {type(value).__name__}")
    turns = value.get(fields.conversations)
    if not isinstance(turns, list):
        got = "missing" if turns is None else type(turns).__name__
        return Rejected("invalid_record", f"`{fields.conversations}` is not a list ({got})")
    messages = []
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict):
            return Rejected("invalid_record", f"turn {i} is not an object")
        role = turn.get(fields.role)
        content = turn.get(fields.content)
        if not isinstance(role, str):
            return Rejected("invalid_record", f"turn {i} has no `{fields.role}` string")
        if not isinstance(content, str):
            got = "missing" if content is None else type(content).__name__
            return Rejected("invalid_record", f"turn {i}: `{fields.content}` is {got}")
        messages.append({"role": ROLE_MAP.get(role.strip().lower(), role), "content": content})
    raw_id = value.get(fields.id)
    record_id = str(raw_id) if isinstance(raw_id, str | int) and str(raw_id) else fallback_id
    known = {fields.id, fields.conversations, fields.model}
    meta = {k: v for k, v in value.items() if k not in known}
    return {
        "id": record_id,
        "source": source,
        "model": _model_name(value.get(fields.model)),
        "messages": messages,
        "meta": meta,
    }


def to_sharegpt(record: dict[str, Any]) -> dict[str, Any]:
    """Back to FastChat/OpenChat's format (what their training code reads)."""
    back = {"user": "human", "assistant": "gpt", "system": "system"}
    out: dict[str, Any] = {
        "id": record["id"],
        "conversations": [
            {"from": back.get(m["role"], m["role"]), "value": m["content"]}
            for m in record["messages"]
        ],
    }
    if record.get("model") is not None:
        out["model"] = record["model"]
    return out
