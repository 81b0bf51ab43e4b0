"""Trivial methods that give every evaluation number its meaning.

A micro-F1 of 0.5 says nothing until one knows what writing the same report for every image
scores on the same split. Each function here is such a baseline, computed in the same run on
the same test images as the model (DESIGN.md §7):

* understanding: the most frequent training report for every image ("always normal" on most
  datasets), a random training report per image (seeded), and nearest-neighbour retrieval (the
  report of the closest training image in a reference encoder's feature space; the encoder never
  shares weights with UniX);
* generation: reports paired with the wrong images (a seeded derangement), the chance level for
  alignment, per-pathology FD and finding faithfulness.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from unixlib.eval.generation import shuffled_indices


def _non_empty(reports: Sequence[str]) -> list[str]:
    texts = [str(r) for r in reports if str(r).strip()]
    if not texts:
        raise ValueError("no non-empty training report to draw a baseline from")
    return texts


def most_frequent_report(train_reports: Sequence[str]) -> str:
    """The training split's most frequent report text (ties: the first seen)."""
    return Counter(_non_empty(train_reports)).most_common(1)[0][0]


def random_reports(train_reports: Sequence[str], n: int, seed: int) -> list[str]:
    """``n`` training reports drawn uniformly with replacement from a seeded generator."""
    texts = _non_empty(train_reports)
    picks = np.random.default_rng(seed).integers(0, len(texts), size=n)
    return [texts[i] for i in picks]


def retrieval_reports(
    train_features: np.ndarray, train_reports: Sequence[str], query_features: np.ndarray
) -> list[str]:
    """For each query image, the report of the training image with the highest cosine
    similarity of features ((N_train, F) and (N_query, F) arrays)."""
    if len(train_features) != len(train_reports):
        raise ValueError(
            f"{len(train_features)} training feature rows for {len(train_reports)} reports"
        )
    if train_features.shape[1:] != query_features.shape[1:]:
        raise ValueError(
            f"feature sizes differ: train {train_features.shape}, query {query_features.shape}"
        )

    def unit(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

    nearest = (unit(query_features) @ unit(train_features).T).argmax(axis=1)  # (N_query,)
    return [str(train_reports[i]) for i in nearest]


def shuffled_reports(reports: Sequence[str], seed: int) -> list[str]:
    """The same reports, each moved to another row (a seeded derangement): images generated
    from them are the chance level for measures that pair an image with its own report."""
    order = shuffled_indices(len(reports), seed)
    return [str(reports[i]) for i in order]
