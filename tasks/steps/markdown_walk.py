"""html_to_markdown's hot path: markdownify's walk over markdown_tree's nodes, not bs4's tree.

Profiled on code-heavy answers (benchmarks/sharegpt_pipeline.py input), building the bs4 tree
was half of html_to_markdown's time and markdownify's generic walk (isinstance chains, sibling
lookups through bs4's filter machinery) most of the rest. markdown_tree.py builds bs4's tree
from lxml's parser events as light nodes that answer the few bs4 calls markdownify's
conversions make; here `process_tag` / `process_text` of markdownify 1.2 are ported over them.
The tag conversions themselves are markdownify's (and html_to_markdown's `_Converter`
overrides), called unchanged; ul/ol, whose conversion tests bs4 classes, is ported.

Anything outside what was ported raises `Unsupported` and html_to_markdown takes the
BeautifulSoup path: tags whose conversion needs more of bs4 (video, a <pre> that is not a
cut-out code block) and any tag a later markdownify adds a conversion for.
tests/test_markdown_walk.py compares both paths byte for byte.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from markdownify import MarkdownConverter, re_html_heading

from sftforge.tasks.steps.markdown_tree import Node, Unsupported

_NEWLINE_WS = re.compile(r"[\t \r\n]*[\r\n][\t \r\n]*")
_WS = re.compile(r"[\t ]+")
# Conversions called as markdownify defines them: they use only the text, the parent tags and
# get / attrs / parent / get_text / find_previous_siblings / find_all, which Node answers.
_REUSED = frozenset({"a", "b", "strong", "em", "i", "del", "s", "sub", "sup", "code", "kbd",
                     "samp", "blockquote", "br", "hr", "p", "div", "article", "section", "dl",
                     "dd", "dt", "table", "caption", "figcaption", "td", "th", "tr", "li", "img",
                     "q", "pre", "[document]"})
_LISTS = frozenset({"ul", "ol"})


class MarkdownWalk:
    """markdownify's process_tag / process_text over Node trees, with `converter`'s options."""

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

    def convert(self, document: Node) -> str:
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

    def _tag(self, node: Node, parent_tags: frozenset[str]) -> str:
        name, inside = node.name, node.inside
        key = (parent_tags, name)
        child_tags = self.child_tags.get(key)
        if child_tags is None:
            child_tags = self.child_tags[key] = parent_tags | _tags_added_by(name)
        kids = node.children
        last = len(kids) - 1
        strings = []
        for i, kid in enumerate(kids):
            if type(kid) is Node:
                text = self._tag(kid, child_tags)
            else:
                before = kids[i - 1] if i else None
                after = kids[i + 1] if i < last else None
                strip_before = (type(before) is Node and before.outside) or (inside and not before)
                strip_after = (type(after) is Node and after.outside) or (inside and not after)
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

    def _convert_list(self, el: Node, text: str, parent_tags: frozenset[str]) -> str:
        """markdownify's convert_list; its next-sibling test asks bs4 classes."""
        siblings = el.parent.children[el.index + 1 :] if el.parent is not None else []
        following = next((s for s in siblings if isinstance(s, Node) or s.strip()), None)
        before_paragraph = bool(following) and getattr(following, "name", None) not in _LISTS
        if "li" in parent_tags:
            return "\n" + text.rstrip()
        return "\n\n" + text + ("\n" if before_paragraph else "")


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
