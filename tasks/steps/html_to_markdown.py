"""ChatGPT's rendered answer HTML (ShareGPT, 2023) -> Markdown.

Keeps what FastChat's cleaner did right (fenced code with the language from the code
header, no "Copy code" button text, no "N / N" regeneration counter, in user turns too: the
ShareGPT extension glued an edit counter to them, "1 / 1How do…": edit_counter.py) and
fixes what it got wrong: no backslash escapes in prose, code blocks byte-exact (blank lines
and indentation kept), GFM tables, verbatim inline code, KaTeX as LaTeX, code blocks kept
inside list items.

The prose goes through markdown_walk.py (markdownify's walk over markdown_tree.py's nodes), or
through BeautifulSoup + markdownify where the walk does not cover the markup. Code blocks
go through neither: highlight.js wraps every token in a <span>, and parsing thousands of
them was most of the cost of converting a coding answer. Each <pre> is cut out with a
regular expression, its text recovered by dropping tags and unescaping entities, and a
placeholder is converted in its place.
"""

from __future__ import annotations

import html
import re
from functools import partial
from typing import Any, ClassVar, Literal

from bs4 import BeautifulSoup, NavigableString, Tag
from lxml import etree
from markdownify import ATX, MarkdownConverter

from sftforge.schemas.steps import CONVERSATION, register_step
from sftforge.tasks.base.outcome import Rejected
from sftforge.tasks.base.step_protocol import RecordFn, RecordStep, StepContext
from sftforge.tasks.steps import markdown_tree, markdown_walk
from sftforge.tasks.steps.edit_counter import strip_edit_counter

_PRE = re.compile(r"<pre\b[^>]*>(.*?)</pre\s*>", re.S | re.I)
_CODE = re.compile(r"<code\b([^>]*)>(.*?)</code\s*>", re.S | re.I)
_BUTTON = re.compile(r"<button\b.*?</button\s*>", re.S | re.I)
_BR = re.compile(r"<br\s*/?>", re.I)
_TAG = re.compile(r"<[^>]*>")
_LANG_CLASS = re.compile(r"""\blanguage-([\w+#.\-]+)""", re.I)
_LANG_LABEL = re.compile(r"^[\w+#.\-/ ]{1,40}$")
_PLACEHOLDER = "SFTFORGECODEBLOCK{}X"
_PLACEHOLDER_LINE = re.compile(r"^(?P<prefix>.*?)SFTFORGECODEBLOCK(?P<n>\d+)X[ \t]*$", re.M)
_PLACEHOLDER_ANY = re.compile(r"SFTFORGECODEBLOCK(\d+)X")
_LIST_MARKER = re.compile(r"[-*+]|\d{1,9}[.)]")
_REGENERATE = re.compile(r"^\s*\d+\s*/\s*\d+")
_COPY_CHARS = re.compile(r"Copy\d+ chars / \d+ words")
_BLANK_RUNS = re.compile(r"\n{3,}")
# ChatGPT's answer wrapper: one block element that carries nothing Markdown needs.
_PROSE_WRAPPER = re.compile(r"^\s*<div class=\"markdown prose[^\"]*\">(.*)</div>\s*$", re.S)


def _language(header_html: str, code_attrs: str) -> str:
    """The language label: the code header's text, else `class="language-…"` on <code>."""
    label = html.unescape(_TAG.sub(" ", _BUTTON.sub(" ", header_html)))
    label = " ".join(label.replace("Copy code", " ").split())
    if label and _LANG_LABEL.match(label):
        return label
    match = _LANG_CLASS.search(code_attrs)
    return match.group(1) if match else ""


def _code_text(code_html: str) -> str:
    text = html.unescape(_TAG.sub("", _BR.sub("\n", code_html)))
    # Drop the blank lines around the block but keep the first line's indentation.
    lines = text.split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(line.rstrip("\r") for line in lines)


def extract_code_blocks(value: str) -> tuple[str, list[tuple[str, str]]]:
    """Replace every <pre> block by a placeholder; return the new HTML and (language, code)."""
    blocks: list[tuple[str, str]] = []

    def cut(match: re.Match[str]) -> str:
        inner = match.group(1)
        code = _CODE.search(inner)
        if code is not None:
            header, attrs, body = inner[: code.start()], code.group(1), code.group(2)
        else:
            header, attrs, body = "", "", _BUTTON.sub("", inner)
        blocks.append((_language(header, attrs), _code_text(body)))
        return "<pre>" + _PLACEHOLDER.format(len(blocks) - 1) + "</pre>"

    return _PRE.sub(cut, value), blocks


def _fence(code: str) -> str:
    longest = max((len(run) for run in re.findall(r"`+", code)), default=0)
    return "`" * max(3, longest + 1)


class _FastTag(Tag):
    """bs4 Tag with a plain walk for `find_parent(name)`.

    markdownify asks every tag `find_parent("pre")`; bs4 answers through its general
    filter machinery, which was a quarter of the conversion time.
    """

    def find_parent(self, name: Any = None, attrs: Any = None, **kwargs: Any) -> Any:
        if not isinstance(name, str) or attrs or kwargs:
            return super().find_parent(name, attrs, **kwargs)
        node = self.parent
        while node is not None:
            if node.name == name:
                return node
            node = node.parent
        return None


class _Converter(MarkdownConverter):
    """markdownify with ChatGPT-specific handling of code, inline code and tables."""

    def convert_pre(self, el: Any, text: str, parent_tags: set[str]) -> str:
        if _PLACEHOLDER_ANY.fullmatch(text.strip()):
            return "\n\n" + text.strip() + "\n\n"
        # A <pre> the regex could not cut out (e.g. unclosed): convert it from the tree.
        code = el.find("code")
        attrs = " ".join(code.get("class", [])) if code is not None else ""
        body = (code or el).get_text()
        lang = _LANG_CLASS.search(attrs)
        return self._fenced(lang.group(1) if lang else "", _code_text(html.escape(body)))

    @staticmethod
    def _fenced(lang: str, code: str) -> str:
        fence = _fence(code)
        return f"\n\n{fence}{lang}\n{code}\n{fence}\n\n"

    def convert_code(self, el: Any, text: str, parent_tags: set[str]) -> str:
        if "_noformat" in parent_tags:
            return text
        raw = el.get_text()  # verbatim: no whitespace collapsing, no escaping
        if not raw.strip():
            return ""
        longest = max((len(run) for run in re.findall(r"`+", raw)), default=0)
        delim = "`" * (longest + 1)
        if longest:
            raw = f" {raw} "
        return f"{delim}{raw}{delim}"

    def _cell(self, el: Any, text: str) -> str:
        colspan = el.get("colspan", "1")
        span = max(1, min(1000, int(colspan))) if str(colspan).isdigit() else 1
        cell = text.strip().replace("\n", " ").replace("|", "\\|")
        return " " + cell + " |" * span

    def convert_td(self, el: Any, text: str, parent_tags: set[str]) -> str:
        return self._cell(el, text)

    def convert_th(self, el: Any, text: str, parent_tags: set[str]) -> str:
        return self._cell(el, text)


_CONVERTER = _Converter(
    heading_style=ATX,
    bullets="-",
    escape_asterisks=False,
    escape_underscores=False,
    escape_misc=False,
    strip_document="strip",
)


_WALK = markdown_walk.MarkdownWalk(_CONVERTER, _PLACEHOLDER_ANY)


def _tex(el: Any) -> str | None:
    note = el.find("annotation", attrs={"encoding": "application/x-tex"})
    if note is not None:
        return note.get_text().strip()
    alt = el.get("alttext") if el.name == "math" else None
    return alt.strip() if alt else None


def _math_to_latex(soup: BeautifulSoup) -> None:
    """KaTeX renders TeX twice (MathML + HTML); keep the TeX source once, as $…$ / $$…$$."""
    for el in soup.select("span.katex-display"):
        tex = _tex(el)
        if tex is not None:
            el.replace_with(NavigableString(f"$${tex}$$"))
    for el in soup.select("span.katex"):
        tex = _tex(el)
        if tex is not None:
            el.replace_with(NavigableString(f"${tex}$"))
    for el in soup.find_all("math"):
        tex = _tex(el)
        if tex is not None:
            block = el.get("display") == "block"
            el.replace_with(NavigableString(f"$${tex}$$" if block else f"${tex}$"))


def prose_markdown_bs4(value: str) -> str:
    """The reference conversion: BeautifulSoup (lxml) + markdownify."""
    soup = BeautifulSoup(value, "lxml", element_classes={Tag: _FastTag})
    if "katex" in value or "<math" in value:
        _math_to_latex(soup)
    return _CONVERTER.convert_soup(soup)


def prose_markdown(value: str) -> str:
    """prose_markdown_bs4's output, from markdown_walk's lxml walk where it covers the markup."""
    try:
        document = markdown_tree.parse(value)
        if "katex" in value or "<math" in value:
            markdown_tree.replace_math(document, _tex)
        return _WALK.convert(document)
    except (markdown_tree.Unsupported, etree.LxmlError, RecursionError):
        return prose_markdown_bs4(value)


def _put_code_back(markdown: str, blocks: list[tuple[str, str]]) -> str:
    def on_own_line(match: re.Match[str]) -> str:
        prefix = match.group("prefix")
        lang, code = blocks[int(match.group("n"))]
        # Continuation lines of a list item are indented by the marker's width;
        # blockquote markers repeat on every line.
        stripped = prefix.lstrip(" ")
        lead = prefix[: len(prefix) - len(stripped)]
        rest = _LIST_MARKER.sub(lambda m: " " * len(m.group(0)), stripped, count=1)
        indent = lead + (rest if not stripped.startswith(">") else stripped)
        fence = _fence(code)
        lines = [f"{prefix}{fence}{lang}"]
        lines += [(indent + line) if line else indent.rstrip() for line in code.split("\n")]
        lines.append(f"{indent}{fence}")
        return "\n".join(lines)

    markdown = _PLACEHOLDER_LINE.sub(on_own_line, markdown)
    # A code block somewhere Markdown cannot hold one (a table cell): inline code.
    return _PLACEHOLDER_ANY.sub(
        lambda m: "`" + blocks[int(m.group(1))][1].replace("\n", " ") + "`", markdown
    )


def html_to_markdown(value: str, user: bool = False) -> str:
    """Convert one rendered ChatGPT answer to Markdown. Raises on HTML lxml cannot parse.
    An answer loses FastChat's leading "N / N" regeneration counter; a user turn (`user`) only
    the edit counter the extension glued to its text."""
    if "<" not in value:
        text = html.unescape(value)
    else:
        value = _BUTTON.sub("", value)
        wrapped = _PROSE_WRAPPER.match(value)
        if wrapped:
            value = wrapped.group(1)
        value, blocks = extract_code_blocks(value)
        text = _BLANK_RUNS.sub("\n\n", prose_markdown(value))
        if blocks:
            text = _put_code_back(text, blocks)
    text = _COPY_CHARS.sub("", text)
    if user:
        return strip_edit_counter(text.strip())
    noise = _REGENERATE.match(text)
    if noise:
        text = text[noise.end() :]
    return text.strip()


def convert_messages(record: dict[str, Any], roles: list[str]) -> dict[str, Any] | Rejected:
    """The step: HTML -> Markdown for `roles`; other messages are only whitespace-trimmed, and
    user turns lose the extension's edit counter either way (FastChat cleaned every turn)."""
    messages = []
    for i, message in enumerate(record["messages"]):
        content, user = message["content"], message["role"] == "user"
        if message["role"] in roles:
            try:
                content = html_to_markdown(content, user=user)
            except RecursionError:
                return Rejected("parse_error", f"message {i}: HTML nested too deeply")
            except Exception as exc:  # lxml / bs4 reject some markup outright
                return Rejected("parse_error", f"message {i}: {type(exc).__name__}: {exc}")
        else:
            content = strip_edit_counter(content.strip()) if user else content.strip()
        messages.append({"role": message["role"], "content": content})
    return {**record, "messages": messages}


@register_step
class HtmlToMarkdownStep(RecordStep):
    """ChatGPT's rendered HTML -> Markdown, code blocks byte-exact (FastChat, fixed)."""

    kinds: ClassVar[tuple[str, ...]] = CONVERSATION
    converts_text: ClassVar[bool] = True
    step: Literal["html_to_markdown"]
    # Only these roles hold ChatGPT's rendered HTML; human turns are plain text.
    roles: list[Literal["user", "assistant", "system"]] = ["assistant"]

    def make(self, context: StepContext) -> RecordFn:
        return partial(convert_messages, roles=list(self.roles))
