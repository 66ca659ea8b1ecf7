"""Generate ShareGPT-style conversations with planted near-duplicates, and say which they are.

    python data/make_near_dup_sample.py --records 100000 --out /tmp/near.jsonl

Words are drawn from a seeded Zipf vocabulary of made-up words (so two distinct prompts share
common words and short phrases, as real ones do). A share of the records (`--planted`) are
near-duplicates of an earlier record, in one of four ways a real dump has them:

- `regenerated`: the same user turns, a new answer (ChatGPT's "Regenerate response");
- `word_changed`: the first prompt with one word replaced (a typo fixed, a name changed);
- `reordered`: two adjacent sentences of the first prompt swapped;
- `respaced`: the first prompt re-cased, re-spaced and re-punctuated.

Some distinct records share boilerplate (a long system-style preamble before a prompt of
their own): they must not be merged. The planted pairs go to `<out>.planted.jsonl`
(`{"id", "of", "kind"}`). One seeded RNG: the same arguments give the same bytes.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

KINDS = ("regenerated", "word_changed", "reordered", "respaced")
BOILERPLATE = (
    "I want you to act as an expert assistant for my team. Please answer in a friendly and "
    "professional tone, keep the explanation clear, use short paragraphs and give one "
    "example where it helps. Here is my request:"
)


class Words:
    """A Zipf vocabulary of made-up words, sampled by cumulative weight (bisect: fast)."""

    def __init__(self, rng: random.Random, size: int = 30000) -> None:
        syllables = [a + b for a in "bcdfghklmnprstvwz" for b in "aeiou"]
        seen: set[str] = set()
        while len(seen) < size:
            seen.add("".join(rng.choice(syllables) for _ in range(rng.choice((1, 2, 2, 3, 3, 4)))))
        self.words = sorted(seen)
        rng.shuffle(self.words)
        self.cumulative = list(itertools.accumulate(1 / (rank + 1) for rank in range(size)))
        self.rng = rng

    def sentence(self, low: int = 6, high: int = 22) -> str:
        count = self.rng.randint(low, high)
        top = self.cumulative[-1]
        picks = [bisect.bisect(self.cumulative, self.rng.random() * top) for _ in range(count)]
        text = " ".join(self.words[min(p, len(self.words) - 1)] for p in picks)
        return text[0].upper() + text[1:] + self.rng.choice(".....?!")

    def paragraph(self, sentences: int) -> str:
        return " ".join(self.sentence() for _ in range(sentences))


def record(idx: int, prompts: list[str], answers: list[str]) -> dict[str, Any]:
    turns = []
    for prompt, answer in zip(prompts, answers, strict=True):
        turns += [{"from": "human", "value": prompt}, {"from": "gpt", "value": answer}]
    return {"id": f"near{idx:07d}", "model": "gpt-4", "conversations": turns}


def variant(rng: random.Random, words: Words, kind: str, prompt: str) -> str:
    """A near-duplicate of a (long) prompt."""
    if kind == "word_changed":
        tokens = prompt.split(" ")
        tokens[rng.randrange(len(tokens))] = words.sentence(1, 1)[:-1].lower()
        return " ".join(tokens)
    if kind == "reordered":
        sentences = [s.strip() for s in prompt.replace("?", ".").replace("!", ".").split(".")]
        sentences = [s for s in sentences if s]
        i = rng.randrange(len(sentences) - 1)
        sentences[i], sentences[i + 1] = sentences[i + 1], sentences[i]
        return ". ".join(sentences) + "."
    # respaced: the same words, cased, spaced and punctuated another way
    return "  ".join(w.upper() if rng.random() < 0.3 else w for w in prompt.split()).replace(
        ".", " ;"
    )


def generate(records: int, seed: int = 0, planted: float = 0.1) -> Iterator[tuple[dict, dict]]:
    """(record, planted info or {}) in order; a planted record copies an earlier one."""
    rng = random.Random(seed)
    words = Words(rng)
    history: list[tuple[int, list[str], list[str]]] = []  # plantable originals
    for idx in range(records):
        if history and rng.random() < planted:
            of, prompts, answers = rng.choice(history)
            kind = rng.choice(KINDS)
            if kind == "regenerated":
                new_prompts = list(prompts)
                new_answers = [words.paragraph(rng.randint(2, 8)) for _ in answers]
            else:
                new_prompts = [variant(rng, words, kind, prompts[0]), *prompts[1:]]
                new_answers = list(answers)
            yield (
                record(idx, new_prompts, new_answers),
                {"id": f"near{idx:07d}", "of": of, "kind": kind},
            )
            continue
        turns = rng.choice((1, 1, 1, 2, 2, 3))
        long_prompt = rng.random() < 0.5  # long enough that one changed word keeps J >= 0.8
        first = words.paragraph(rng.randint(8, 12) if long_prompt else rng.randint(1, 6))
        if not long_prompt and rng.random() < 0.2:  # a prompt of its own after the preamble
            first = f"{BOILERPLATE} {words.paragraph(rng.randint(3, 6))}"
        prompts = [first] + [words.paragraph(rng.randint(1, 4)) for _ in range(turns - 1)]
        answers = [words.paragraph(rng.randint(2, 8)) for _ in range(turns)]
        if long_prompt and len(history) < 50000:
            history.append((idx, prompts, answers))
        elif long_prompt:
            history[rng.randrange(len(history))] = (idx, prompts, answers)
        yield record(idx, prompts, answers), {}


def write(path: Path, records: int, seed: int = 0, planted: float = 0.1) -> list[dict]:
    """Write the JSONL file and `<path>.planted.jsonl`; return the planted pairs."""
    found = []
    with path.open("w") as out:
        for rec, info in generate(records, seed, planted):
            out.write(json.dumps(rec) + "\n")
            if info:
                found.append({**info, "of": f"near{info['of']:07d}"})
    Path(f"{path}.planted.jsonl").write_text("".join(json.dumps(p) + "\n" for p in found))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--planted", type=float, default=0.1)
    parser.add_argument("--out", type=Path, default=Path("near_dups.jsonl"))
    args = parser.parse_args()
    found = write(args.out, args.records, args.seed, args.planted)
    print(f"{args.out}: {args.records} records, {len(found)} planted near-duplicates")


if __name__ == "__main__":
    main()
