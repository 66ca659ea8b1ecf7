"""OpenChat-style conversation templates, and conversations encoded with them.

A template is data (schemas/training.py ChatTemplateConfig): an optional BOS, a prefix per
role, and an end-of-turn special token after every message. As in OpenChat v1's
`generate_conversation_template`, each prefix and each message is tokenized on its own and
the pieces are concatenated; only assistant content and its end-of-turn token are supervised.

A conversation is encoded as a header (BOS and leading system messages, repeated in every piece
when a long conversation is split) and turns (a user message and the replies after it): the
units the long-conversation handling may cut between.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sftforge.tasks.outputs.tokenizer import LoadedTokenizer

if TYPE_CHECKING:  # worker processes encode without the recipe schemas
    from sftforge.schemas.training import ChatTemplateConfig


@dataclass(frozen=True)
class ChatTemplate:
    name: str
    bos: bool
    system_prefix: str
    user_prefix: str
    assistant_prefix: str
    eot_token: str
    max_length: int


# OpenChat v1's ochat/config/model_config.py MODEL_CONFIG_MAP (July 2023).
BUILTIN_TEMPLATES: dict[str, ChatTemplate] = {
    "openchat": ChatTemplate(
        "openchat", True, "", "Human: ", "Assistant: ", "<|end_of_turn|>", 2048
    ),
    "openchat_8192": ChatTemplate(
        "openchat_8192", True, "", "Human: ", "Assistant: ", "<|end_of_turn|>", 8192
    ),
    "opencoder": ChatTemplate(
        "opencoder", False, "", "User:", "Assistant:", "<|end_of_turn|>", 8192
    ),
}


def resolve_template(spec: str | ChatTemplateConfig) -> ChatTemplate:
    if isinstance(spec, str):
        return BUILTIN_TEMPLATES[spec]
    return ChatTemplate(
        spec.name,
        spec.bos,
        spec.system_prefix,
        spec.user_prefix,
        spec.assistant_prefix,
        spec.eot_token,
        spec.max_length,
    )


@dataclass
class Unit:
    """Tokens of consecutive messages [start, end) of one conversation."""

    ids: list[int]
    mask: list[bool]
    start: int
    end: int


@dataclass
class EncodedConversation:
    header: Unit
    turns: list[Unit]


class ConversationEncoder:
    """Encodes batches of conversations with one template and tokenizer."""

    def __init__(self, tok: LoadedTokenizer, template: ChatTemplate) -> None:
        self.tok, self.template = tok, template
        self.eot = tok.special_id(template.eot_token)
        self.bos = tok.require("bos") if template.bos else None
        system, user, assistant = tok.encode(
            [template.system_prefix, template.user_prefix, template.assistant_prefix]
        )
        self.prefix = {"system": system, "user": user, "assistant": assistant}

    def encode(
        self, conversations: Sequence[Sequence[dict[str, str]]]
    ) -> list[EncodedConversation]:
        return self.assemble(conversations, self.encode_contents(conversations))

    def encode_contents(self, conversations: Sequence[Sequence[dict[str, str]]]) -> list[list[int]]:
        """Every message of the batch in one batched call: the Rust side runs in parallel."""
        return self.tok.encode([m["content"] for conv in conversations for m in conv])

    def assemble(
        self, conversations: Sequence[Sequence[dict[str, str]]], contents: list[list[int]]
    ) -> list[EncodedConversation]:
        encoded, at = [], 0
        for conv in conversations:
            encoded.append(self._one(conv, contents[at : at + len(conv)]))
            at += len(conv)
        return encoded

    def _one(
        self, messages: Sequence[dict[str, str]], contents: list[list[int]]
    ) -> EncodedConversation:
        # Hot loop (every message of every conversation): locals, no per-token Python.
        eot, prefixes = self.eot, self.prefix
        header = Unit([], [], 0, 0)
        if self.bos is not None:
            header.ids.append(self.bos)
            header.mask.append(False)
        turns: list[Unit] = []
        current = header
        if len(messages) != len(contents):
            raise ValueError(f"{len(messages)} messages but {len(contents)} encoded contents")
        for i, message in enumerate(messages):
            role = message["role"]
            prefix = prefixes.get(role)
            if prefix is None:
                raise ValueError(f"message {i} has role {role!r} (expected system/user/assistant)")
            # Leading system messages stay in the header; a user message opens a turn, and so
            # does anything else that would otherwise land in the header.
            if role == "user" or (current is header and role != "system"):
                current = Unit([], [], i, i)
                turns.append(current)
            content = contents[i]
            ids, mask = current.ids, current.mask
            ids += prefix
            ids += content
            ids.append(eot)
            mask += [False] * len(prefix)
            mask += [role == "assistant"] * (len(content) + 1)
            current.end = i + 1
        return EncodedConversation(header, turns)
