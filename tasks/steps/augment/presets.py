"""SelFee's two conversations, word for word, its stop rule, and rendering them into chats.

`selfee` is SelFee's Alpaca/ShareGPT script: the model answers the question, then one chat
holds the critique request, the critique, the request to revise, the revision, its critique
... and from the third answer on, each critique starts that chat afresh.
`selfee_teacher` is SelFee's FLAN/math/code script: two chats. The student's holds the
question, its answers, the teacher's critiques and the requests to revise; the teacher's holds
its role, the question, the gold answer, every answer and every critique it wrote.

The texts are SelFee's (data_augmentation/call_openai_multiprocessing_*.py); recipes can replace
any of them (`prompts:` in the step), the shape of the conversations is the preset's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sftforge.tasks.steps.augment.options import AugmentOptions

Message = dict[str, str]
Turns = tuple[tuple[str, str], ...]

# SelFee's rule: any of these in the lower-cased feedback ends the loop.
SELFEE_STOP_PHRASES: tuple[str, ...] = ("no critique", "no revision", "no need", "not needed")

CRITIQUE = (
    "Are there any comments or critiques for the above answer? If so, write one under 100 "
    "words. You may score the quality of the answer on the scale of 1-10 (1: no code/no sense; "
    '10: perfect) Also, classify if revision is needed by responding "Revision is needed" or '
    '"Revision is not needed" at the end. Normally, score of less than 9 should be revised.'
    "\n\nCritique:"
)
_NO_APOLOGY = (
    "Your revision should be simple and clear, so do not add any rhetorics such as apology "
    "for the past mistake."
)
_FIRST_TRY = " Write as if the revised answer is the first try."
REVISE = f"Revise the answer based on your own critique within 500 words. {_NO_APOLOGY}"
REVISE_TEACHER = f"Revise the answer based on your own critique with minimal edits. {_NO_APOLOGY}"
TEACHER_ROLE = (
    "You are given a role as a teaching assistant. You are going to get an instruction and its "
    "corresponding answer. Your job is to make me find the answer by giving an appropriate "
    "feedback. If the proposed answer is different from the ground truth, that means there "
    "should be some revision. You should guide me by giving an instruction that helps me find "
    "the answer without directly mentioning it. You should not directly mention about the "
    "answer when giving a feedback, because that is a cheating."
)


@dataclass(frozen=True)
class Preset:
    system: str | None
    # The question, as the first answer is asked for.
    answer: str
    # The critique request for the first answer (one user message).
    feedback: str
    # Turns appended to the critic's chat, after its last critique, for a revised answer.
    feedback_revision: Turns
    # Turns appended after a critique to ask for the next answer ({feedback} is that critique).
    revision: Turns
    # The same, from the `restart_from`-th answer on (SelFee drops "as if ... the first try").
    revision_late: Turns
    # The critic's opening turns (teacher: its role, the question, the gold answer).
    critic: Turns
    stop_phrases: tuple[str, ...]
    use_existing_output: bool
    # The critic reads the record's `output` as the gold answer.
    needs_gold: bool
    # True: the answerer and the critic keep separate chats (teacher). False: one chat, the
    # critic's, where revisions are asked for too (selfee).
    two_chats: bool
    # From this many answers on, each critique starts a fresh chat (selfee: 3); None: never.
    restart_from: int | None
    # SelFee's teacher drops a trailing "revision" remark from the first answer as well.
    clean_first_answer: bool
    # A revision containing "N/A" ends the chain, unrecorded: always, or (teacher) only when
    # the gold answer has no "N/A" of its own.
    na_exit: Literal["always", "unless_gold_has_it"]
    # The written record carries the input folded into the instruction (SelFee's teacher).
    fold_input: bool


SELFEE = Preset(
    system=None,
    answer="{context}\n",
    feedback="{context}\nHere is a proposed answer:\n{answer}\n\n" + CRITIQUE,
    feedback_revision=(("user", "{context}\nHere is a proposed answer:\n{answer}\n\n" + CRITIQUE),),
    revision=(("user", REVISE + _FIRST_TRY + "\nRevision:"),),
    revision_late=(("user", REVISE + "\nRevision:"),),
    critic=(),
    stop_phrases=SELFEE_STOP_PHRASES,
    use_existing_output=True,
    needs_gold=False,
    two_chats=False,
    restart_from=3,
    clean_first_answer=False,
    na_exit="always",
    fold_input=False,
)

SELFEE_TEACHER = Preset(
    system=None,
    answer="{context}",
    feedback="Here is my initial answer:\n{answer}\n\n" + CRITIQUE,
    feedback_revision=(
        ("user", "{answer}"),
        ("user", "Here is a revised proposed answer:\n{answer}\n\n" + CRITIQUE),
    ),
    revision=(("user", "{feedback}"), ("user", REVISE_TEACHER + _FIRST_TRY + "\nRevision:")),
    revision_late=(("user", "{feedback}"), ("user", REVISE_TEACHER + _FIRST_TRY + "\nRevision:")),
    critic=(
        ("user", TEACHER_ROLE),
        ("user", "Here is the instruction:\n{context}\n"),
        ("user", "Here is the answer:\n{gold}\n"),
    ),
    stop_phrases=SELFEE_STOP_PHRASES,
    use_existing_output=False,
    needs_gold=True,
    two_chats=True,
    restart_from=None,
    clean_first_answer=True,
    na_exit="unless_gold_has_it",
    fold_input=True,
)

PRESETS: dict[str, Preset] = {"selfee": SELFEE, "selfee_teacher": SELFEE_TEACHER}


def _turns(value: list | None, default: Turns) -> Turns:
    return default if value is None else tuple((turn.role, turn.content) for turn in value)


def resolve_preset(config: AugmentOptions) -> Preset:
    """The preset with the step's overrides applied."""
    base = PRESETS[config.preset]
    prompts = config.prompts
    revision = _turns(prompts.revision, base.revision)
    return Preset(
        system=prompts.system if prompts.system is not None else base.system,
        answer=prompts.answer if prompts.answer is not None else base.answer,
        feedback=prompts.feedback if prompts.feedback is not None else base.feedback,
        feedback_revision=_turns(prompts.feedback_revision, base.feedback_revision),
        revision=revision,
        # A recipe that replaces `revision` alone means it for every round.
        revision_late=_turns(
            prompts.revision_late, base.revision_late if prompts.revision is None else revision
        ),
        critic=_turns(prompts.critic, base.critic),
        stop_phrases=(
            tuple(config.stop_phrases) if config.stop_phrases is not None else base.stop_phrases
        ),
        use_existing_output=(
            config.use_existing_output
            if config.use_existing_output is not None
            else base.use_existing_output
        ),
        needs_gold=base.needs_gold,
        two_chats=base.two_chats,
        restart_from=base.restart_from,
        clean_first_answer=base.clean_first_answer,
        na_exit=base.na_exit,
        fold_input=base.fold_input,
    )


def needs_revision(feedback: str, stop_phrases: tuple[str, ...] = SELFEE_STOP_PHRASES) -> bool:
    """SelFee's rule: keep revising while the feedback contains none of the stop phrases."""
    lowered = feedback.lower()
    return not any(phrase in lowered for phrase in stop_phrases)


def ends_chain(preset: Preset, revision: str, gold: str) -> bool:
    """SelFee's early exit: a revision that says "N/A" is dropped and the chain ends there."""
    if preset.na_exit == "unless_gold_has_it" and "N/A" in gold:
        return False
    return "N/A" in revision


def context_of(record: dict) -> str:
    """The question: the instruction, plus the input on its own line when there is one
    (SelFee tests `input != ""`, so an input of spaces is still appended)."""
    instruction = str(record.get("instruction") or "")
    extra = str(record.get("input") or "")
    return f"{instruction}\n{extra}" if extra != "" else instruction


def fields_of(record: dict, answer: str = "", feedback: str = "") -> dict[str, str]:
    return {
        "instruction": str(record.get("instruction") or ""),
        "input": str(record.get("input") or ""),
        "context": context_of(record),
        "gold": str(record.get("output") or ""),
        "answer": answer,
        "feedback": feedback,
    }


def _render(turns: Turns, fields: dict[str, str]) -> list[Message]:
    return [{"role": role, "content": text.format(**fields)} for role, text in turns]


def _with_system(preset: Preset, record: dict, messages: list[Message]) -> list[Message]:
    if preset.system is None:
        return messages
    return [{"role": "system", "content": preset.system.format(**fields_of(record))}, *messages]


def _revise_turns(preset: Preset, n: int) -> Turns:
    """The turns asking for answer n+1 after the critique of answer n (1-based)."""
    late = preset.restart_from is not None and n >= preset.restart_from
    return preset.revision_late if late else preset.revision


def _shared_chat(
    preset: Preset, record: dict, answers: list[str], feedbacks: list[str]
) -> tuple[list[Message], list[list[Message]]]:
    """selfee's one chat, since its last restart: critique requests, critiques, requests to
    revise and revisions, ending on the newest critique request (len(feedbacks) ==
    len(answers) - 1) or on the request to revise (len(feedbacks) == len(answers))."""
    n = len(answers)
    start = n if preset.restart_from is not None and n >= preset.restart_from else 1
    first = fields_of(record, answer=answers[start - 1])
    head = [{"role": "user", "content": preset.feedback.format(**first)}]
    rounds: list[list[Message]] = []
    for i in range(start, n + 1):  # i: 1-based index of the answer a round ends with
        if i > start:
            prev = fields_of(record, answer=answers[i - 2], feedback=feedbacks[i - 2])
            turns = [{"role": "assistant", "content": feedbacks[i - 2]}]
            turns += _render(_revise_turns(preset, i - 1), prev)
            turns.append({"role": "assistant", "content": answers[i - 1]})
            turns += _render(preset.feedback_revision, fields_of(record, answer=answers[i - 1]))
            rounds.append(turns)
    if len(feedbacks) == n:
        last = fields_of(record, answer=answers[-1], feedback=feedbacks[-1])
        turns = [{"role": "assistant", "content": feedbacks[-1]}]
        rounds.append(turns + _render(_revise_turns(preset, n), last))
    return head, rounds


def answer_messages(preset: Preset, record: dict) -> list[Message]:
    return _with_system(
        preset, record, [{"role": "user", "content": preset.answer.format(**fields_of(record))}]
    )


def feedback_chat(
    preset: Preset, record: dict, answers: list[str], feedbacks: list[str]
) -> tuple[list[Message], list[list[Message]]]:
    """The chat asking for the critique of answers[-1] (feedbacks: those of the earlier ones),
    split for truncation: (head, rounds), oldest round first; the last must always be kept."""
    if not preset.two_chats:
        head, rounds = _shared_chat(preset, record, answers, feedbacks[: len(answers) - 1])
        return _with_system(preset, record, head), rounds
    fields = fields_of(record)
    head = _with_system(preset, record, _render(preset.critic, fields))
    first = fields_of(record, answer=answers[0])
    rounds = [[{"role": "user", "content": preset.feedback.format(**first)}]]
    for i in range(1, len(answers)):
        turns = [{"role": "assistant", "content": feedbacks[i - 1]}]
        turns += _render(preset.feedback_revision, fields_of(record, answer=answers[i]))
        rounds.append(turns)
    return head, rounds


def feedback_messages(preset: Preset, record: dict, answer: str) -> list[Message]:
    """The whole request for the critique of a first answer."""
    head, rounds = feedback_chat(preset, record, [answer], [])
    return head + [m for r in rounds for m in r]


def revision_chat(
    preset: Preset, record: dict, answers: list[str], feedbacks: list[str]
) -> tuple[list[Message], list[list[Message]]]:
    """The chat asking for the next answer after each answer got its critique, split for
    truncation like feedback_chat: dropping rounds[0] forgets the oldest answer."""
    if not preset.two_chats:
        head, rounds = _shared_chat(preset, record, answers, feedbacks)
        return _with_system(preset, record, head), rounds
    head = answer_messages(preset, record)
    rounds = []
    for n, (answer, feedback) in enumerate(zip(answers, feedbacks, strict=True), start=1):
        fields = fields_of(record, answer=answer, feedback=feedback)
        turns = [{"role": "assistant", "content": answer}]
        rounds.append(turns + _render(_revise_turns(preset, n), fields))
    return head, rounds
