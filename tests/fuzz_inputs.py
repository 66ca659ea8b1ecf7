"""Hostile input, generated: ShareGPT dumps and instruction files with every kind of damage a
reader meets in the wild or from an adversary — broken JSON, broken encodings, surrogates,
deep and huge values, hostile HTML, truncated and mislabelled compression.

Each generator returns the bytes of a file and what a correct reader must make of it: the
number of input records (frames) it holds and the ids of the records that are well-formed.
`python -m tests.fuzz_inputs DIR --records N` writes a larger set for a manual run.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

Line = Callable[[random.Random, str], bytes]  # (rng, id) -> one JSONL line (no newline)

WORDS = [
    *("the", "model", "answers", "a", "question", "about", "python"),
    *("code", "data", "lists", "and", "sorting", "quickly"),
]


def _text(rng: random.Random, n: int = 12) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "?"


def _record(rng: random.Random, rid: str, **extra: object) -> dict:
    return {
        "id": rid,
        "model": "gpt-4",
        "conversations": [
            {"from": "human", "value": _text(rng)},
            {"from": "gpt", "value": f"<p>{_text(rng, 20)}</p>"},
        ],
        **extra,
    }


def _dump(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


def _swap(rng: random.Random, rid: str, old: bytes, new: bytes, **extra: object) -> bytes:
    line = _dump(_record(rng, rid, **extra))
    assert old in line
    return line.replace(old, new, 1)


def _deep(levels: int) -> object:
    value: object = "x"
    for _ in range(levels):
        value = [value]
    return value


def _deep_extra(rng: random.Random, rid: str, levels: int) -> bytes:
    """A record with an extra field nested `levels` deep (too deep for json.dumps itself)."""
    nested = b"[" * levels + b'"x"' + b"]" * levels
    return _dump(_record(rng, rid, extra=0)).replace(b'"extra": 0', b'"extra": ' + nested)


def _html(body: str) -> Line:
    def make(rng: random.Random, rid: str) -> bytes:
        record = _record(rng, rid)
        record["conversations"][1]["value"] = body
        return _dump(record)

    return make


# Lines a reader must reject (reason given) — the record is broken before any step sees it.
BROKEN: dict[str, tuple[str, Line]] = {
    "surrogate_in_value": ("invalid_unicode", lambda r, i: _swap(r, i, b"<p>", b"\\ud800<p>")),
    "surrogate_in_role": ("invalid_unicode", lambda r, i: _swap(r, i, b'"gpt"', b'"g\\udc00"')),
    "surrogate_in_id": (
        "invalid_unicode",
        lambda r, i: _swap(r, i, i.encode(), b"\\udfff" + i.encode()),
    ),
    "surrogate_in_extra": (
        "invalid_unicode",
        lambda r, i: _dump(_record(r, i, note="x")).replace(b'"x"', b'"\\ud8ff"'),
    ),
    "surrogate_in_key": (
        "invalid_unicode",
        lambda r, i: _dump(_record(r, i, note=1)).replace(b'"note"', b'"\\ud800"'),
    ),
    "raw_surrogate_bytes": (
        "invalid_unicode",
        lambda r, i: _swap(r, i, b"<p>", b"\xed\xa0\x80<p>"),
    ),
    "invalid_byte": ("invalid_unicode", lambda r, i: _swap(r, i, b"<p>", b"\xff<p>")),
    "cut_utf8_sequence": ("invalid_unicode", lambda r, i: _swap(r, i, b"<p>", b"\xe2\x82<p>")),
    "overlong_utf8": ("invalid_unicode", lambda r, i: _swap(r, i, b"<p>", b"\xc0\xaf<p>")),
    "200k_brackets": ("too_deep", lambda r, i: b"[" * 200_000),
    "extra_3000_deep": ("too_deep", lambda r, i: _deep_extra(r, i, 3000)),
    "extra_150_deep": ("too_deep", lambda r, i: _dump(_record(r, i, extra=_deep(150)))),
    "int_5000_digits": (
        "invalid_json",
        lambda r, i: _dump(_record(r, i, n=0)).replace(b'"n": 0', b'"n": ' + b"7" * 5000),
    ),
    "nan": (
        "invalid_json",
        lambda r, i: _dump(_record(r, i, score=0)).replace(b'"score": 0', b'"score": NaN'),
    ),
    "infinity": (
        "invalid_json",
        lambda r, i: _dump(_record(r, i, score=0)).replace(b'"score": 0', b'"score": -Infinity'),
    ),
    "unterminated_string": ("invalid_json", lambda r, i: _dump(_record(r, i))[:-40]),
    "missing_brace": ("invalid_json", lambda r, i: _dump(_record(r, i))[:-1]),
    "trailing_comma": ("invalid_json", lambda r, i: _dump(_record(r, i))[:-1] + b", }"),
    "single_quotes": ("invalid_json", lambda r, i: _dump(_record(r, i)).replace(b'"', b"'")),
    "raw_control_char": (
        "invalid_json",
        lambda r, i: _swap(r, i, b"<p>", b"\x01<p>"),
    ),
    "garbage_line": (
        "invalid_json",
        lambda r, i: b"@" + bytes(r.randrange(32, 127) for _ in range(300)),
    ),
    "null_line": ("invalid_record", lambda r, i: b"null"),
    "number_line": ("invalid_record", lambda r, i: b"42"),
    "string_line": ("invalid_record", lambda r, i: b'"just text"'),
    "list_line": ("invalid_record", lambda r, i: _dump([_record(r, i)])),
    "conversations_not_list": (
        "invalid_record",
        lambda r, i: _dump({"id": i, "conversations": "hi"}),
    ),
    "turn_not_object": ("invalid_record", lambda r, i: _dump({"id": i, "conversations": ["hi"]})),
    "value_is_int": (
        "invalid_record",
        lambda r, i: _swap(r, i, b'"value": "<p>', b'"value": 7, "x": "<p>'),
    ),
    "role_is_int": ("invalid_record", lambda r, i: _swap(r, i, b'"from": "gpt"', b'"from": 3')),
}

# Lines that are well-formed records, however odd: they must come out as records, or be
# rejected by a step for a reason of that step, never crash anything.
ODD: dict[str, Line] = {
    "plain": lambda r, i: _dump(_record(r, i)),
    "emoji_escaped_pair": lambda r, i: _swap(r, i, b"<p>", b"\\ud83d\\ude00<p>"),
    "null_char": lambda r, i: _swap(r, i, b"<p>", b"\\u0000<p>"),
    "noncharacters": lambda r, i: _swap(r, i, b"<p>", "\ufffe\uffff\U0010ffff".encode() + b"<p>"),
    "zero_width_and_rtl": lambda r, i: _swap(r, i, b"<p>", "\u200b\u202e\u2066".encode() + b"<p>"),
    "crlf_ending": lambda r, i: _dump(_record(r, i)) + b"\r",
    "id_as_float": lambda r, i: _dump({**_record(r, i), "id": 1.5, "tag": i}),
    "duplicate_keys": lambda r, i: _dump(_record(r, i))[:-1] + b', "model": "gpt-4"}',
    "model_is_dict": lambda r, i: _dump({**_record(r, i), "model": {"slug": "gpt-4"}}),
    "big_value": lambda r, i: _swap(r, i, b"<p>", b"<p>" + b"word " * 200_000),
    "long_word": lambda r, i: _swap(r, i, b"<p>", b"<p>" + b"x" * 100_000),
    "extra_99_deep": lambda r, i: _dump(_record(r, i, extra=_deep(97))),
    "int_4000_digits": lambda r, i: _dump(_record(r, i, n=0)).replace(
        b'"n": 0', b'"n": ' + b"7" * 4000
    ),
    "empty_conversation": lambda r, i: _dump({"id": i, "conversations": []}),
    "html_deep_divs": _html("<div>" * 3000 + "x"),
    "html_script": _html("<script>alert(1)</script><p>ok</p>"),
    "html_unclosed_pre": _html("<pre><code>def f():\n  return 1"),
    "html_cdata_comment": _html("<![CDATA[x]]><!-- <p> --><p>a</p>"),
    "html_broken_entities": _html("&#xffffffff; &#0; &bogus; &#55296; <p>a</p>"),
    "html_table_garbage": _html("<table><tr><td><table><td>" * 200),
}


@dataclass
class FuzzFile:
    name: str
    data: bytes
    frames: int  # input records a reader must account for (ids or positions)
    good_ids: list[str] = field(default_factory=list)  # records that must not be lost


def _lines(rng: random.Random, n: int, prefix: str) -> tuple[list[bytes], list[str], list[str]]:
    """n lines cycling through every kind; returns lines, ids of ODD ones, kinds."""
    kinds = [*BROKEN, *ODD]
    lines, good, names = [], [], []
    for k in range(n):
        kind = kinds[k % len(kinds)] if k < 4 * len(kinds) else rng.choice(kinds)
        rid = f"{prefix}{k}"
        if kind in BROKEN:
            lines.append(BROKEN[kind][1](rng, rid))
        else:
            lines.append(ODD[kind](rng, rid))
            if kind not in ("id_as_float",):
                good.append(rid)
        names.append(kind)
    return lines, good, names


def jsonl_file(rng: random.Random, n: int, prefix: str = "j") -> FuzzFile:
    lines, good, _ = _lines(rng, n, prefix)
    return FuzzFile(f"{prefix}.jsonl", b"\n".join(lines) + b"\n", len(lines), good)


def gzip_files(rng: random.Random, n: int) -> list[FuzzFile]:
    """A good gzip, a truncated one (records before the cut kept), a plain file named .gz."""
    ok = jsonl_file(rng, n, "gz")
    cut_src = b"\n".join(_dump(_record(rng, f"cut{k}")) for k in range(n)) + b"\n"
    packed = gzip.compress(cut_src)
    plain = jsonl_file(rng, n, "plaingz")
    return [
        FuzzFile("gz.jsonl.gz", gzip.compress(ok.data), ok.frames, ok.good_ids),
        # Cut halfway: some records survive; the count is found by reading (frames < 0).
        FuzzFile("cut.jsonl.gz", packed[: len(packed) // 2], -1, []),
        FuzzFile("plain.jsonl.gz", plain.data, plain.frames, plain.good_ids),
    ]


def list_files(rng: random.Random, n: int) -> list[FuzzFile]:
    """JSON lists: with a BOM, with broken items mid-way, and followed by JSON Lines."""
    records = [_record(rng, f"l{k}") for k in range(n)]
    bom = b"\xef\xbb\xbf" + json.dumps(records, indent=2).encode()
    items = [json.dumps(r, indent=2).replace("\n", "\n  ") for r in records]
    broken_at = {n // 3, n // 2}
    for k in broken_at:
        items[k] = items[k][: len(items[k]) // 2]  # the item is cut mid-way; the list goes on
    broken = ("[\n  " + ",\n  ".join(items) + "\n]").encode()
    good = [f"l{k}" for k in range(n) if k not in broken_at]
    tail = json.dumps(records[:3], indent=2).encode() + b"\n" + _dump(_record(rng, "t0")) + b"\n"
    return [
        FuzzFile("bom.json", bom, n, [f"l{k}" for k in range(n)]),
        FuzzFile("broken.json", broken, -1, good),
        FuzzFile("tail.json", tail, -1, []),
    ]


def page_files() -> list[FuzzFile]:
    """Saved share pages: invalid UTF-8 in __NEXT_DATA__, nesting too deep."""

    def page(payload: bytes) -> bytes:
        return b'<html><script id="__NEXT_DATA__" type="application/json">' + payload + b"</script>"

    conv = {"items": [{"from": "human", "value": "Hi there?"}, {"from": "gpt", "value": "Hello"}]}
    data = {"props": {"pageProps": {"id": "pg1", "content": conv}}}
    bad_utf8 = json.dumps(data).encode().replace(b"Hello", b"Hel\xfflo")
    deep = json.dumps({**data, "x": _deep(500)}).encode()
    return [
        FuzzFile("good.html", page(json.dumps(data).encode()), 1, ["pg1"]),
        FuzzFile("bad_utf8.html", page(bad_utf8), 1, []),
        FuzzFile("deep.html", page(deep), 1, []),
    ]


def instruction_jsonl(rng: random.Random, n: int) -> FuzzFile:
    """Alpaca-style rows, every 7th broken in a different way; the rest must all arrive."""
    breakers = [
        lambda row: _dump(row)[:-5],
        lambda row: _dump(row).replace(b"Answer", b"\xffAnswer"),
        lambda row: _dump(row).replace(b"Answer", b"\\udc00Answer"),
        lambda row: b"[" * 5000,
        lambda row: _dump({**row, "output": float("nan")}).replace(b"NaN", b"NaN"),
    ]
    lines, good = [], []
    for k in range(n):
        row = {"instruction": f"Question {k}?", "input": "", "output": f"Answer {k}.", "k": k}
        if k % 7 == 3:
            lines.append(breakers[(k // 7) % len(breakers)](row))
        else:
            lines.append(_dump(row))
            good.append(f"Question {k}?")
    return FuzzFile("rows.jsonl", b"\n".join(lines) + b"\n", n, good)


def instruction_csv(n: int) -> FuzzFile:
    rows, good = ["instruction,input,output"], []
    for k in range(n):
        if k % 9 == 4:
            rows.append(f'"Question {k}?","","Answer {k}.","extra"')  # one field too many
        elif k % 9 == 7:
            rows.append(f'"Question {k}?,"oops","x"')  # a broken quote
        else:
            rows.append(f'"Question {k}?","","Answer {k}."')
            good.append(f"Question {k}?")
    return FuzzFile("rows.csv", ("\n".join(rows) + "\n").encode(), n, good)


def sharegpt_set(seed: int, n: int) -> list[FuzzFile]:
    rng = random.Random(seed)
    return [
        jsonl_file(rng, n),
        *gzip_files(rng, max(n // 10, 20)),
        *list_files(rng, 60),
        *page_files(),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    for f in sharegpt_set(args.seed, args.records):
        (args.dir / f.name).write_bytes(f.data)
    print(f"{args.dir}: written")


if __name__ == "__main__":
    main()
