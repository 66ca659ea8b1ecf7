"""Any Hugging Face fast tokenizer, loaded by id or path, with the recipe's special tokens.

Text is always encoded as text: a user who types `<|end_of_turn|>` or `</s>` gets the tokens of
those characters, never the special token. Special tokens enter a sequence only by id, where a
template puts them. (OpenChat did this with the slow tokenizer's private `_tokenize`; here the
fast tokenizer's Rust backend does it with `encode_special_tokens`, batched and in parallel.)

We encode with our own copy of the backend: transformers 5 implements
`tokenizer(..., split_special_tokens=True)` by flipping that flag on the shared backend and
leaving it flipped, which would silently change every later call on the same tokenizer.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokenizers import AddedToken, Encoding, Tokenizer

from sftforge.tasks.outputs.byte_decode import ByteTableDecoder, byte_table_decoder

if TYPE_CHECKING:  # worker processes load tokenizers without the recipe schemas
    from sftforge.schemas.training import TokenizerConfig


class TokenizerError(ValueError):
    """The tokenizer cannot be loaded or lacks a token a template needs."""


@dataclass(eq=False)
class LoadedTokenizer:
    name: str
    hf: Any  # transformers' tokenizer, with the recipe's special tokens added
    backend: Tokenizer  # our own copy: special-token spellings in text are text
    vocab_size: int  # len(tokenizer): ids must be below this
    added_special_tokens: list[str]  # the recipe's tokens that were new to the tokenizer
    bos_id: int | None
    eos_id: int | None
    adds_bos: bool  # does tokenizer(text) put BOS in front (LLaMA: yes, GPT-2: no)
    special_ids: frozenset[int] = field(default_factory=frozenset)
    table: ByteTableDecoder | None = None  # a checked fast path for byte-level decoders

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text, no special tokens added (batched, in parallel)."""
        # encode_batch_fast skips the character offsets, which ids do not need (~25% faster)
        encode = getattr(self.backend, "encode_batch_fast", self.backend.encode_batch)
        return [e.ids for e in encode(list(texts), add_special_tokens=False)]

    def encode_raw(self, texts: Sequence[str]) -> list[Encoding]:
        """The backend's encodings (ids plus character alignment, queried lazily in Rust)."""
        return self.backend.encode_batch(list(texts), add_special_tokens=False)

    def decode(self, ids: Sequence[int]) -> str:
        if self.table is not None:
            return self.table.decode(ids)
        return self.backend.decode(list(ids), skip_special_tokens=False)

    def decode_batch(self, batch: Sequence[Sequence[int]]) -> list[str]:
        if self.table is not None:
            return self.table.decode_batch(batch)
        return self.backend.decode_batch([list(ids) for ids in batch], skip_special_tokens=False)

    def special_id(self, token: str) -> int:
        """The id of a special token; an error if the tokenizer does not have it as special."""
        token_id = self.backend.token_to_id(token)
        if token_id is None or token_id not in self.special_ids:
            raise TokenizerError(
                f"{token!r} is not a special token of tokenizer {self.name!r}; "
                f"add it with `tokenizer: {{special_tokens: [{token!r}]}}`"
            )
        return token_id

    def __getstate__(self) -> dict[str, Any]:
        # For worker processes: transformers' object stays behind (the backend is all they use,
        # and importing transformers costs a process 1.5 s).
        return {**self.__dict__, "hf": None, "backend": self.backend.to_str()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, backend=_configure(Tokenizer.from_str(state["backend"])))

    def require(self, what: str) -> int:
        """BOS or EOS id, or a clear error naming the tokenizer."""
        token_id = self.bos_id if what == "bos" else self.eos_id
        if token_id is None:
            raise TokenizerError(f"tokenizer {self.name!r} has no {what} token")
        return token_id


def load_tokenizer(config: TokenizerConfig) -> LoadedTokenizer:
    """Load (once per process) the tokenizer a training output names."""
    return _load(config.path, tuple(config.special_tokens), config.revision)


@lru_cache(maxsize=8)
def _load(path: str, special_tokens: tuple[str, ...], revision: str | None) -> LoadedTokenizer:
    # Only tokenizers are used: transformers' notice that PyTorch is missing is noise here.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from transformers import AutoTokenizer

    local = Path(path).expanduser()
    source = str(local) if local.exists() else path
    try:
        hf = AutoTokenizer.from_pretrained(source, revision=revision, use_fast=True)
    except Exception as exc:  # offline hub ids, missing files, bad JSON: one clear line
        where = "local directory" if local.exists() else "hub id (not a local path here)"
        raise TokenizerError(
            f"cannot load tokenizer {path!r} as a {where}: {type(exc).__name__}: {exc}"
        ) from exc
    if not getattr(hf, "is_fast", False) or getattr(hf, "backend_tokenizer", None) is None:
        raise TokenizerError(f"tokenizer {path!r} has no fast (tokenizers) version")
    before = set(hf.get_vocab())
    new = [t for t in special_tokens if t not in before]
    if special_tokens:
        # As OpenChat added <|end_of_turn|> to LLaMA's tokenizer; a token the vocabulary already
        # has keeps its id. (add_tokens(special_tokens=True) is the call transformers 4 and 5
        # share; add_special_tokens renamed its "additional" key in 5.)
        hf.add_tokens(
            [AddedToken(t, special=True, normalized=False) for t in special_tokens],
            special_tokens=True,
        )
    backend = _configure(Tokenizer.from_str(hf.backend_tokenizer.to_str()))
    special_ids = frozenset(
        token_id for token_id, added in backend.get_added_tokens_decoder().items() if added.special
    )
    bos_id = hf.bos_token_id
    probe = backend.encode("a", add_special_tokens=True).ids
    adds_bos = bos_id is not None and len(probe) > 1 and probe[0] == bos_id
    return LoadedTokenizer(
        name=path,
        hf=hf,
        backend=backend,
        vocab_size=len(hf),
        added_special_tokens=new,
        bos_id=bos_id,
        eos_id=hf.eos_token_id,
        adds_bos=adds_bos,
        special_ids=special_ids,
        table=byte_table_decoder(backend),
    )


def _configure(backend: Tokenizer) -> Tokenizer:
    backend.encode_special_tokens = True  # special-token spellings in text stay text
    backend.no_truncation()  # a tokenizer.json may ship truncation/padding: we cut ourselves
    backend.no_padding()
    return backend


def resolve_bos(tok: LoadedTokenizer, bos: bool | str) -> int | None:
    """`bos: auto` does what tokenizer(text) does for this model (LLaMA adds <s>)."""
    if bos == "auto":
        return tok.bos_id if tok.adds_bos else None
    return tok.require("bos") if bos else None
