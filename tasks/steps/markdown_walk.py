"""html_to_markdown's hot path: markdownify's walk over lxml's tree instead of BeautifulSoup's.

Profiled on code-heavy answers (benchmarks/sharegpt_pipeline.py input), building the bs4 tree
was half of html_to_markdown's time and markdownify's generic walk (isinstance chains, sibling
lookups through bs4's filter machinery) most of the rest. Here lxml parses the HTML the way
bs4's lxml builder feeds it (one `HTMLParser.feed` of the str), the tree is copied into light
nodes that answer the few bs4 calls markdownify's converters make, and `process_tag` /
`process_text` of markdownify 1.2 are ported over those nodes. The tag conversions themselves
are markdownify's (and html_to_markdown's `_Converter` overrides), called unchanged; ul/ol,
whose conversion tests bs4 classes, is ported.

Anything outside what was ported raises `Unsupported` and html_to_markdown takes the
BeautifulSoup path: comments, doctypes, processing instructions, a leading BOM, tags whose
conversion needs more of bs4 (video, a <pre> that is not a cut-out code block), and any tag a
later markdownify adds a conversion for. tests/test_markdown_walk.py compares both paths byte for
byte on generated answers and on every HTML input of the html_to_markdown tests.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

from lxml import etree
from markdownify import MarkdownConverter, re_html_heading

_NEWLINE_WS = re.compile(r"[\t \r\n]*[\r\n][\t \r\n]*")
_WS = re.compile(r"[\t ]+")
_BS4_SPACES = "\x20\x0a\x09\x0c\x0d"  # BeautifulSoup.ASCII_SPACES
_BLOCK = frozenset({"p", "blockquote", "article", "div", "section", "ol", "ul", "li", "dl",
                    "dt", "dd", "table", "thead", "tbody", "tfoot", "tr", "td", "th"})
# Conversions called as markdownify defines them: they use only the text, the parent tags and
# get / attrs / parent / get_text / find_previous_siblings / find_all, which _Node answers.
_REUSED = frozenset({"a", "b", "strong", "em", "i", "del", "s", "sub", "sup", "code", "kbd",
                     "samp", "blockquote", "br", "hr", "p", "div", "article", "section", "dl",
                     "dd", "dt", "table", "caption", "figcaption", "td", "th", "tr", "li", "img",
                     "q", "pre", "[document]"})
_LISTS = frozenset({"ul", "ol"})
# bs4 keeps their text in its own string classes, which get_text() and markdownify treat apart.
_NOT_PORTED = frozenset({"script", "style", "template", "rt", "rp"})
_PRESERVE = frozenset({"pre", "textarea"})  # bs4's preserve_whitespace_tags




_PARSERS = threading.local()


class Unsupported(Exception):
    """Markup the fast path does not cover; the caller converts it with BeautifulSoup."""


class _Node:
    """An element with the part of bs4's Tag interface markdownify's conversions use."""

    __slots__ = ("name", "attrs", "children", "parent", "index", "inside", "outside")

    def __init__(self, name: str, attrs: Any, parent: _Node | None) -> None:
        self.name = name
        self.attrs = attrs  # a dict, or lxml's attribute view (get, [], in)
        self.children: list[_Node | str] = []
        self.parent = parent
        self.index = 0  # position in parent.children
        # markdownify strips whitespace inside these / around these (should_remove_whitespace_*)
        self.inside = _removes_inside(name)
        self.outside = self.inside or name == "pre"

    def get(self, key: str, default: Any = None) -> Any:
        return self.attrs.get(key, default)

    def __getitem__(self, key: str) -> str:
        return self.attrs[key]

    def get_text(self) -> str:
        return "".join(self._strings())

    def _strings(self) -> Iterator[str]:
        for child in self.children:
            if isinstance(child, _Node):
                yield from child._strings()
            else:
                yield child

    def _elements(self) -> Iterator[_Node]:
        for child in self.children:
            if isinstance(child, _Node):
                yield child
                yield from child._elements()

    def find_all(self, names: str | list[str]) -> list[_Node]:
        wanted = {names} if isinstance(names, str) else set(names)
        return [el for el in self._elements() if el.name in wanted]

    def _previous_elements(self) -> Iterator[_Node]:
        if self.parent is None:
            return
        for sibling in reversed(self.parent.children[: self.index]):
            if isinstance(sibling, _Node):
                yield sibling

    def find_previous_sibling(self) -> _Node | None:
        return next(self._previous_elements(), None)

    def find_previous_siblings(self, name: str) -> list[_Node]:
        return [el for el in self._previous_elements() if el.name == name]

    def find(self, name: str, attrs: dict[str, str] | None = None) -> _Node | None:
        """bs4's `find(name, attrs=...)` for exact attribute values (html_to_markdown's _tex)."""
        wanted = (attrs or {}).items()
        return next((el for el in self._elements() if el.name == name
                     and all(el.attrs.get(k) == v for k, v in wanted)), None)


def parse(value: str) -> _Node:
    """The [document] node of `value`, built from the parser events bs4's lxml builder gets."""
    if value.startswith("\ufeff") or "<!" in value or "<?" in value:
        raise Unsupported("comment, doctype, processing instruction or BOM")
    parser = getattr(_PARSERS, "parser", None)
    if parser is None:  # one per thread, reused: making one costs as much as a short answer
        parser = _PARSERS.parser = etree.HTMLParser(target=_TreeBuilder(), recover=True)
    try:
        parser.feed(value)
        return parser.close()
    except BaseException:
        _PARSERS.parser = None  # not to feed the next answer into this one's state
        raise


class _TreeBuilder:
    """bs4's BeautifulSoup tree building (handle_starttag/endtag/data, endData, _popToTag) as an
    lxml parser target. Events, not lxml's own tree: libxml2's tree builder drops what bs4
    keeps (text after a stray </html>, whitespace before the first tag, nesting past 255)."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self.document = _Node("[document]", {}, None)
        self.stack = [self.document]
        self.pending: list[str] = []
        self.preserving = 0  # open <pre>/<textarea>: bs4 keeps their whitespace-only text

    def _end_data(self) -> None:
        if self.pending:
            text = "".join(self.pending)
            self.pending = []
            if not self.preserving and not text.strip(_BS4_SPACES):
                text = "\n" if "\n" in text else " "
            self.stack[-1].children.append(text)

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        self._end_data()
        if tag in _NOT_PORTED:
            raise Unsupported(f"<{tag}>")
        parent = self.stack[-1]
        node = _Node(tag, attrib, parent)
        node.index = len(parent.children)
        parent.children.append(node)
        self.stack.append(node)
        if tag in _PRESERVE:
            self.preserving += 1

    def end(self, tag: str) -> None:
        self._end_data()
        if self.stack[-1].name != tag and all(node.name != tag for node in self.stack[1:]):
            return  # bs4 pops nothing for a tag that is not open
        while True:
            node = self.stack.pop()
            if node.name in _PRESERVE:
                self.preserving -= 1
            if node.name == tag:
                return

    def data(self, text: str) -> None:
        self.pending.append(text)

    def comment(self, text: str) -> None:
        raise Unsupported("comment")

    def pi(self, target: str, data: str) -> None:
        raise Unsupported("processing instruction")

    def doctype(self, *args: str) -> None:
        raise Unsupported("doctype")

    def close(self) -> _Node:
        self._end_data()
        document = self.document
        self._reset()  # the parser and this target are reused for the next answer
        return document


def replace_math(document: _Node, tex_of: Callable[[_Node], str | None]) -> None:
    """html_to_markdown's KaTeX/MathML replacement, in the same three passes, as new strings."""
    passes: list[tuple[Callable[[_Node], bool], Callable[[_Node, str], str]]] = [
        (lambda n: n.name == "span" and "katex-display" in _classes(n), lambda n, t: f"$${t}$$"),
        (lambda n: n.name == "span" and "katex" in _classes(n), lambda n, t: f"${t}$"),
        (lambda n: n.name == "math",
         lambda n, t: f"$${t}$$" if n.get("display") == "block" else f"${t}$"),
    ]
    for matches, render in passes:
        _replace(document, matches, render, tex_of)


def _classes(node: _Node) -> list[str]:
    return node.attrs.get("class", "").split()


def _replace(node: _Node, matches: Callable[[_Node], bool], render: Callable[[_Node, str], str],
             tex_of: Callable[[_Node], str | None]) -> None:
    for i, child in enumerate(node.children):
        if not isinstance(child, _Node):
            continue
        tex = tex_of(child) if matches(child) else None
        if tex is not None:
            node.children[i] = render(child, tex)
        else:
            _replace(child, matches, render, tex_of)


class MarkdownWalk:
    """markdownify's process_tag / process_text over _Node trees, with `converter`'s options."""

    def __init__(self, converter: MarkdownConverter, code_placeholder: re.Pattern[str]) -> None:
        options = converter.options
        # process_text's escaping and wrapping are not ported: only a converter without them
        if options["wrap"] or options["escape_misc"] or options["escape_asterisks"] or \
                options["escape_underscores"]:
            raise ValueError("MarkdownWalk ports markdownify without escaping or wrapping")
        self.converter = converter
        self.code_placeholder = code_placeholder
        self.conversions: dict[str, Callable[..., str] | None] = {}
        self.child_tags: dict[tuple[frozenset[str], str], frozenset[str]] = {}

    def convert(self, document: _Node) -> str:
        return self._tag(document, frozenset())

    def _conversion(self, name: str) -> Callable[..., str] | None:
        if name not in self.conversions:
            fn = self.converter.get_conv_fn_cached(name)
            if name in _LISTS:
                fn = self._convert_list
            elif fn is not None and name not in _REUSED and not re_html_heading.match(name):
                raise Unsupported(f"<{name}>")
            self.conversions[name] = fn
        return self.conversions[name]

    def _tag(self, node: _Node, parent_tags: frozenset[str]) -> str:
        name, inside = node.name, node.inside
        key = (parent_tags, name)
        child_tags = self.child_tags.get(key)
        if child_tags is None:
            child_tags = self.child_tags[key] = parent_tags | _tags_added_by(name)
        kids = node.children
        last = len(kids) - 1
        strings = []
        for i, kid in enumerate(kids):
            if type(kid) is _Node:
                text = self._tag(kid, child_tags)
            else:
                before = kids[i - 1] if i else None
                after = kids[i + 1] if i < last else None
                strip_before = (type(before) is _Node and before.outside) or (inside and not before)
                strip_after = (type(after) is _Node and after.outside) or (inside and not after)
                if not kid.strip() and (strip_before or strip_after):
                    continue  # markdownify's _can_ignore, which these two conditions cover
                text = _text(kid, strip_before, strip_after, child_tags)
            if text:
                strings.append(text)
        if name != "pre" and "pre" not in parent_tags:
            strings = _collapse_newlines(strings)
        text = "".join(strings)
        if name == "pre" and not self.code_placeholder.fullmatch(text.strip()):
            raise Unsupported("a <pre> that is not a cut-out code block")
        convert = self._conversion(name)
        return convert(node, text, parent_tags=parent_tags) if convert is not None else text

    def _convert_list(self, el: _Node, text: str, parent_tags: frozenset[str]) -> str:
        """markdownify's convert_list; its next-sibling test asks bs4 classes."""
        siblings = el.parent.children[el.index + 1 :] if el.parent is not None else []
        following = next((s for s in siblings if isinstance(s, _Node) or s.strip()), None)
        before_paragraph = bool(following) and getattr(following, "name", None) not in _LISTS
        if "li" in parent_tags:
            return "\n" + text.rstrip()
        return "\n\n" + text + ("\n" if before_paragraph else "")


def _removes_inside(name: str) -> bool:
    return name in _BLOCK or re_html_heading.match(name) is not None


def _tags_added_by(name: str) -> set[str]:
    """What process_tag adds to the parent tags it hands to its children."""
    added = {name}
    if name in ("td", "th") or re_html_heading.match(name):
        added.add("_inline")
    if name in ("pre", "code", "kbd", "samp"):
        added.add("_noformat")
    return added


def _text(text: str, strip_before: bool, strip_after: bool, parent_tags: frozenset[str]) -> str:
    """markdownify's process_text; escaping is off in the converter (MarkdownWalk checks)."""
    if "pre" not in parent_tags:
        # the two substitutions change nothing on text without these characters
        if "\n" in text or "\r" in text:
            text = _NEWLINE_WS.sub("\n", text)
        if "\t" in text or "  " in text:
            text = _WS.sub(" ", text)
    if strip_before:
        text = text.lstrip(" \t\r\n")
    if strip_after:
        text = text.rstrip()
    return text


def _collapse_newlines(strings: list[str]) -> list[str]:
    """process_tag's newline collapsing at child boundaries: each string split into (leading
    newlines, the rest, trailing newlines) as re_extract_newlines does."""
    collapsed = [""]
    for string in strings:
        if string[0] != "\n" and string[-1] != "\n":
            collapsed.extend(["", string, ""])
            continue
        body = string.strip("\n")
        if not body:
            leading, trailing = string, ""
        else:
            start = len(string) - len(string.lstrip("\n"))
            leading, trailing = string[:start], string[start + len(body) :]
        if collapsed[-1] and leading:
            previous = collapsed.pop()
            leading = "\n" * min(2, max(len(previous), len(leading)))
        collapsed.extend([leading, body, trailing])
    return collapsed
