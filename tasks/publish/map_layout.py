"""The map's geometry and colours: a seeded 2-D UMAP projection of the vectors (cosine, as
OpenChat's visualizer used), seeded k-means clusters, and each cluster's label from its most
distinctive frequent words. umap-learn and scikit-learn are the `map` extra."""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

import numpy as np

from sftforge.tasks.base.extras import require_extra
from sftforge.tasks.steps.embed.vectors import unit_rows

_WORD = re.compile(r"[^\W\d_]{3,}", re.UNICODE)
# Words every cluster has: they would label every cluster the same.
_STOP = frozenset(
    " ".join(
        [
            "the and for you that with this are can not but have was what your from will how",
            "use all any there their they them then than its into more also here which when",
            "where who one out about would could should please some like just user assistant",
            "instruction input output",
        ]
    ).split()
)


@dataclass
class Layout:
    xy: np.ndarray  # n x 2, float32, in [0, 1]
    clusters: np.ndarray  # n, int
    labels: list[str]  # per cluster


def project(vectors: np.ndarray, seed: int, neighbours: int = 15) -> np.ndarray:
    """2-D coordinates scaled to [0, 1]. Fewer than 4 points cannot be laid out by UMAP
    (its spectral start needs more): they go on a diagonal."""
    n = len(vectors)
    if n < 4:
        xy = np.stack([np.linspace(0, 1, n), np.linspace(0, 1, n)], axis=1)
        return xy.astype(np.float32)
    umap = require_extra("umap", "map", "sftforge map")
    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=min(neighbours, n - 1),
        metric="cosine",
        random_state=seed,
        n_jobs=1,  # what a seed implies anyway (umap warns otherwise)
        init="spectral" if n > 10 else "random",
    )
    xy = reducer.fit_transform(vectors).astype(np.float64)
    low, high = xy.min(axis=0), xy.max(axis=0)
    return ((xy - low) / np.where(high > low, high - low, 1)).astype(np.float32)


def cluster(vectors: np.ndarray, k: int, seed: int) -> np.ndarray:
    """k-means over unit vectors (so that distance follows cosine similarity)."""
    k = max(1, min(k, len(vectors)))
    cluster_module = require_extra("sklearn.cluster", "map", "sftforge map")
    model = cluster_module.KMeans(n_clusters=k, random_state=seed, n_init=4)
    return model.fit_predict(unit_rows(vectors)).astype(np.int32)


def cluster_labels(texts: list[str], clusters: np.ndarray, words: int = 3) -> list[str]:
    """Each cluster's `words` most frequent words, weighted by how few clusters use them
    (tf-idf over clusters), so that a label says what sets the cluster apart."""
    k = int(clusters.max()) + 1 if len(clusters) else 0
    counts = [Counter[str]() for _ in range(k)]
    for text, c in zip(texts, clusters, strict=True):
        counts[c].update(w for w in _WORD.findall(text.lower()) if w not in _STOP)
    spread = Counter[str]()
    for counter in counts:
        spread.update(counter.keys())
    labels = []
    for counter in counts:
        scored = sorted(
            counter.items(), key=lambda kv: (-kv[1] * math.log(1 + k / spread[kv[0]]), kv[0])
        )
        labels.append(" · ".join(word for word, _ in scored[:words]) or "(no words)")
    return labels


def lay_out(vectors: np.ndarray, texts: list[str], k: int, seed: int) -> Layout:
    clusters = cluster(vectors, k, seed)
    return Layout(project(vectors, seed), clusters, cluster_labels(texts, clusters))
