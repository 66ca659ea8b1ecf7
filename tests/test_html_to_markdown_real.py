"""html_to_markdown on real 2023 ShareGPT answers (tests/data/sharegpt_real_html.jsonl: 8
conversations from RyokoAI/ShareGPT52K, CC0; provenance in the README beside it)."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from sftforge.tasks.steps.html_to_markdown import extract_code_blocks, html_to_markdown

REAL = Path(__file__).parent / "data" / "sharegpt_real_html.jsonl"
RECORDS = [json.loads(line) for line in REAL.read_text(encoding="utf-8").splitlines()]
ANSWERS = [turn["value"] for record in RECORDS for turn in record["conversations"]
           if turn["from"] == "gpt"]


def test_every_real_code_block_comes_out_fenced_byte_exact_with_its_language():
    coding = [a for a in ANSWERS if "<pre" in a]
    assert len(coding) >= 5
    for answer in coding:
        markdown = html_to_markdown(answer)
        _, blocks = extract_code_blocks(answer)
        for language, code in blocks:
            assert language == "swift"
            assert f"```{language}\n{code}\n```" in markdown
        assert "Copy code" not in markdown


def test_real_answers_keep_their_text_and_lose_their_markup():
    for answer in ANSWERS:
        markdown = html_to_markdown(answer)
        assert not re.search(r"</?(div|p|span|li|ol|ul|table|td|code|pre)\b", markdown)
        prose = re.sub(r"<pre\b.*?</pre>", " ", answer, flags=re.S)
        words = re.findall(r"[\u4e00-\u9fff]{4,}", html.unescape(re.sub(r"<[^>]+>", " ", prose)))
        assert words and all(word in markdown for word in words)


def test_real_tables_become_gfm_tables():
    tables = [a for a in ANSWERS if "<table" in a]
    assert len(tables) == 2
    for answer in tables:
        rows = [line for line in html_to_markdown(answer).splitlines() if line.startswith("|")]
        assert len(rows) >= 3 and re.fullmatch(r"\|( --- \|)+", rows[1])
