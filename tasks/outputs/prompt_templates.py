"""Prompt templates of the instruction trainers, as text segments with a supervision flag.

Each renderer turns one record into `[(text, supervised), ...]`; the concatenated text is what
the trainer tokenized, the flags say which characters its labels kept. The strings are the
ones the trainers shipped:

- Alpaca-LoRA's templates/alpaca.json, alpaca_legacy.json (the original Stanford Alpaca
  prompt, no newline after "### Response:") and alpaca_short.json, chosen as its Prompter
  does: the `prompt_input` form when `input` is non-empty;
- SelFee's train/feedback_utils.py: the Alpaca prompt ending in "### Answer:\\n" as source,
  answer → "### Feedback 1:" → "### Revision i:" / "### Feedback i+1:" as target
  (`make_full_target`), or the first answer alone (`answer-only`);
- Guanaco (QLoRA on timdettmers/openassistant-guanaco): "### Human: …### Assistant: …".
"""

from __future__ import annotations

from typing import Any, NamedTuple

from sftforge.tasks.readers.converters import guanaco_turns

Segment = tuple[str, bool]  # (text, supervised)


class AlpacaTemplate(NamedTuple):
    prompt_input: str
    prompt_no_input: str


_PREAMBLE_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides "
    "further context. Write a response that appropriately completes the request.\n\n"
)
_PREAMBLE = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request.\n\n"
)

ALPACA_TEMPLATES: dict[str, AlpacaTemplate] = {
    "alpaca": AlpacaTemplate(
        _PREAMBLE_INPUT
        + "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n",
        _PREAMBLE + "### Instruction:\n{instruction}\n\n### Response:\n",
    ),
    "alpaca_legacy": AlpacaTemplate(
        _PREAMBLE_INPUT + "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:",
        _PREAMBLE + "### Instruction:\n{instruction}\n\n### Response:",
    ),
    "alpaca_short": AlpacaTemplate(
        "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n",
        "### Instruction:\n{instruction}\n\n### Response:\n",
    ),
}

SELFEE_PROMPT = AlpacaTemplate(
    _PREAMBLE_INPUT + "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Answer:\n",
    _PREAMBLE + "### Instruction:\n{instruction}\n\n### Answer:\n",
)

INSTRUCTION_TEMPLATES = (
    "alpaca",
    "alpaca_legacy",
    "alpaca_short",
    "selfee",
    "selfee_answer_only",
    "guanaco",
)

# Which record kinds each template can render (a recipe is checked against this up front).
TEMPLATE_KINDS: dict[str, frozenset[str]] = {
    "alpaca": frozenset({"instruction", "augmented"}),
    "alpaca_legacy": frozenset({"instruction", "augmented"}),
    "alpaca_short": frozenset({"instruction", "augmented"}),
    "selfee": frozenset({"augmented"}),
    "selfee_answer_only": frozenset({"augmented"}),
    "guanaco": frozenset({"conversation", "instruction", "augmented"}),
}


def alpaca_prompt(template: AlpacaTemplate, instruction: str, input: str) -> str:
    # Prompter.generate_prompt tests `if input:` — an empty input uses the shorter form.
    # str.format substitutes once: braces inside the record's text are left alone.
    if input:
        return template.prompt_input.format(instruction=instruction, input=input)
    return template.prompt_no_input.format(instruction=instruction)


def selfee_target(outputs: list[dict[str, Any]]) -> str:
    """SelFee's make_full_target: answer, feedback 1, revision 1, feedback 2, …"""
    parts: list[str] = []
    for i, step in enumerate(outputs):
        if i == 0:
            parts.append(step["output"])
        else:
            parts.append(f"\n\n### Revision {i}:\n{step['output']}")
        if step.get("feedback") is not None:
            parts.append(f"\n\n### Feedback {i + 1}:\n{step['feedback']}")
    return "".join(parts)


def record_messages(record: dict[str, Any]) -> list[dict[str, str]]:
    """A record as chat messages; an instruction becomes one user/assistant pair (the input on
    the line after the instruction, as LLaMA-Factory and FastChat join them)."""
    if "messages" in record:
        return record["messages"]
    prompt = record["instruction"] + (f"\n{record['input']}" if record.get("input") else "")
    return [
        {"role": "user", "content": prompt},
        {"role": "assistant", "content": record.get("output") or ""},
    ]


def guanaco_segments(
    messages: list[dict[str, str]], mask_human: bool, meta: dict[str, Any] | None = None
) -> list[Segment]:
    """Guanaco's text, as written when `meta.text` holds it (tasks/readers/converters.py); by
    default (QLoRA's oasst1 setup, the whole text is the target) every character is supervised.
    With mask_human only the assistants' replies are: the space after "### Assistant:" belongs
    to the reply, because the tokenizer joins it to the first word."""
    turns = guanaco_turns(messages, meta)
    if not mask_human:
        return [("".join(head + body for _, head, body in turns), True)]
    segments: list[Segment] = []
    for role, head, body in turns:
        if role == "user":
            segments.append((head + body, False))
        else:
            segments.append((head, False))
            segments.append((body, True))
    return segments


class Skip(NamedTuple):
    reason: str


def render(
    template: str, record: dict[str, Any], *, train_on_inputs: bool, mask_human: bool
) -> list[Segment] | Skip:
    """The segments of one record, or why the record has no training example."""
    if template in ALPACA_TEMPLATES:
        prompt = alpaca_prompt(
            ALPACA_TEMPLATES[template], record["instruction"], record.get("input") or ""
        )
        return [(prompt, train_on_inputs), (record.get("output") or "", True)]
    if template in ("selfee", "selfee_answer_only"):
        outputs = record.get("outputs") or []
        if not outputs:
            return Skip("no_outputs")  # a failed augmentation: nothing to learn from
        source = alpaca_prompt(SELFEE_PROMPT, record["instruction"], record.get("input") or "")
        if template == "selfee_answer_only":
            return [(source, train_on_inputs), (outputs[0]["output"], True)]
        return [(source, train_on_inputs), (selfee_target(outputs), True)]
    if template == "guanaco":
        segments = guanaco_segments(record_messages(record), mask_human, record.get("meta"))
        if not any(text for text, _ in segments):
            return Skip("empty")
        return segments
    raise ValueError(f"unknown instruction template {template!r}")


def scaffolding() -> list[str]:
    """The fixed text of every template (data/make_tokenizer.py trains the tokenizer on it)."""
    texts = [t.format(instruction="", input="") for t in ALPACA_TEMPLATES["alpaca"]]
    texts += [t.format(instruction="", input="") for t in SELFEE_PROMPT]
    texts += ["\n\n### Feedback 1:\n", "\n\n### Revision 1:\n", "\n\n### Feedback 2:\n"]
    texts += ["### Human: ", "### Assistant: ", "Human: ", "Assistant: ", "User:", "Assistant:"]
    return texts
