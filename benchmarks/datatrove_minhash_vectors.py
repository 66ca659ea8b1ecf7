"""Writes tests/data/datatrove_minhash_vectors.json: datatrove 0.10.1's MinHash signatures
(5-word shingles, 14 × 8, seed 1, its defaults) of a few varied texts, computed by datatrove
itself in benchmarks/.datatrove-venv (made by benchmarks/near_dedup.py on first use).
`tests/test_dedup_near_datatrove.py` checks `dedup_near`'s `hashes: datatrove` against them.

    python benchmarks/datatrove_minhash_vectors.py
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from near_dedup import ensure_venv  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "datatrove_minhash_vectors.json"
TEXTS = [
    "Write a Python function that returns the n-th Fibonacci number, and explain its cost.",
    "Write a python FUNCTION that returns the N-th fibonacci number -- and explain its cost!",
    "The invoice lists 3 items at $4.50 each, 1,200 units in total, due on 2023-05-01.",
    "Café au lait, naïve façade, déjà vu: Ünïcode diacritics are dropped before shingling.",
    "def add(a, b):\n    return a + b  # a tiny code block\n\nprint(add(2, 3))",
    "用中文写一首关于秋天的诗，要求押韵，并解释每一句的意思。 Then translate it to English please.",
    "Emoji 🙂 and symbols © ® → ≠ sit between the words of this sentence here.",
    "Tabs\tand\nnewlines\r\nand    runs of   spaces are one space to both tools here.",
    "Numbers like ٣٤٥ and ١٢٫٥ in other scripts are numbers too for the tokenizer.",
    "Non\u00a0breaking\u3000and ideographic spaces, a lone mark \u0301 between, and  trailing   ",
    "!!! ... ??? --- only punctuation here, then five more words",
    "four words only here",
    "",
]

SCRIPT = """
import json, sys
import numpy as np
from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature
from datatrove.utils.word_tokenizers import WordTokenizer

class Words(WordTokenizer):  # as in benchmarks/near_dedup.py: whitespace words
    def word_tokenize(self, text): return text.split()
    def sent_tokenize(self, text): return [text]
    def span_tokenize(self, text): return [(0, len(text))]

signer = MinhashDedupSignature("/tmp/unused", config=MinhashConfig(), language=Words())
out = []
for text in json.loads(sys.stdin.read()):
    shingles = signer.get_shingles(text)
    sig = sum(signer.get_signature(shingles), []) if shingles.size else None
    out.append({"text": text, "signature": None if sig is None else [str(v) for v in sig]})
print(json.dumps(out, ensure_ascii=False, indent=1))
"""


def main() -> None:
    python = ensure_venv()
    done = subprocess.run(
        [str(python), "-c", SCRIPT], input=json.dumps(TEXTS), capture_output=True, text=True
    )
    if done.returncode:
        raise SystemExit(done.stderr)
    OUT.write_text(done.stdout)
    print(f"wrote {OUT} ({len(TEXTS)} texts)")


if __name__ == "__main__":
    main()
