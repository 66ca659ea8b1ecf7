"""markdown_walk (lxml) against the reference, BeautifulSoup + markdownify: byte for byte.

html_to_markdown converts prose with markdown_walk where it covers the markup and falls back to
the reference elsewhere; each test here runs both on the same input. tests/conftest.py also
checks both on every input the html_to_markdown tests convert (`_both_markdown_paths_agree`).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from sftforge.tasks.steps import html_to_markdown as h2m
from sftforge.tasks.steps import markdown_tree, markdown_walk
from tests.conftest import load_generator

REAL_HTML = Path(__file__).parent / "data" / "sharegpt_real_html.jsonl"


def prose_inputs(answer: str) -> str:
    """What html_to_markdown hands to the prose converter: no buttons, wrapper, code blocks."""
    value = h2m._BUTTON.sub("", answer)
    wrapped = h2m._PROSE_WRAPPER.match(value)
    return h2m.extract_code_blocks(wrapped.group(1) if wrapped else value)[0]


def outcome(convert: Any, value: str) -> tuple[str, str]:
    try:
        return "ok", convert(value)
    except Exception as exc:  # the reference raises on some markup: the fast path must too
        return "error", type(exc).__name__


def walked(value: str) -> str:
    """markdown_walk alone (raises Unsupported where html_to_markdown falls back)."""
    document = markdown_tree.parse(value)
    if "katex" in value or "<math" in value:
        markdown_tree.replace_math(document, h2m._tex)
    return h2m._WALK.convert(document)


def compare(values: list[str]) -> int:
    """Assert both paths agree on every value; return how many the fast path covered."""
    covered = 0
    for value in values:
        assert outcome(h2m.prose_markdown, value) == outcome(h2m.prose_markdown_bs4, value), value
        try:
            walked(value)
            covered += 1
        except markdown_tree.Unsupported:
            pass
    return covered


def answers(records: list[Any]) -> list[str]:
    return [turn["value"] for record in records if isinstance(record, dict)
            for turn in record.get("conversations") or []
            if isinstance(turn, dict) and isinstance(turn.get("value"), str)]


@pytest.mark.parametrize("code_heavy", [True, False])
def test_generated_answers_convert_identically_and_almost_all_take_the_fast_path(code_heavy):
    generator = load_generator()
    values = [prose_inputs(a) for a in answers(list(generator.generate(1500, seed=7,
                                                                        code_heavy=code_heavy)))]
    html = [v for v in values if "<" in v]
    assert len(html) > 1000
    covered = compare(html)
    assert covered >= 0.99 * len(html)


# ------------------------------------------------------------------ random markup

BLOCKS = ["p", "div", "blockquote", "ul", "ol", "li", "h1", "h3", "h6", "h7", "table", "thead",
          "tbody", "tr", "td", "th", "dl", "dt", "dd", "section", "article", "hr", "br", "pre",
          "caption", "figcaption", "textarea"]
INLINES = ["b", "strong", "em", "i", "code", "kbd", "samp", "a", "span", "sub", "sup", "del",
           "s", "img", "u", "font", "q", "svg", "math", "annotation", "x-custom"]
TEXTS = ["word", "two  words", " lead", "trail ", "\n", " ", "\t", "\x0c", "\xa0", " \n\t ",
         "a_b*c", "x `y` z", "``", "&lt;tag&gt;", "&amp;", "1. item", "- dash", "# hash",
         "line\nbreak", "\r\n", "SFTFORGECODEBLOCK0X", "é 漢字", "|pipe|", "&#160;", "&bogus;"]
ATTRS = {
    "a": [' href="http://x.y/z"', ' href="word"', ' href="w" title="t \\"q\\""', ""],
    "td": [' colspan="2"', ' colspan="x"', ""], "th": [' colspan="3"', ""],
    "ol": [' start="3"', ' start="a"', ""], "img": [' src="s.png" alt="alt" title="t"', ""],
    "span": [' class="katex"', ' class="katex-display"', ' class="x katex"', ""],
    "math": [' display="block" alttext="x^2"', ' alttext=" y "', ""],
    "annotation": [' encoding="application/x-tex"', ""],
}


def random_markup(rng: random.Random, depth: int = 0) -> str:
    parts = []
    for _ in range(rng.randint(1, 5)):
        roll = rng.random()
        if roll < 0.4 or depth >= 4:
            parts.append(rng.choice(TEXTS))
        elif roll < 0.95:
            tag = rng.choice(BLOCKS if rng.random() < 0.5 else INLINES)
            attrs = rng.choice(ATTRS.get(tag, [""]))
            inner = random_markup(rng, depth + 1)
            if tag == "pre" and rng.random() < 0.9:  # as extract_code_blocks leaves them
                inner = f"SFTFORGECODEBLOCK{rng.randint(0, 3)}X" + rng.choice(["", "\n", " "])
            close = f"</{tag}>" if rng.random() < 0.9 else ""
            parts.append(f"<{tag}{attrs}>{inner}{close}")
        else:
            parts.append(rng.choice(["</p>", "</li>", "<p>", "</b>", "<br/>", "</table>"]))
    return "".join(parts)


def test_random_markup_converts_identically():
    rng = random.Random(17)
    values = [random_markup(rng) for _ in range(4000)]
    covered = compare(values)
    assert covered >= 0.95 * len(values)  # the rest: a <pre> with other text


@pytest.mark.parametrize("value", [
    "<div>" * 300 + "x<b>y</b>",  # deeper than libxml2's tree builder keeps (255)
    "x</html> y",  # libxml2's tree drops " y"; bs4, built from parser events, keeps it
    "</table> lead",  # whitespace before the first tag: an event, not in libxml2's tree
    "<html> <body> x</body></html>",
    "<p>a\x0cb</p><p>\x0c</p><textarea> \n </textarea><pre>SFTFORGECODEBLOCK0X\n </pre>",
    "<ol start='3'> <li>a</li> <li>b<ul><li>c</li></ul></li></ol> tail",
    "<table> <tr> <td>a</td> </tr>\n<tr><td colspan=2>b</td></tr></table>",
])
def test_parser_event_edge_cases_convert_identically_on_the_fast_path(value):
    walked(value)
    assert compare([value]) == 1


@pytest.mark.parametrize("value", [
    "<p>a<!-- note --> b</p>",
    '<?xml version="1.0"?><p>x</p>',
    "\ufeff<p>x</p>",
    "<p>x</p><script>alert(1)</script><style>p{}</style>",
    "<ruby>漢<rt>kan</rt></ruby>",
    "<pre>not a cut-out block</pre>",
    '<video src="v.mp4">clip</video>',
])
def test_markup_outside_the_port_falls_back_to_the_reference(value):
    with pytest.raises(markdown_tree.Unsupported):
        walked(value)
    assert outcome(h2m.prose_markdown, value) == outcome(h2m.prose_markdown_bs4, value)


def test_only_a_converter_without_escaping_can_be_walked():
    from markdownify import MarkdownConverter

    with pytest.raises(ValueError, match="escaping"):
        markdown_walk.MarkdownWalk(MarkdownConverter(), h2m._PLACEHOLDER_ANY)


@pytest.mark.skipif(not REAL_HTML.exists(), reason="no real ShareGPT HTML sample")
def test_real_sharegpt_answers_convert_identically():
    records = [json.loads(line) for line in REAL_HTML.read_text().splitlines() if line.strip()]
    values = [prose_inputs(a) for a in answers(records) if "<" in a]
    assert values
    covered = compare(values)
    assert covered >= 0.9 * len(values)
