"""Counting prompt tokens, and cutting a chat down to fit the model's context, deterministically.

Counting, best first:
1. tiktoken's encoding for the model, when its BPE file is already on disk (tiktoken fetches
   it from the internet on first use, with no timeout, so "auto" never triggers a download);
2. an HF `tokenizers` tokenizer.json the recipe names;
3. an estimate that errs high: tiktoken's pre-tokenisation split, then a per-piece charge
   that is at least the BPE's on ordinary English, code and CJK text.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("sftforge.augment")

Message = dict[str, str]

# OpenAI's chat format costs a few tokens per message and for priming the reply.
PER_MESSAGE = 4
REPLY_PRIMING = 3
TRUNCATION_MARK = "\n[...]\n"

# tiktoken's split, in `re` (which has no \p{L}): [^\W\d_] is a letter and (?![\r\n])[\W_]
# anything but a letter, digit or line break. The last branch makes sure no character is skipped.
_PIECES = re.compile(
    r"'(?i:[sdmt]|ll|ve|re)"
    r"|(?:(?![\r\n])[\W_])?[^\W\d_]+"
    r"|\d{1,3}"
    r"| ?(?:(?!\s)[\W_])+[\r\n]*"
    r"|\s*[\r\n]+"
    r"|\s+(?!\S)"
    r"|\s+"
    r"|[\s\S]"
)

_TIKTOKEN_URL = "https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
_ENCODINGS = {"gpt-4o": "o200k_base", "gpt-4.1": "o200k_base", "o1": "o200k_base"}


@dataclass(frozen=True)
class Counter:
    name: str
    count: Callable[[str], int]


def _cached(count: Callable[[str], int]) -> Callable[[str], int]:
    # The running chat resends the same messages call after call: count each text once.
    return functools.lru_cache(maxsize=4096)(count)


def estimate_tokens(text: str) -> int:
    """An upper-leaning token estimate for BPE vocabularies like cl100k_base.

    Counted line by line (each line break one token), so that the lines every prompt shares
    -- the templates' -- are counted once per run rather than once per record.
    """
    lines = text.split("\n")
    return sum(_line_tokens(line) for line in lines) + len(lines) - 1


@functools.lru_cache(maxsize=65_536)
def _line_tokens(line: str) -> int:
    total = 0
    for piece in _PIECES.findall(line):
        if piece.isspace():
            # Runs of spaces (code indentation) are merged into few tokens.
            total += 1 + len(piece) // 8
        elif piece.isascii():
            core = piece.lstrip()
            if core.isalpha():
                # Common words are one token; rare/long ones split into ~4-letter chunks.
                total += 1 + (len(core) - 1) // 4
            elif core.isdigit():
                total += 1
            else:
                total += (len(piece) + 1) // 2
        else:
            ascii_chars = sum(1 for ch in piece if ch < "\x80")
            other_bytes = len(piece.encode("utf-8")) - ascii_chars
            # CJK (3 UTF-8 bytes) -> 1.5 tokens a character; accented letters (2 bytes) -> 1.
            total += max(1, (ascii_chars + 1) // 2 + (other_bytes + 1) // 2)
    return total


def _tiktoken_cached(encoding: str) -> bool:
    cache_dir = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR")
    if cache_dir is None:
        cache_dir = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    if not cache_dir:
        return False
    url = _TIKTOKEN_URL.format(name=encoding)
    # tiktoken names its cache files by the SHA-1 of the URL.
    return (Path(cache_dir) / hashlib.sha1(url.encode()).hexdigest()).is_file()


def _encoding_name(model: str) -> str:
    for prefix, name in _ENCODINGS.items():
        if model.startswith(prefix):
            return name
    return "cl100k_base"


def _tiktoken_counter(model: str) -> Counter:
    import tiktoken

    encoding = tiktoken.get_encoding(_encoding_name(model))
    return Counter(
        f"tiktoken:{encoding.name}",
        _cached(lambda text: len(encoding.encode(text, disallowed_special=()))),
    )


def make_counter(model: str, setting: str = "auto") -> Counter:
    """The best available counter for `model`, per the step's `tokenizer` setting."""
    if setting == "estimate":
        counter = Counter("estimate", _cached(estimate_tokens))
    elif setting == "tiktoken":
        counter = _tiktoken_counter(model)
    elif setting == "auto":
        try:
            import tiktoken  # noqa: F401

            available = _tiktoken_cached(_encoding_name(model))
        except ImportError:
            available = False
        counter = (
            _tiktoken_counter(model) if available else Counter("estimate", _cached(estimate_tokens))
        )
    else:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(setting)
        counter = Counter(
            f"hf:{Path(setting).name}",
            _cached(lambda text: len(tokenizer.encode(text, add_special_tokens=False).ids)),
        )
    log.info("augment: counting tokens for %s with %s", model, counter.name)
    return counter


def count_messages(counter: Counter, messages: list[Message]) -> int:
    return REPLY_PRIMING + sum(PER_MESSAGE + counter.count(m["content"]) for m in messages)


def cut_middle(counter: Counter, text: str, drop_at_least: int) -> str:
    """`text` minus its middle, `drop_at_least` tokens shorter (plus the mark's own cost).

    Keeps equal parts of the start and the end: the question is usually stated at the start
    and asked again, or followed by the format it wants, at the end.
    """
    target = counter.count(text) - drop_at_least
    lo, hi = 0, len(text) // 2  # characters kept at each end
    best = ""
    while lo <= hi:
        keep = (lo + hi) // 2
        candidate = text[:keep] + TRUNCATION_MARK + text[len(text) - keep :] if keep else ""
        if counter.count(candidate) <= target:
            best, lo = candidate, keep + 1
        else:
            hi = keep - 1
    return best


def fit_messages(
    counter: Counter,
    head: list[Message],
    rounds: list[list[Message]],
    budget: int,
) -> tuple[list[Message], bool]:
    """head + rounds flattened, cut to at most `budget` prompt tokens.

    First drop the oldest rounds (never the last), then cut the middle of the longest message
    until the chat fits. Returns (messages, truncated). Raises ValueError when even that fails.
    """
    kept = list(rounds)
    truncated = False
    messages = head + [m for r in kept for m in r]
    while count_messages(counter, messages) > budget and len(kept) > 1:
        kept.pop(0)
        truncated = True
        messages = head + [m for r in kept for m in r]
    messages = [dict(m) for m in messages]
    for _ in range(4 * len(messages) + 4):
        over = count_messages(counter, messages) - budget
        if over <= 0:
            return messages, truncated
        # Longest first; the earliest among equals, so the choice never depends on chance.
        sizes = [counter.count(m["content"]) for m in messages]
        longest = max(range(len(messages)), key=lambda i: (sizes[i], -i))
        if sizes[longest] == 0:
            break
        messages[longest]["content"] = cut_middle(
            counter, messages[longest]["content"], min(over, sizes[longest])
        )
        truncated = True
    raise ValueError(f"cannot fit the prompt into {budget} tokens")
