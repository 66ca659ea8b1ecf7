"""The natural-language part of a text, for language ID: code, tables and arithmetic left out.

lid.176 was trained on Wikipedia and Tatoeba prose. Code, table rows and lines of numbers give
it nothing to go on, and its guesses on them are confident and wrong (a multiplication table
reads as Cebuano, a `|`-table as Polish, Python as German). Chat and instruction data paste
them without fences all the time, so fences alone do not find them: every line is looked at.
"""

from __future__ import annotations

import re
import unicodedata

FENCED_CODE = re.compile(r"^[ \t>]*(`{3,}|~{3,}).*?^[ \t>]*\1[ \t]*$", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]+`")
# Tags, comments and doctypes of pasted HTML/XML: their names are English-looking noise, while
# the words between them are in whatever language the page is, so only the tags go.
_HTML = re.compile(r"<!--.*?-->|<![A-Za-z][^<>]*>|</?[A-Za-z][\w:-]*(?:\s[^<>]*)?/?>", re.S)

# Lines that open like a statement. Keywords are case-sensitive and need the punctuation
# that follows them in code, so sentences that start with "For", "Return" or "Select" stay.
_CODE_START = re.compile(
    r"""\s*(?:
        (?:async\s+)?def\s | (?:struct|interface|enum|fn|func|function)\s+\w+\s*[(<{]
      | class\s+\w+\s*(?:[(:{]|extends|implements)
      | import\s+[\w.*]+(?:\s+as\s+\w+)?\s*;?\s*$ | import\s.*\bfrom\s+['"]
      | from\s+[\w.]+\s+import\s
      | \#\s*(?:include|define|ifn?def|endif|pragma)\b | using\s+(?:namespace\s+)?[\w:.]+\s*;
      | package\s+[\w.]+\s*;?\s*$ | @[\w.]+(?:\(.*\))?\s*$
      | (?:public|private|protected|static|final|const|let|var|val|void|int|long|float|double|
          char|bool|boolean|auto|unsigned|String)\s+[\w<>\[\]*&:\s]*[\w\]>*&]\s*[=;({\[]
      | (?:return|yield|raise|throw|await|echo|print|puts|printf|console\.\w+)\b.*[(\[{;=+*/<>]
      | (?:return|break|continue|pass|else|end|fi|done)\s*[;:{}]?\s*$
      | (?:if|elif|else\s+if|for|foreach|while|switch|catch|with|except|try|finally)\b.*[:{]\s*$
      | (?:if|for|while|switch|catch)\s*\(
      | (?:SELECT|INSERT\s+INTO|UPDATE|DELETE\s+FROM|CREATE\s+(?:TABLE|INDEX|VIEW)|DROP|ALTER)
        \s.*(?:\bFROM\b|\bSET\b|\bVALUES\b|\(|;|\*)
      | (?:FROM|RUN|COPY|ADD|CMD|ENTRYPOINT|WORKDIR|ENV|EXPOSE|ARG|VOLUME)\s+\S
      | (?:sudo|pip3?|npm|npx|yarn|git|cd|ls|mkdir|rm|cp|mv|curl|wget|apt-get|apt|brew|docker|
          kubectl|cargo|chmod|export)\s+[-\w./~$]
      | \$\s | >>>\s | //|/\*|\*/|\#!
    )""",
    re.X,
)
# Signs of code that prose, in any language, hardly has: operators, calls, indexing,
# snake_case and camelCase names (few alternatives, each starting narrowly: this runs on
# every line of every text), and an assignment at the start of a line.
_CODE_SIGNS = re.compile(
    r"[=!<>+\-*/]=|&&|\|\||[-=]>|::|\+\+|\w(?:\.\w+\(|\(\)|\[[^\]\s]*\])|\b[a-z]+(?:_\w+\b|[A-Z]\w*\()"
)
_ASSIGNMENT = re.compile(r"\s*[\w.\[\]'\"]+\s*=\s*\S")
# Prose ends lines with ")" and "):" too; code ends them with a statement or a block.
_ENDS_LIKE_CODE = re.compile(r"(?:[;{}\[]|\w\(.*\)\s*:|\\)\s*$")
_TABLE_RULE = re.compile(r"\s*\|?\s*:?-{2,}:?\s*(?:\|\s*:?-{2,}:?\s*)*\|?\s*$")
# The ASCII signs code is made of; prose punctuation (.,:!?'"-) is not among them.
_SYMBOLS = frozenset("{}[]()<>=;+*/\\|&^~$@#%_")
# From U+2E80 on, letters are East Asian (CJK radicals and ideographs, kana, Hangul
# syllables): one carries about as much as three Latin letters (a Chinese word is one or two
# characters). Counting runs in C: str.isalpha over the text, regexes for the rarer parts.
_EAST_ASIAN_LETTER = re.compile(r"[^\W\d_\x00-\u2e7f]")
_EAST_ASIAN_PUNCTUATION = re.compile(r"[\u3000-\u303f\uff00-\uffef]")


def _east_asian(pattern: re.Pattern[str], text: str) -> int:
    return len(pattern.findall(text)) if not text.isascii() else 0


def letters(text: str) -> int:
    """How much a classifier has to go on: letters, an East Asian one counted as three."""
    return sum(map(str.isalpha, text)) + 2 * _east_asian(_EAST_ASIAN_LETTER, text)


def letter_share(text: str) -> float:
    """Letters among the characters that are not spaces, weighted as in `letters`."""
    east_asian = _east_asian(_EAST_ASIAN_LETTER, text)
    weighted = sum(map(str.isalpha, text)) + 2 * east_asian
    visible = len("".join(text.split()))
    visible += 2 * (east_asian + _east_asian(_EAST_ASIAN_PUNCTUATION, text))
    return weighted / visible if visible else 0.0


def is_code_or_table(line: str) -> bool:
    """Whether a line is code, a table row or rule, or arithmetic rather than a sentence."""
    stripped = line.strip()
    if not stripped:
        return False
    if stripped.count("|") >= 2 or _TABLE_RULE.match(stripped):
        return True  # markdown table rows, "a | b | c" triples, separator rules
    if letter_share(stripped) < 0.5:
        return True  # numbers, sums, multiplication tables, brackets, chess positions
    if _CODE_START.match(line):
        return True
    symbols = sum(map(_SYMBOLS.__contains__, stripped))
    density = symbols / len(stripped)
    signs = 0
    if symbols or "::" in stripped:  # every other sign has one of the symbols in it
        signs = len(_CODE_SIGNS.findall(stripped)) + bool(_ASSIGNMENT.match(stripped))
    if _ENDS_LIKE_CODE.search(stripped) and (signs or density > 0.04 or len(stripped.split()) <= 4):
        return True
    indented = line.startswith(("    ", "\t"))
    # A sentence may name one snake_case identifier or one call; code is dense with them.
    return signs >= 2 or (signs == 1 and (indented or density > 0.08)) or density > 0.2


def outside_code(text: str) -> str:
    """The text without fenced code blocks and inline code spans."""
    return INLINE_CODE.sub(" ", FENCED_CODE.sub(" ", text))


def extract_prose(text: str, max_chars: int, strip_code: bool = True) -> str:
    """The prose of a text on one line (the classifier reads one), at most `max_chars` long."""
    if not strip_code:
        return " ".join(text.split())[:max_chars]
    kept: list[str] = []
    size = 0
    for line in _HTML.sub(" ", outside_code(text)).splitlines():
        if size > max_chars:
            break  # enough prose: the rest of a long text need not be looked at
        if not is_code_or_table(line):
            kept.append(line)
            size += len(line) + 1
    return " ".join(" ".join(kept).split())[:max_chars]


# The scripts of the lid.176 languages not written in Latin letters (the rest are), named by
# the first word of their letters' Unicode names.
_SCRIPT_LANGUAGES = {
    "CJK": "zh yue wuu gan ja ko",
    "HIRAGANA": "ja",
    "KATAKANA": "ja",
    "HANGUL": "ko",
    "CYRILLIC": "ru uk be bg mk sr kk ky mn tg tt ba cv ce os sah",
    "GREEK": "el",
    "ARABIC": "ar arz fa ur ps ug sd ckb azb mzn",
    "HEBREW": "he yi",
    "DEVANAGARI": "hi mr ne sa new mai bh",
    "BENGALI": "bn as",
    "TAMIL": "ta",
    "TELUGU": "te",
    "KANNADA": "kn",
    "MALAYALAM": "ml",
    "GUJARATI": "gu",
    "GURMUKHI": "pa",
    "SINHALA": "si",
    "THAI": "th",
    "LAO": "lo",
    "KHMER": "km",
    "MYANMAR": "my",
    "GEORGIAN": "ka",
    "ARMENIAN": "hy",
    "ETHIOPIC": "am ti",
    "TIBETAN": "bo",
}
_LANGUAGE_SCRIPTS: dict[str, set[str]] = {}
for _script, _languages in _SCRIPT_LANGUAGES.items():
    for _language in _languages.split():
        _LANGUAGE_SCRIPTS.setdefault(_language, set()).add(_script)


def scripts_of(language: str) -> set[str]:
    """The scripts a language is written in ({"LATIN"} unless listed above)."""
    return _LANGUAGE_SCRIPTS.get(language, {"LATIN"})


def foreign_script_share(text: str, languages: frozenset[str] | set[str]) -> float:
    """The share of a text's letters (weighted as in `letters`) in scripts that none of
    `languages` is written in: a short text mostly in Han or Cyrillic is not English."""
    allowed = set().union(*(scripts_of(lang) for lang in languages))
    total = foreign = 0
    for c in filter(str.isalpha, text):
        # Below U+0250 every letter is Latin (and the name lookup is the slow part).
        script = "LATIN" if ord(c) < 0x250 else unicodedata.name(c, "").split(" ", 1)[0]
        weight = 3 if ord(c) >= 0x2E80 else 1
        total += weight
        if script not in allowed:
            foreign += weight
    return foreign / total if total else 0.0
