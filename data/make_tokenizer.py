"""Train the small tokenizer the project ships in data/tokenizer/ (offline demo and tests).

    python data/make_tokenizer.py            # rewrites data/tokenizer/ (same bytes every time)
    python data/make_tokenizer.py --check    # exit 1 if the shipped files differ from a fresh run

A byte-level BPE (GPT-2's pre-tokenizer, no normalizer, so decode(encode(text)) == text for any
text) trained with `tokenizers` on the project's own sample data: the generated ShareGPT
conversations (answers converted to Markdown by the project's own html_to_markdown), their
non-English samples, and the prompt scaffolding of the templates sftforge renders. Special
tokens are LLaMA's: <unk>=0, <s>=1, </s>=2, plus <pad>=3; like LLaMA's tokenizer it adds <s>
in front when called with add_special_tokens=True. It is saved in Hugging Face format, so the
real loading code reads it: AutoTokenizer.from_pretrained("data/tokenizer").
"""

from __future__ import annotations

import argparse
import filecmp
import json
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "tokenizer"
VOCAB_SIZE = 4096
SPECIAL = ["<unk>", "<s>", "</s>", "<pad>"]


def corpus() -> Iterator[str]:
    """Every text the tokenizer learns from, in a fixed order (training is deterministic)."""
    sys.path.insert(0, str(HERE))
    import make_sharegpt_sample as sample  # data/ is not a package

    from sftforge.tasks.outputs.prompt_templates import scaffolding
    from sftforge.tasks.steps.html_to_markdown import html_to_markdown

    for code_heavy, records, seed in ((False, 1500, 11), (True, 500, 12)):
        for item in sample.generate(records, seed=seed, code_heavy=code_heavy, flawed_share=0.0):
            assert isinstance(item, dict)
            for turn in item["conversations"]:
                value = turn["value"]
                yield html_to_markdown(value) if turn["from"] == "gpt" else value
    for question, answer in sample.FOREIGN.values():
        for _ in range(20):  # rare next to English, but common enough to get merges
            yield question
            yield html_to_markdown(answer)
    for text in scaffolding():
        for _ in range(50):
            yield text


def train(out: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    # GPT-2's byte-level pre-tokenizer: every byte is in the alphabet, so there is never an
    # unknown character and decoding is the exact inverse of encoding.
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=2,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus(), trainer=trainer)
    bos = tok.token_to_id("<s>")
    # Like LLaMA's tokenizer: tokenizer(text) puts <s> in front (Alpaca-LoRA and GPTQ rely on it).
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        model_max_length=2048,
    )
    fast.save_pretrained(str(out))
    # transformers 5 writes its own class name; the 4.x name loads in both major versions.
    config_path = out / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--check", action="store_true", help="compare a fresh run with --out")
    args = parser.parse_args()
    if not args.check:
        args.out.mkdir(parents=True, exist_ok=True)
        train(args.out)
        size = sum(p.stat().st_size for p in args.out.iterdir())
        print(f"wrote {args.out} ({size / 1e6:.2f} MB)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        train(Path(tmp))
        names = sorted(p.name for p in Path(tmp).iterdir())
        _, mismatch, errors = filecmp.cmpfiles(Path(tmp), args.out, names, shallow=False)
    if mismatch or errors:
        print(f"differs from a fresh run: {mismatch + errors}")
        raise SystemExit(1)
    print(f"{args.out} matches a fresh run")


if __name__ == "__main__":
    main()
