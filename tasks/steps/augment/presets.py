"""SelFee's two prompt sets, the stop rule, and rendering templates into chat messages.

`selfee` is the Alpaca/ShareGPT variant: the model answers, critiques its own answer in a fresh
chat, then revises in the running chat. `selfee_teacher` is the FLAN/math/code variant: a
teaching-assistant critic sees the gold answer (and must not reveal it), the student revises
with minimal edits. The wording follows the descriptions in SelFee's paper and data; recipes
can replace any template (`prompts:` in the step).
"""

from __future__ import annotations

from dataclasses import dataclass

from sftforge.tasks.steps.augment.options import AugmentOptions

Message = dict[str, str]

# SelFee's stop rule: any of these in the lower-cased feedback ends the loop.
SELFEE_STOP_PHRASES: tuple[str, ...] = ("no critique", "no revision", "no need", "not needed")

_CRITIQUE_REQUEST = (
    "Are there any comments or critiques for the above answer? If so, write one in under "
    '100 words. Then score the answer from 1 to 10. At the end, write "Revision is needed" '
    'if the answer should be revised, or "Revision is not needed" if it should not.'
)


@dataclass(frozen=True)
class Preset:
    system: str | None
    answer: str
    feedback: str
    # Appended to the running chat after the latest answer, to ask for the next one.
    revision: tuple[tuple[str, str], ...]
    stop_phrases: tuple[str, ...]
    use_existing_output: bool
    # The critic reads the record's `output` as the gold answer.
    needs_gold: bool


SELFEE = Preset(
    system=None,
    answer="{context}",
    feedback="{context}\n\nHere is a proposed answer:\n{answer}\n\n" + _CRITIQUE_REQUEST,
    revision=(
        ("user", _CRITIQUE_REQUEST),
        ("assistant", "{feedback}"),
        (
            "user",
            "Revise the answer based on your own critique within 500 words. Keep the revision "
            "simple and clear: write only the revised answer, with no apology for the previous "
            "one and no comment on the revision itself.",
        ),
    ),
    stop_phrases=SELFEE_STOP_PHRASES,
    use_existing_output=True,
    needs_gold=False,
)

SELFEE_TEACHER = Preset(
    system=None,
    answer="{context}",
    feedback=(
        "You are a teaching assistant. A student answered the question below. You know the "
        "correct answer, but you must not reveal it, quote it or hint at its exact form: "
        "guide the student instead.\n\n"
        "Question:\n{context}\n\n"
        "Correct answer (do not reveal):\n{gold}\n\n"
        "Student's answer:\n{answer}\n\n"
        "Write feedback on the student's answer in under 100 words and score it from 1 to 10. "
        'At the end, write "Revision is needed" if the student should revise the answer, or '
        '"Revision is not needed" if it is already correct.'
    ),
    revision=(
        (
            "user",
            "Here is feedback on your answer from a teaching assistant:\n{feedback}\n\n"
            "Revise your answer based on this feedback with minimal edits. Write only the "
            "revised answer.",
        ),
    ),
    stop_phrases=SELFEE_STOP_PHRASES,
    use_existing_output=False,
    needs_gold=True,
)

PRESETS: dict[str, Preset] = {"selfee": SELFEE, "selfee_teacher": SELFEE_TEACHER}


def resolve_preset(config: AugmentOptions) -> Preset:
    """The preset with the step's overrides applied."""
    base = PRESETS[config.preset]
    prompts = config.prompts
    return Preset(
        system=prompts.system if prompts.system is not None else base.system,
        answer=prompts.answer if prompts.answer is not None else base.answer,
        feedback=prompts.feedback if prompts.feedback is not None else base.feedback,
        revision=(
            tuple((turn.role, turn.content) for turn in prompts.revision)
            if prompts.revision is not None
            else base.revision
        ),
        stop_phrases=(
            tuple(config.stop_phrases) if config.stop_phrases is not None else base.stop_phrases
        ),
        use_existing_output=(
            config.use_existing_output
            if config.use_existing_output is not None
            else base.use_existing_output
        ),
        needs_gold=base.needs_gold,
    )


def needs_revision(feedback: str, stop_phrases: tuple[str, ...] = SELFEE_STOP_PHRASES) -> bool:
    """SelFee's rule: keep revising while the feedback contains none of the stop phrases."""
    lowered = feedback.lower()
    return not any(phrase in lowered for phrase in stop_phrases)


def context_of(record: dict) -> str:
    """The question as the model sees it: the instruction, plus the input on its own line."""
    instruction = str(record.get("instruction") or "")
    extra = str(record.get("input") or "")
    return f"{instruction}\n{extra}" if extra.strip() else instruction


def fields_of(record: dict, answer: str = "", feedback: str = "") -> dict[str, str]:
    return {
        "instruction": str(record.get("instruction") or ""),
        "input": str(record.get("input") or ""),
        "context": context_of(record),
        "gold": str(record.get("output") or ""),
        "answer": answer,
        "feedback": feedback,
    }


def _with_system(preset: Preset, fields: dict[str, str], messages: list[Message]) -> list[Message]:
    if preset.system is None:
        return messages
    return [{"role": "system", "content": preset.system.format(**fields)}, *messages]


def answer_messages(preset: Preset, record: dict) -> list[Message]:
    fields = fields_of(record)
    return _with_system(
        preset, fields, [{"role": "user", "content": preset.answer.format(**fields)}]
    )


def feedback_messages(preset: Preset, record: dict, answer: str) -> list[Message]:
    fields = fields_of(record, answer=answer)
    return _with_system(
        preset, fields, [{"role": "user", "content": preset.feedback.format(**fields)}]
    )


def revision_chat(
    preset: Preset, record: dict, pairs: list[tuple[str, str]]
) -> tuple[list[Message], list[list[Message]]]:
    """The running chat that asks for the next revision, split for truncation.

    Returns (head, rounds): head is the system prompt and the question; rounds[i] holds answer i
    and the turns that ask to revise it, so dropping rounds[0] forgets the oldest revision.
    The last round must always be kept.
    """
    head = answer_messages(preset, record)
    rounds: list[list[Message]] = []
    for answer, feedback in pairs:
        fields = fields_of(record, answer=answer, feedback=feedback)
        turns = [{"role": "assistant", "content": answer}]
        turns += [
            {"role": role, "content": text.format(**fields)} for role, text in preset.revision
        ]
        rounds.append(turns)
    return head, rounds
