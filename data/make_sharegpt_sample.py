"""Generate ShareGPT-format sample data the way ChatGPT rendered it in 2023.

    python data/make_sharegpt_sample.py                      # the shipped demo sample
    python data/make_sharegpt_sample.py --records 20000 --code-heavy --out /tmp/big.jsonl

Answers are the HTML the ShareGPT extension captured: the `markdown prose` wrapper,
<pre> code blocks with a language header and a "Copy code" button, highlight.js `hljs-*`
spans on every token, lists, tables, inline code with underscores, KaTeX math. Mixed in,
as in the real dumps: duplicates, non-English conversations, wrong role orders, blocked
words, empty answers, leading assistant / trailing user turns and broken records.
Everything is drawn from one seeded RNG, so the same arguments give the same bytes.
"""

from __future__ import annotations

import argparse
import html
import json
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

PROSE_WRAP = '<div class="markdown prose w-full break-words dark:prose-invert light">{}</div>'
PRE = (
    '<pre><div class="bg-black mb-4 rounded-md"><div class="flex items-center relative '
    'text-gray-200 bg-gray-800 px-4 py-2 text-xs font-sans">{header}<button class="flex '
    'ml-auto gap-2"><svg stroke="currentColor" fill="none" stroke-width="2" viewBox="0 0 24 24" '
    'stroke-linecap="round" stroke-linejoin="round" class="h-4 w-4" height="1em" width="1em" '
    'xmlns="http://www.w3.org/2000/svg"><path d="M16 4h2a2 2 0 0 1 2 2v14a2 2 0 0 1-2 2H6a2 2 '
    '0 0 1-2-2V6a2 2 0 0 1 2-2h2"></path><rect x="8" y="2" width="8" height="4" rx="1" ry="1">'
    '</rect></svg>Copy code</button></div><div class="p-4 overflow-y-auto"><code class="'
    '!whitespace-pre hljs{cls}">{code}</code></div></div></pre>'
)

KEYWORDS = {
    "python": "def return import from for in if else elif while class with as None True False",
    "javascript": "function return const let var for if else while class new await async",
    "bash": "if then fi for do done echo export",
    "sql": "SELECT FROM WHERE GROUP BY ORDER JOIN ON AS INSERT INTO VALUES",
}

SNIPPETS = {
    "python": [
        'import pandas as pd\n\n\ndef load_user_data(file_path):\n    """Load the CSV and drop empty rows."""\n'
        '    df = pd.read_csv(file_path)\n    df = df.dropna(subset=["user_id", "created_at"])\n\n'
        '    # keep only active users\n    return df[df["is_active"] == True]\n',
        "class RateLimiter:\n    def __init__(self, max_calls, period_s=60):\n        self.max_calls = max_calls\n"
        "        self.period_s = period_s\n        self._calls = []\n\n    def allow(self, now):\n"
        "        self._calls = [t for t in self._calls if now - t < self.period_s]\n"
        "        if len(self._calls) < self.max_calls:\n            self._calls.append(now)\n"
        "            return True\n        return False\n",
        'for i in range(1, 101):\n    if i % 15 == 0:\n        print("FizzBuzz")\n    elif i % 3 == 0:\n'
        '        print("Fizz")\n    elif i % 5 == 0:\n        print("Buzz")\n    else:\n        print(i)\n',
        "def merge_sorted(a_list, b_list):\n    result, i, j = [], 0, 0\n    while i < len(a_list) and j < len(b_list):\n"
        "        if a_list[i] <= b_list[j]:\n            result.append(a_list[i]); i += 1\n        else:\n"
        "            result.append(b_list[j]); j += 1\n\n    return result + a_list[i:] + b_list[j:]\n",
    ],
    "javascript": [
        "async function fetchUserProfile(user_id) {\n  const response = await fetch(`/api/users/${user_id}`);\n"
        "  if (!response.ok) {\n    throw new Error('Request failed: ' + response.status);\n  }\n\n"
        "  return response.json();\n}\n",
        "const debounce = (fn, wait_ms = 300) => {\n  let timer = null;\n  return (...args) => {\n"
        "    clearTimeout(timer);\n    timer = setTimeout(() => fn(...args), wait_ms);\n  };\n};\n",
    ],
    "bash": [
        'export DATA_DIR=/var/lib/app_data\nfor f in "$DATA_DIR"/*.log; do\n  echo "Compressing $f"\n'
        '  gzip -9 "$f"\ndone\n',
    ],
    "sql": [
        "SELECT u.user_id, COUNT(o.order_id) AS order_count\nFROM users u\nJOIN orders o ON o.user_id = u.user_id\n"
        "WHERE o.created_at > '2023-01-01'\nGROUP BY u.user_id\nORDER BY order_count DESC;\n",
    ],
}

TOPICS = [
    ("load a CSV file and clean it", "python"),
    ("write a rate limiter", "python"),
    ("solve FizzBuzz", "python"),
    ("merge two sorted lists", "python"),
    ("fetch a user profile from an API", "javascript"),
    ("debounce a function", "javascript"),
    ("compress old log files", "bash"),
    ("count orders per user", "sql"),
    ("explain the difference between a list and a tuple", None),
    ("plan a three-day trip to Kyoto", None),
    ("write a cover letter for a data analyst role", None),
    ("summarise the causes of the French Revolution", None),
    ("explain gradient descent", "math"),
    ("compare SQL and NoSQL databases", "table"),
]

PROSE = [
    "Here is a step-by-step explanation of how this works.",
    "The key idea is to keep the state small and update it incrementally.",
    "Note that <code>snake_case_names</code> are the convention in Python, while JavaScript prefers camelCase.",
    "You can adjust the <code>max_retries</code> parameter if the service is slow to respond.",
    "This approach runs in <em>linear</em> time and uses <strong>constant</strong> extra memory.",
    "If you have any further questions, feel free to ask!",
    "Make sure the <code>__init__</code> method sets every attribute the class uses.",
    "In practice, most of the time is spent waiting on I/O rather than computing.",
]

FOREIGN = {
    "zh": (
        "请帮我写一首关于春天的短诗。",
        "<p>春风拂面花自开，燕子归来绕楼台。细雨无声润万物，青山绿水入画来。</p>"
        "<p>这首诗描写了春天的景色，希望你喜欢。</p>",
    ),
    "es": (
        "¿Puedes explicarme cómo funciona la fotosíntesis de manera sencilla?",
        "<p>Claro. La fotosíntesis es el proceso mediante el cual las plantas convierten la luz del sol, "
        "el agua y el dióxido de carbono en glucosa y oxígeno.</p><ol><li><p>Las hojas absorben la luz.</p>"
        "</li><li><p>La energía se usa para producir azúcar.</p></li></ol>",
    ),
    "de": (
        "Kannst du mir erklären, wie man einen guten Lebenslauf schreibt?",
        "<p>Gerne! Ein guter Lebenslauf ist übersichtlich, ehrlich und auf die Stelle zugeschnitten. "
        "Beginnen Sie mit Ihren persönlichen Daten und Ihrer Berufserfahrung.</p>",
    ),
    "fr": (
        "Quels sont les meilleurs endroits à visiter à Paris en hiver ?",
        "<p>Paris en hiver est magnifique. Je vous recommande le musée du Louvre, le musée d'Orsay "
        "et une promenade le long de la Seine au coucher du soleil.</p>",
    ),
}

MODELS = ["Model: GPT-4"] * 5 + ["Model: Default (GPT-3.5)"] * 4 + [None]


def highlight(code: str, lang: str) -> str:
    """Wrap tokens in highlight.js spans, as ChatGPT's renderer did."""
    keywords = set(KEYWORDS.get(lang, "").split())
    out = []
    for token in re.findall(r"#[^\n]*|\"[^\"\n]*\"|'[^'\n]*'|\w+|\s+|[^\w\s]", code):
        esc = html.escape(token, quote=False)
        if token.startswith("#") and lang in ("python", "bash"):
            out.append(f'<span class="hljs-comment">{esc}</span>')
        elif token[:1] in "\"'":
            out.append(f'<span class="hljs-string">{esc}</span>')
        elif token.isdigit():
            out.append(f'<span class="hljs-number">{esc}</span>')
        elif token in keywords:
            out.append(f'<span class="hljs-keyword">{esc}</span>')
        elif re.fullmatch(r"[A-Za-z_]\w*", token) and token[0].isupper():
            out.append(f'<span class="hljs-title class_">{esc}</span>')
        elif re.fullmatch(r"[a-z_]\w*", token):
            out.append(f'<span class="hljs-variable">{esc}</span>')
        else:
            out.append(esc)
    return "".join(out)


def code_block(rng: random.Random, lang: str) -> str:
    code = rng.choice(SNIPPETS[lang])
    if rng.random() < 0.7:  # 2023 style: language in the header <span>
        return PRE.format(
            header=f'<span class="">{lang}</span>',
            cls=f" language-{lang}",
            code=highlight(code, lang),
        )
    # the other style: no label in the header, only class="language-…" on <code>
    return PRE.format(header="", cls=f" language-{lang}", code=highlight(code, lang))


def table_html() -> str:
    return (
        "<table><thead><tr><th>Aspect</th><th>SQL</th><th>NoSQL</th></tr></thead><tbody>"
        "<tr><td>Schema</td><td>fixed</td><td>flexible</td></tr>"
        "<tr><td>Scaling</td><td>vertical</td><td>horizontal</td></tr>"
        "<tr><td>Example</td><td><code>PostgreSQL</code></td><td><code>MongoDB</code></td></tr>"
        "</tbody></table>"
    )


def math_html() -> str:
    tex = r"\theta_{t+1} = \theta_t - \eta \nabla L(\theta_t)"
    return (
        '<p>The update rule is <span class="katex"><span class="katex-mathml"><math xmlns="http://www.w3.org/1998/'
        'Math/MathML"><semantics><mrow><msub><mi>θ</mi><mrow><mi>t</mi><mo>+</mo><mn>1</mn></mrow></msub>'
        f'</mrow><annotation encoding="application/x-tex">{html.escape(tex)}</annotation></semantics></math>'
        '</span><span class="katex-html" aria-hidden="true"><span class="base">θt+1=θt−η∇L(θt)</span>'
        "</span></span> where the learning rate controls the step size.</p>"
    )


def answer_html(rng: random.Random, topic: str, kind: str | None, code_heavy: bool) -> str:
    parts = [f"<p>Sure! Here is how to {topic}. {rng.choice(PROSE)}</p>"]
    if kind in SNIPPETS:
        blocks = 1
        for _ in range(blocks):
            if rng.random() < 0.3:  # a code block inside a list item
                parts.append(
                    f"<ol><li><p>First, the function:</p>{code_block(rng, kind)}</li>"
                    "<li><p>Then call it with your data.</p></li></ol>"
                )
            else:
                parts.append(code_block(rng, kind))
            parts.append(f"<p>{rng.choice(PROSE)}</p>")
    elif kind == "table":
        parts.append(table_html())
    elif kind == "math":
        parts.append(math_html())
    parts.append(
        "<ul>"
        + "".join(f"<li>{rng.choice(PROSE)}</li>" for _ in range(rng.randint(1, 3)))
        + "</ul>"
    )
    parts.append(f"<p>{rng.choice(PROSE)}</p>")
    return PROSE_WRAP.format("".join(parts))


def human_text(rng: random.Random, topic: str, kind: str | None) -> str:
    text = f"Can you help me {topic}?"
    if kind == "python" and rng.random() < 0.3:  # users paste code with indentation
        text += "\nThis is what I have so far:\n\ndef f(x):\n    if x:\n        return x * 2\n"
    return text


def conversation(rng: random.Random, idx: int, code_heavy: bool) -> dict[str, Any]:
    turns = []
    for _ in range(rng.randint(1, 3)):
        topic, kind = rng.choice(TOPICS[:8] if code_heavy else TOPICS)
        turns.append({"from": "human", "value": human_text(rng, topic, kind)})
        turns.append({"from": "gpt", "value": answer_html(rng, topic, kind, code_heavy)})
    record: dict[str, Any] = {"id": f"sg{idx:06d}", "conversations": turns}
    model = rng.choice(MODELS)
    if model is not None:
        record["model"] = model
    return record


def flawed(rng: random.Random, idx: int, base: dict[str, Any], earlier: list[dict]) -> dict | str:
    """One of the defects real dumps have (what each becomes is in the README)."""
    kind = rng.choice(
        [
            "duplicate",
            "duplicate_ws",
            "foreign",
            "wrong_order",
            "blocked",
            "empty",
            "leading_gpt",
            "trailing_human",
            "not_json",
            "no_conversations",
            "value_not_string",
            "unknown_role",
        ]
    )
    rid = f"sg{idx:06d}"
    if kind == "duplicate" and earlier:
        return {**rng.choice(earlier), "id": rid}
    if kind == "duplicate_ws" and earlier:  # same text, different whitespace in the HTML
        src = rng.choice(earlier)
        conv = [dict(t, value=t["value"].replace("</p><", "</p>\n<")) for t in src["conversations"]]
        return {**src, "id": rid, "conversations": conv}
    if kind == "foreign":
        lang = rng.choice(sorted(FOREIGN))
        question, answer = FOREIGN[lang]
        return {
            "id": rid,
            "model": "Model: GPT-4",
            "conversations": [
                {"from": "human", "value": question},
                {"from": "gpt", "value": PROSE_WRAP.format(answer)},
            ],
        }
    conv = base["conversations"]
    if kind == "wrong_order":
        return {**base, "id": rid, "conversations": [conv[0], conv[0], *conv[1:]]}
    if kind == "blocked":
        extra = {
            "from": "gpt",
            "value": PROSE_WRAP.format(
                "<p>As an AI language model developed by OpenAI, I cannot browse the internet.</p>"
            ),
        }
        return {**base, "id": rid, "conversations": [conv[0], extra]}
    if kind == "empty":
        return {
            **base,
            "id": rid,
            "conversations": [
                *conv,
                {"from": "human", "value": "And more?"},
                {"from": "gpt", "value": ""},
            ],
        }
    if kind == "leading_gpt":
        return {**base, "id": rid, "conversations": [conv[1], *conv]}
    if kind == "trailing_human":
        return {**base, "id": rid, "conversations": [*conv, {"from": "human", "value": "Thanks!"}]}
    if kind == "not_json":
        return '{"id": "' + rid + '", "conversations": [{"from": "human", "value": "trunc'
    if kind == "no_conversations":
        return {"id": rid, "model": "Model: GPT-4", "items": conv}
    if kind == "value_not_string":
        return {**base, "id": rid, "conversations": [{"from": "human", "value": 42}, conv[1]]}
    return {**base, "id": rid, "conversations": [{"from": "bot", "value": "hi"}, *conv]}


def generate(
    records: int, seed: int = 1234, code_heavy: bool = False, flawed_share: float = 0.25
) -> Iterator[dict[str, Any] | str]:
    """Yield `records` items: conversation dicts, or raw strings for lines that are not JSON."""
    rng = random.Random(seed)
    earlier: list[dict[str, Any]] = []
    for idx in range(records):
        base = conversation(rng, idx, code_heavy)
        if idx > 5 and rng.random() < flawed_share:
            yield flawed(rng, idx, base, earlier)
        else:
            if len(earlier) < 200:
                earlier.append(base)
            yield base


def write_jsonl(path: Path, items: Iterator[dict[str, Any] | str]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w", encoding="utf-8") as fh:
        for item in items:
            fh.write(
                (item if isinstance(item, str) else json.dumps(item, ensure_ascii=False)) + "\n"
            )
            n += 1
    return n


def share_page(record: dict[str, Any], title: str) -> str:
    """A saved sharegpt.com/c/… page: the conversation sits in Next.js's __NEXT_DATA__."""
    data = {
        "props": {
            "pageProps": {
                "id": record["id"],
                "content": {
                    "title": title,
                    "model": record.get("model"),
                    "items": record["conversations"],
                },
            }
        },
        "page": "/c/[id]",
        "buildId": "sample",
    }
    payload = json.dumps(data, ensure_ascii=False).replace("</", "<\\/")
    return (
        f"<!DOCTYPE html><html><head><title>{html.escape(title)} - ShareGPT</title></head><body>"
        f'<div id="__next"></div><script id="__NEXT_DATA__" type="application/json">{payload}'
        "</script></body></html>\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=400)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--code-heavy", action="store_true")
    parser.add_argument("--flawed-share", type=float, default=0.25)
    parser.add_argument("--out", type=Path, default=HERE / "sharegpt_sample.jsonl")
    parser.add_argument(
        "--pages",
        type=Path,
        default=None,
        help="also write saved share pages here (default for the demo sample)",
    )
    args = parser.parse_args()
    n = write_jsonl(args.out, generate(args.records, args.seed, args.code_heavy, args.flawed_share))
    print(f"wrote {n} records to {args.out}")
    pages = args.pages or (
        HERE / "sharegpt_pages" if args.out == HERE / "sharegpt_sample.jsonl" else None
    )
    if pages:
        pages.mkdir(parents=True, exist_ok=True)
        rng = random.Random(args.seed + 1)
        for i in range(3):
            record = conversation(rng, 900000 + i, code_heavy=False)
            (pages / f"page_{i}.html").write_text(
                share_page(record, f"Sample chat {i}"), encoding="utf-8"
            )
        (pages / "broken_page.html").write_text("<html><body>Not a share page</body></html>\n")
        print(f"wrote 4 saved pages to {pages}")


if __name__ == "__main__":
    main()
