"""Near-duplicate dedup: MinHash with LSH banding over word shingles, global across shards and
sources. Rows that share a band key are candidate pairs; verified (by default) when their
estimated Jaccard reaches the threshold; union-find makes clusters of them, and the first
record of a cluster in input order survives. The others are rejected as `near_duplicate`,
the detail naming the survivor and their estimated Jaccard with it.

As a filter pass: workers sign each shard (tasks/steps/minhash.py); the flow's process keeps
each alive row's signature and band keys (fixed size, whatever a record's length: about
4 bytes per permutation and 8 per band) and decides once every shard is in, since a later
record can join two earlier clusters into one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, model_validator

from sftforge.schemas.steps import register_step
from sftforge.tasks.base.outcome import Rejected
from sftforge.tasks.base.step_protocol import FilterPass, FilterPassStep, StepContext
from sftforge.tasks.steps import minhash, minhash_datatrove

NearText = Literal["first_user", "user", "all"]


def conversation_texts(column: pa.ChunkedArray | pa.Array, scope: NearText) -> pa.Array:
    """One text per conversation, in Arrow: its first user turn, its user turns, or every
    turn, joined by newlines (only the chosen turns' text is touched)."""
    lists = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    flat = pc.list_flatten(lists)
    rows = pc.list_parent_indices(lists).to_numpy()
    if scope == "all":
        keep = np.ones(len(rows), dtype=bool)
    else:
        user = pc.equal(pc.struct_field(flat, "role"), "user")
        keep = pc.fill_null(user, False).to_numpy(zero_copy_only=False)
        if scope == "first_user":
            chosen = np.flatnonzero(keep)
            keep = np.zeros(len(rows), dtype=bool)
            keep[chosen[np.unique(rows[chosen], return_index=True)[1]]] = True
    contents = pc.fill_null(pc.struct_field(flat, "content"), "").filter(pa.array(keep))
    offsets = np.searchsorted(rows[keep], np.arange(len(lists) + 1)).astype(np.int32)
    chosen_turns = pa.ListArray.from_arrays(pa.array(offsets), contents)
    return pc.fill_null(pc.binary_join(chosen_turns, "\n"), "")


def instruction_texts(table: pa.Table, scope: NearText) -> pa.Array:
    """An instruction's query (instruction + input), or with `all` its output too."""
    names = ["instruction", "input"] + (["output"] if scope == "all" else [])
    parts = [pc.fill_null(table.column(n).combine_chunks(), "") for n in names]
    return pc.binary_join_element_wise(*parts, "\n")


@dataclass
class NearVerdict:
    """One shard's rejections (by position among its alive rows), and the sizes of the
    clusters whose survivor it holds (each cluster is counted once, where it survives)."""

    rejected: dict[int, Rejected] = field(default_factory=dict)
    sizes: dict[int, int] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)  # the run's figures, on shard 0


class NearDedupPass(FilterPass):
    def __init__(self, step: DedupNearStep, kind: str, seed: int) -> None:
        self.scope: NearText = step.text
        self.conversations = kind == "conversation"
        self.seed, self.k = seed, step.shingle
        self.threshold, self.verify, self.hashes = step.threshold, step.verify, step.hashes
        self.permutations = step.permutations or (
            step.bands * step.rows if step.bands and step.rows else 128
        )
        self.bands, self.rows = step.lsh(self.permutations)
        content = ["messages"] if self.conversations else ["instruction", "input"]
        self.columns = content + (
            ["output"] if not self.conversations and step.text == "all" else []
        )
        self._clear()

    def _clear(self) -> None:
        self.signatures: list[np.ndarray] = []
        self.keys: list[np.ndarray] = []
        # Per shard decided: its number, and of its signed alive rows their position among
        # the alive rows (what `judge` rejects by) and their row in the input (for ids).
        self.where: list[tuple[int, np.ndarray, np.ndarray]] = []

    def __getstate__(self) -> dict[str, Any]:
        # Workers get the options, never what `decide` has gathered (it stays in the flow).
        state = dict(self.__dict__)
        state.update(signatures=[], keys=[], where=[])
        return state

    def scan(self, table: pa.Table) -> minhash.Signatures:
        if self.conversations:
            texts = conversation_texts(table.column("messages"), self.scope)
        else:
            texts = instruction_texts(table, self.scope)
        sign = minhash_datatrove.sign if self.hashes == "datatrove" else minhash.sign
        return sign(texts, self.seed, self.k, self.permutations, self.bands, self.rows)

    def decide(self, shard: int, scan: minhash.Signatures, alive: list[int]) -> None:
        rows = np.asarray(alive, dtype=np.int64)
        positions = np.flatnonzero(scan.signed[rows]) if len(rows) else rows
        self.signatures.append(scan.signatures[rows[positions]])
        self.keys.append(scan.bands[rows[positions]])
        self.where.append((shard, positions, rows[positions]))
        return None  # a later shard can merge two earlier clusters: decided at the end

    def finish(self, verdicts: list[Any], ids_of: Callable[[int], list[str]]) -> list[NearVerdict]:
        """Candidates, verification, clusters; each member's verdict names its survivor."""
        p = self.permutations
        signatures = np.concatenate(self.signatures) if self.signatures else np.empty((0, p))
        # Bands × rows: each band's keys contiguous, as they are sorted one band at a time.
        keys = np.concatenate([k.T for k in self.keys], axis=1) if self.keys else np.empty((1, 0))
        where = self.where
        self._clear()  # the largest things held here: the concatenated copies replace them
        n = keys.shape[1]
        u, v = minhash.candidate_pairs(keys.astype(np.uint64, copy=False))
        del keys
        candidates = len(u)
        if self.verify and len(u):
            close = minhash.similarity(signatures, u, v) >= self.threshold
            u, v = u[close], v[close]
        root = minhash.clusters(n, u, v)
        members = np.flatnonzero(root != np.arange(n))
        survivor = root[members]
        similar = minhash.similarity(signatures, members, survivor)
        del signatures
        # Each signed row of the run: the shard it is in (by index into `where`), its place.
        part = np.repeat(np.arange(len(where)), [len(w[1]) for w in where])
        position = np.concatenate([w[1] for w in where]) if where else np.empty(0, np.int64)
        row = np.concatenate([w[2] for w in where]) if where else np.empty(0, np.int64)
        names: dict[int, str] = {}
        for i in np.unique(part[survivor]).tolist():  # ids read once, where one survives
            ids = ids_of(where[i][0])
            names.update(
                (r, ids[row[r]]) for r in np.unique(survivor[part[survivor] == i]).tolist()
            )
        out = [NearVerdict() for _ in verdicts]  # one per shard, by shard number
        shard_of = [w[0] for w in where]
        for m, r, s in zip(members.tolist(), survivor.tolist(), similar.tolist(), strict=True):
            detail = f"{names[r]} (estimated Jaccard {s:.2f})"
            verdict = out[shard_of[part[m]]]
            verdict.rejected[int(position[m])] = Rejected("near_duplicate", detail)
        kept, sizes = np.unique(survivor, return_counts=True)
        for r, size in zip(kept.tolist(), (sizes + 1).tolist(), strict=True):
            held = out[shard_of[part[r]]].sizes
            held[size] = held.get(size, 0) + 1
        if out:
            out[0].totals = {"signed": n, "candidate_pairs": candidates, "pairs": len(u)}
        return out

    def judge(self, table: pa.Table, verdict: NearVerdict) -> dict[int, Rejected]:
        return verdict.rejected

    def summarize(self, verdict: NearVerdict) -> dict[str, Any]:
        return {
            "shingle": self.k,
            "permutations": self.permutations,
            "bands": self.bands,
            "rows": self.rows,
            "threshold": self.threshold if self.verify else None,
            "hashes": self.hashes,
            "rejected": len(verdict.rejected),
            "clusters": sum(verdict.sizes.values()),
            "cluster_sizes": {str(k): v for k, v in sorted(verdict.sizes.items())},
            **verdict.totals,
        }


@register_step
class DedupNearStep(FilterPassStep):
    """Near-duplicate dedup (MinHash LSH over word shingles), first of a cluster kept."""

    step: Literal["dedup_near"]
    # Which text is compared: the first user turn, the user turns, or every turn; for
    # instructions the query (instruction + input), or with `all` the output too.
    text: NearText = "user"
    shingle: int = Field(default=5, ge=1, le=64)  # words per shingle
    # Permutations in a signature (None: bands × rows when both are given, else 128).
    permutations: int | None = Field(default=None, ge=2, le=1024)
    # LSH bands × rows; None: chosen from the threshold (minhash.choose_bands).
    bands: int | None = Field(default=None, ge=1)
    rows: int | None = Field(default=None, ge=1)
    threshold: float = Field(default=0.8, gt=0.0, le=1.0)  # estimated Jaccard of a duplicate
    # Candidates from LSH buckets are checked against the threshold (estimated Jaccard over
    # every permutation); False: every candidate pair is a duplicate (datatrove's way).
    verify: bool = True
    # Hash functions: sftforge's own (fast, minhash.py), or datatrove's (minhash_datatrove.py:
    # the same signatures as datatrove 0.10, to reproduce its decisions; slower).
    hashes: Literal["sftforge", "datatrove"] = "sftforge"

    summary_key: ClassVar[str] = "near_duplicates"

    @model_validator(mode="after")
    def _lsh(self) -> DedupNearStep:
        if (self.bands is None) != (self.rows is None):
            raise ValueError("bands and rows go together (or neither: from the threshold)")
        used = (self.bands or 0) * (self.rows or 0)
        if self.permutations and used > self.permutations:
            raise ValueError(
                f"bands × rows ({used}) is more than permutations ({self.permutations})"
            )
        return self

    def lsh(self, permutations: int) -> tuple[int, int]:
        if self.bands is not None and self.rows is not None:
            return self.bands, self.rows
        return minhash.choose_bands(self.threshold, permutations, self.verify)

    def make_pass(self, context: StepContext, kind: str) -> NearDedupPass:
        return NearDedupPass(self, kind, context.seed)

    @classmethod
    def combine_summaries(cls, parts: list[dict[str, Any]]) -> dict[str, Any]:
        if not parts:
            return {}
        sizes: Counter[int] = Counter()
        totals: Counter[str] = Counter()
        for part in parts:
            sizes.update({int(k): v for k, v in part.get("cluster_sizes", {}).items()})
            totals.update({k: part.get(k, 0) for k in ("signed", "candidate_pairs", "pairs")})
            totals.update({k: part.get(k, 0) for k in ("rejected", "clusters")})
        options = ("shingle", "permutations", "bands", "rows", "threshold", "hashes")
        return {
            **{k: parts[0].get(k) for k in options},
            **dict(totals),
            "largest_cluster": max(sizes, default=0),
            "cluster_sizes": {str(k): sizes[k] for k in sorted(sizes)},
        }
