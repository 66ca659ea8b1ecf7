"""The ShareGPT extension's edit counter on user turns ("2 / 3Describe…"), and its removal."""

from __future__ import annotations

import re

# The ShareGPT extension wrote the edit counter ("2 / 3") glued to the start of a user turn
# ("2 / 3Describe…"): only a counter directly followed by text is one, so a question about
# "1 / 2 cups" keeps its fraction (see strip_edit_counter for text that starts with digits).
_USER_COUNTER = re.compile(r"([1-9]\d*) / (\d+)")


def strip_edit_counter(text: str) -> str:
    """A user turn without the extension's leading `N / M` edit counter (see _USER_COUNTER).

    The text may itself start with digits ("1 / 1" + "3 ft = 36 in." reads "1 / 13 ft = 36
    in."), so M is the shortest run of the digits that is at least N, and the counter counts
    only if text follows it at once: counters count a few edits, and text that starts with a
    number is common. ("1 / 12 apples" so loses "1 / 1": a fraction with a two-digit
    denominator, spaced, at the very start of a turn is the rarer case.)"""
    match = _USER_COUNTER.match(text)
    if not match:
        return text
    n, digits = int(match.group(1)), match.group(2)
    for end in range(1, len(digits) + 1):
        if int(digits[:end]) >= n:
            rest = text[match.start(2) + end :]
            return rest if rest[:1].strip() else text
    return text  # "3 / 2…": no version 3 of 2, so not a counter
