"""BeautifulSoup's tree of an answer, built fast: lxml's parser events into light nodes.

markdown_walk.py converts these nodes as markdownify converts bs4's tree. The nodes come from
the events bs4's lxml builder receives (one `HTMLParser.feed` of the str, with a parser target),
assembled by bs4's own rules (endData's whitespace collapsing, _popToTag), not from lxml's
tree: libxml2's tree builder drops what bs4 keeps (text after a stray </html>, whitespace before
the first tag, anything nested deeper than 255 elements). Markup this does not reproduce raises
`Unsupported`: comments, doctypes, processing instructions, a leading BOM, and the tags whose
text bs4 keeps in string classes of their own (script, style, template, rt, rp).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

from lxml import etree
from markdownify import re_html_heading

_BS4_SPACES = "\x20\x0a\x09\x0c\x0d"  # BeautifulSoup.ASCII_SPACES
# markdownify's should_remove_whitespace_inside (and headings)
_BLOCK = frozenset({"p", "blockquote", "article", "div", "section", "ol", "ul", "li", "dl",
                    "dt", "dd", "table", "thead", "tbody", "tfoot", "tr", "td", "th"})
# bs4 keeps their text in its own string classes, which get_text() and markdownify treat apart.
_NOT_PORTED = frozenset({"script", "style", "template", "rt", "rp"})
_PRESERVE = frozenset({"pre", "textarea"})  # bs4's preserve_whitespace_tags
_PARSERS = threading.local()


class Unsupported(Exception):
    """Markup the fast path does not cover; the caller converts it with BeautifulSoup."""


class Node:
    """An element with the part of bs4's Tag interface markdownify's conversions use."""

    __slots__ = ("name", "attrs", "children", "parent", "index", "inside", "outside")

    def __init__(self, name: str, attrs: Any, parent: Node | None) -> None:
        self.name = name
        self.attrs = attrs  # a dict, or lxml's attribute view (get, [], in)
        self.children: list[Node | str] = []
        self.parent = parent
        self.index = 0  # position in parent.children
        # markdownify strips whitespace inside these / around these (should_remove_whitespace_*)
        self.inside = removes_inside(name)
        self.outside = self.inside or name == "pre"

    def get(self, key: str, default: Any = None) -> Any:
        return self.attrs.get(key, default)

    def __getitem__(self, key: str) -> str:
        return self.attrs[key]

    def get_text(self) -> str:
        return "".join(self._strings())

    def _strings(self) -> Iterator[str]:
        for child in self.children:
            if isinstance(child, Node):
                yield from child._strings()
            else:
                yield child

    def _elements(self) -> Iterator[Node]:
        for child in self.children:
            if isinstance(child, Node):
                yield child
                yield from child._elements()

    def find_all(self, names: str | list[str]) -> list[Node]:
        wanted = {names} if isinstance(names, str) else set(names)
        return [el for el in self._elements() if el.name in wanted]

    def _previous_elements(self) -> Iterator[Node]:
        if self.parent is None:
            return
        for sibling in reversed(self.parent.children[: self.index]):
            if isinstance(sibling, Node):
                yield sibling

    def find_previous_sibling(self) -> Node | None:
        return next(self._previous_elements(), None)

    def find_previous_siblings(self, name: str) -> list[Node]:
        return [el for el in self._previous_elements() if el.name == name]

    def find(self, name: str, attrs: dict[str, str] | None = None) -> Node | None:
        """bs4's `find(name, attrs=...)` for exact attribute values (html_to_markdown's _tex)."""
        wanted = (attrs or {}).items()
        return next((el for el in self._elements() if el.name == name
                     and all(el.attrs.get(k) == v for k, v in wanted)), None)


def parse(value: str) -> Node:
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
        self.document = Node("[document]", {}, None)
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
        node = Node(tag, attrib, parent)
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

    def close(self) -> Node:
        self._end_data()
        document = self.document
        self._reset()  # the parser and this target are reused for the next answer
        return document


def replace_math(document: Node, tex_of: Callable[[Node], str | None]) -> None:
    """html_to_markdown's KaTeX/MathML replacement, in the same three passes, as new strings."""
    passes: list[tuple[Callable[[Node], bool], Callable[[Node, str], str]]] = [
        (lambda n: n.name == "span" and "katex-display" in _classes(n), lambda n, t: f"$${t}$$"),
        (lambda n: n.name == "span" and "katex" in _classes(n), lambda n, t: f"${t}$"),
        (lambda n: n.name == "math",
         lambda n, t: f"$${t}$$" if n.get("display") == "block" else f"${t}$"),
    ]
    for matches, render in passes:
        _replace(document, matches, render, tex_of)


def _classes(node: Node) -> list[str]:
    return node.attrs.get("class", "").split()


def _replace(node: Node, matches: Callable[[Node], bool], render: Callable[[Node, str], str],
             tex_of: Callable[[Node], str | None]) -> None:
    for i, child in enumerate(node.children):
        if not isinstance(child, Node):
            continue
        tex = tex_of(child) if matches(child) else None
        if tex is not None:
            node.children[i] = render(child, tex)
        else:
            _replace(child, matches, render, tex_of)


def removes_inside(name: str) -> bool:
    return name in _BLOCK or re_html_heading.match(name) is not None
