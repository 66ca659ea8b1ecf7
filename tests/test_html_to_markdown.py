"""html_to_markdown: what FastChat's cleaner did right is kept, each of its defects is fixed.

Each `test_fix_*` asserts a property FastChat's `clean_sharegpt.py` violates (noted per test).
"""

from __future__ import annotations

import pytest

from sftforge.tasks.steps.html_to_markdown import convert_messages, html_to_markdown

WRAP = '<div class="markdown prose w-full break-words dark:prose-invert light">{}</div>'
HEADER = (
    '<div class="flex items-center relative text-gray-200 bg-gray-800 px-4 py-2 text-xs '
    'font-sans">{label}<button class="flex ml-auto gap-2"><svg stroke="currentColor">'
    '<path d="M16 4h2"></path></svg>Copy code</button></div>'
)


def code_block(
    code_html: str, label: str = '<span class="">python</span>', cls: str = "python"
) -> str:
    return (
        f'<pre><div class="bg-black mb-4 rounded-md">{HEADER.format(label=label)}'
        f'<div class="p-4 overflow-y-auto"><code class="!whitespace-pre hljs language-{cls}">'
        f"{code_html}</code></div></div></pre>"
    )


PY = (
    '<span class="hljs-keyword">def</span> <span class="hljs-title function_">load_data</span>'
    '(<span class="hljs-params">file_path</span>):\n'
    "    rows = []\n"
    "\n"
    "\n"
    '    <span class="hljs-keyword">for</span> line <span class="hljs-keyword">in</span> '
    "open(file_path):\n"
    "        rows.append(line.strip())\n"
    '    <span class="hljs-keyword">return</span> rows &lt; <span class="hljs-number">3</span>\n'
)
PY_TEXT = (
    "def load_data(file_path):\n    rows = []\n\n\n    for line in open(file_path):\n"
    "        rows.append(line.strip())\n    return rows < 3"
)


def test_keeps_fenced_code_with_language_from_header():
    md = html_to_markdown(WRAP.format("<p>Here:</p>" + code_block(PY)))
    assert md == "Here:\n\n```python\n" + PY_TEXT + "\n```"


def test_removes_copy_code_button_and_regeneration_counter():
    md = html_to_markdown("<p>2 / 2</p>" + WRAP.format("<p>Answer.</p>" + code_block("x = 1\n")))
    assert "Copy code" not in md
    assert not md.startswith("2 / 2")
    assert md.startswith("Answer.")


def test_fix_no_backslash_escapes_in_prose():
    # FastChat issue #2462: markdownify escaped _ and * in prose (`\_`), ~15% of conversations.
    md = html_to_markdown(WRAP.format("<p>Set max_retries and use *args or __init__ here.</p>"))
    assert md == "Set max_retries and use *args or __init__ here."
    assert "\\" not in md


def test_fix_blank_lines_and_indentation_inside_code_preserved():
    # FastChat's final replace("\n\n\n", "\n") deleted blank lines inside code blocks.
    md = html_to_markdown(WRAP.format(code_block(PY)))
    assert PY_TEXT in md
    assert "rows = []\n\n\n    for" in md


def test_fix_tables_become_gfm():
    table = (
        "<table><thead><tr><th>Name</th><th>a|b</th></tr></thead><tbody>"
        "<tr><td>x_y</td><td><code>snake_case</code></td></tr></tbody></table>"
    )
    md = html_to_markdown(WRAP.format(table))
    assert md.splitlines() == ["| Name | a\\|b |", "| --- | --- |", "| x_y | `snake_case` |"]


def test_fix_inline_code_verbatim():
    md = html_to_markdown(WRAP.format("<p>Call <code>my_func(*args,  **kw)</code> now.</p>"))
    assert md == "Call `my_func(*args,  **kw)` now."


def test_inline_code_with_backticks_uses_longer_delimiter():
    md = html_to_markdown("<p>Use <code>a`b</code>.</p>")
    assert md == "Use `` a`b ``."


def test_fix_katex_becomes_latex_once():
    katex = (
        '<span class="katex"><span class="katex-mathml"><math><semantics><mrow><msup><mi>x</mi>'
        '<mn>2</mn></msup></mrow><annotation encoding="application/x-tex">x^2 + y_1</annotation>'
        '</semantics></math></span><span class="katex-html" aria-hidden="true">'
        '<span class="base">x2+y1</span></span></span>'
    )
    display = katex.replace('class="katex"', 'class="katex"', 1)
    md = html_to_markdown(
        WRAP.format(f'<p>Inline {katex} here.</p><span class="katex-display">{display}</span>')
    )
    assert "Inline $x^2 + y_1$ here." in md
    assert "$$x^2 + y_1$$" in md
    assert "x2+y1" not in md  # the rendered HTML copy is gone


def test_mathml_without_katex_uses_annotation():
    math = (
        '<math display="block"><semantics><mi>a</mi>'
        '<annotation encoding="application/x-tex">\\frac{a}{b}</annotation></semantics></math>'
    )
    assert html_to_markdown(f"<p>{math}</p>") == "$$\\frac{a}{b}$$"


@pytest.mark.parametrize(
    "label, cls",
    [
        ('<span class="">javascript</span>', "javascript"),  # header <span> with the language
        ("", "javascript"),  # only class="language-…" on <code>
        ("javascript", "javascript"),  # header text without a span
    ],
)
def test_fix_language_label_survives_every_2023_style(label, cls):
    md = html_to_markdown(WRAP.format(code_block("const a_b = 1;\n", label=label, cls=cls)))
    assert md == "```javascript\nconst a_b = 1;\n```"


def test_fix_code_block_inside_list_item_stays_inside():
    html = WRAP.format(
        "<ol><li><p>First:</p>" + code_block("if x:\n    y()\n") + "</li><li>Second</li></ol>"
    )
    md = html_to_markdown(html)
    assert md == ("1. First:\n\n   ```python\n   if x:\n       y()\n   ```\n2. Second")


def test_code_containing_fences_gets_a_longer_fence():
    md = html_to_markdown(code_block("print('```')\n"))
    assert md == "````python\nprint('```')\n````"


def test_fix_human_messages_left_as_they_are():
    pasted = "  Fix this:\n\ndef f(x):\n    if x:\n        return x_1 * 2\n\n"
    record = {
        "id": "a",
        "source": "s",
        "model": None,
        "meta": {},
        "messages": [
            {"role": "user", "content": pasted},
            {"role": "assistant", "content": "<p>Use <code>x_1</code>.</p>"},
        ],
    }
    out = convert_messages(record, roles=["assistant"])
    assert out["messages"][0]["content"] == pasted.strip()
    assert out["messages"][1]["content"] == "Use `x_1`."


def test_plain_text_answer_is_unescaped_only():
    assert html_to_markdown("a &lt; b and c_d") == "a < b and c_d"


def test_broken_html_does_not_crash():
    broken = "<div><p>Unclosed <b>bold <pre><code>x = 1\n  y = 2"
    md = html_to_markdown(broken)
    assert "x = 1" in md and "y = 2" in md


def test_unclosed_pre_still_becomes_a_code_block():
    md = html_to_markdown('<p>See:</p><pre><code class="language-sh">ls -la\n  cd /tmp')
    assert "```sh\nls -la\n  cd /tmp\n```" in md


def test_deeply_nested_html_is_a_parse_error_reject_not_a_crash():
    record = {
        "id": "a",
        "source": "s",
        "model": None,
        "meta": {},
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "<div>" * 5000 + "x" + "</div>" * 5000},
        ],
    }
    out = convert_messages(record, roles=["assistant"])
    # Either converted or rejected with a reason; never an exception.
    if not isinstance(out, dict):
        assert out.reason == "parse_error"


def test_huge_answer_converts():
    body = "".join(f"<p>Paragraph {i} with some_name.</p>" for i in range(20_000))
    md = html_to_markdown(WRAP.format(body + code_block("x = 1\n" * 5000)))
    assert md.count("Paragraph") == 20_000
    assert md.count("x = 1") == 5000
