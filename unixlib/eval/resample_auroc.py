"""AUROC and the finding-faithfulness headline over bootstrap resamples, fast.

**AUROC as a count.** The area under the ROC curve is the probability that a random positive
scores above a random negative, ties counting one half (the Mann-Whitney U statistic over
``n_pos * n_neg``; sklearn's ``roc_auc_score`` integrates the same curve, which is why it gives
tied scores their average rank). A resample repeats study i ``w_i`` times, so each
(positive i, negative j) pair counts ``w_i * w_j`` times:

    AUROC = sum_{i pos, j neg} w_i w_j ([s_i > s_j] + [s_i == s_j] / 2) / (W_pos W_neg).

Sorting the scores once and grouping equal scores, the inner sum over negatives is a
cumulative sum of the negatives' weights below each group plus half the group's own, so a
resample costs O(N) and all resamples one cumulative sum over an ``(R, N)`` array. With
integer weights every term is exact, so the fast path is the exact U statistic, equal to
sklearn on the resampled rows up to sklearn's own rounding (about 1e-15). A resample without
a positive or without a negative has no AUROC: NaN, which ``eval.uncertainty`` leaves out
and counts (``n_valid``); report it when it is below ``n_resamples``.

**Faithfulness headline.** ``image_eval.mean_fraction`` turns the reference classifier's
per-class AUROCs (probabilities of the generated images, and of the real test images, against
the prompting reports' labels; ``generation.faithfulness``) into one number: the mean AUROC
over the classes, generated vs real, as the fraction of the way from chance (0.5) to real.
:class:`FaithfulnessFraction` resamples studies jointly (generated image, real image and
report of study i stay together) and recomputes the whole chain on each resample. A class
absent from a resample (no positive left) drops out of that resample's mean, as a class
without positives drops out of the table's mean (pandas skips NaN).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from unixlib.data.schema import LABELS
from unixlib.eval.generation import faithfulness
from unixlib.eval.image_eval import mean_fraction


def auroc_on_indices(idx: np.ndarray, scores: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """``(R,)`` AUROC of ``scores`` ``(N,)`` for the boolean labels ``positive`` ``(N,)`` on each
    resample ``idx`` ``(R, n)`` (rows of ``scores``); NaN where a resample lacks a class."""
    scores, positive = _scores_labels(scores, positive, "auroc_on_indices")
    if scores.ndim != 1:
        raise ValueError(f"auroc_on_indices: one column of scores (N,), got {scores.shape}")
    order = np.argsort(scores, kind="stable")
    s = scores[order]
    group = np.empty(len(s), dtype=np.int64)
    group[order] = np.cumsum(np.r_[True, s[1:] != s[:-1]]) - 1  # tie group of each row
    n_groups = int(group.max()) + 1
    # One bincount gives every resample's negatives and positives per tie group.
    bins = group + n_groups * positive  # (N,): negatives of group g in bin g, positives in G + g
    flat = (bins[idx] + 2 * n_groups * np.arange(len(idx))[:, None]).ravel()
    counts = np.bincount(flat, minlength=2 * n_groups * len(idx)).reshape(len(idx), 2, n_groups)
    neg, pos = counts[:, 0], counts[:, 1]  # (R, G) int64
    below = np.cumsum(neg, axis=1) - neg  # negatives strictly below each group
    twice_u = (pos * (2 * below + neg)).sum(axis=1)  # (R,): 2 U in integers, exact
    n_pos, n_neg = pos.sum(axis=1), neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n_pos > 0) & (n_neg > 0), twice_u / (2 * n_pos * n_neg), np.nan)


def per_class_auroc(idx: np.ndarray, scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``(R, C)`` AUROC per column of ``scores`` ``(N, C)`` for binary ``labels`` ``(N, C)``,
    on each resample of ``idx`` ``(R, n)``; NaN where a resample lacks a class."""
    s, y = _scores_labels(scores, labels, "per_class_auroc")
    if s.ndim == 1:
        s, y = s[:, None], y[:, None]
    return np.stack([auroc_on_indices(idx, s[:, c], y[:, c]) for c in range(s.shape[1])], axis=1)


class Auroc:
    """AUROC of binary labels from scores, ``(n,)`` each, or column ``column`` of ``(n, C)``.

    The value is sklearn's ``roc_auc_score`` (NaN when a class is missing, as
    ``generation.faithfulness``); resamples use :func:`auroc_on_indices`.
    """

    def __init__(self, column: int | None = None) -> None:
        self.column = column
        self.name = "auroc" if column is None else f"auroc_{column}"

    def __call__(self, scores: np.ndarray, labels: np.ndarray) -> float:
        s, y = self._pick(scores, labels)
        if y.all() or not y.any():
            return float("nan")
        return float(roc_auc_score(y, s))

    def on_indices(self, idx: np.ndarray, scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
        s, y = self._pick(scores, labels)
        return auroc_on_indices(idx, s, y)

    def _pick(self, scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s, y = _scores_labels(scores, labels, "Auroc")
        if (s.ndim == 2) != (self.column is not None):
            raise ValueError(
                f"Auroc: give (n,) scores without a column or (n, C) scores with one; got "
                f"shape {s.shape}, column {self.column}"
            )
        return (s, y) if self.column is None else (s[:, self.column], y[:, self.column])


class FaithfulnessFraction:
    """Finding faithfulness as the fraction of the way from chance to real images.

    Arrays, row i = study i: ``probs_generated`` and ``probs_real`` ``(n, 14)``, the
    reference classifier's probabilities (``LABELS`` order) for the image generated from
    report i and for test image i; ``labels`` ``(n, 14)`` report i's label values (1 positive;
    0, -1, NaN not), an array or a DataFrame with the ``LABELS`` columns. The value is
    ``image_eval.mean_fraction`` of the two ``generation.faithfulness`` tables over
    ``classes`` (all 14 by default, the headline; ``image_eval.FAITHFULNESS_CLASSES`` is the
    5-class subset).
    """

    name = "faithfulness_fraction"

    def __init__(self, classes: Sequence[str] = LABELS) -> None:
        unknown = [c for c in classes if c not in LABELS]
        if unknown or not classes:
            raise ValueError(f"FaithfulnessFraction: classes must be LABELS names, got {unknown}")
        self.classes = list(classes)
        self.columns = [LABELS.index(c) for c in classes]

    def __call__(self, probs_generated: np.ndarray, probs_real: np.ndarray, labels: Any) -> float:
        frame = pd.DataFrame(_label_values(labels), columns=list(LABELS))
        tables = [faithfulness(p, frame, self.classes) for p in (probs_generated, probs_real)]
        summary = pd.DataFrame(
            {
                "class": self.classes,
                "auroc_generated": tables[0]["auroc"].to_numpy(),
                "auroc_real": tables[1]["auroc"].to_numpy(),
            }
        )
        return mean_fraction(summary, self.classes)

    def on_indices(
        self, idx: np.ndarray, probs_generated: np.ndarray, probs_real: np.ndarray, labels: Any
    ) -> np.ndarray:
        positive = _label_values(labels)[:, self.columns] == 1  # (N, C)
        means = []
        for probs in (probs_generated, probs_real):
            p = np.asarray(probs, dtype=np.float64)
            if p.shape != (len(positive), len(LABELS)):
                raise ValueError(
                    f"FaithfulnessFraction: probabilities {p.shape}, labels "
                    f"{(len(positive), len(LABELS))}"
                )
            aurocs = per_class_auroc(idx, p[:, self.columns], positive)  # (R, C)
            with warnings.catch_warnings():  # a resample with no class defined: NaN, no noise
                warnings.simplefilter("ignore", RuntimeWarning)
                means.append(np.nanmean(aurocs, axis=1))
        denom = means[1] - 0.5
        with np.errstate(invalid="ignore", divide="ignore"):
            fraction = (means[0] - 0.5) / denom
        return np.where(denom >= 0.0, fraction, np.nan)  # mean_fraction: min_margin 0


def _label_values(labels: Any) -> np.ndarray:
    if isinstance(labels, pd.DataFrame):
        missing = [c for c in LABELS if c not in labels.columns]
        if missing:
            raise ValueError(f"FaithfulnessFraction: labels lack columns {missing}")
        labels = labels[list(LABELS)]
    values = np.asarray(labels, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != len(LABELS):
        raise ValueError(f"FaithfulnessFraction: labels must be (n, 14), got {values.shape}")
    return values


def _scores_labels(
    scores: np.ndarray, labels: np.ndarray, what: str
) -> tuple[np.ndarray, np.ndarray]:
    s, y = np.asarray(scores, dtype=np.float64), np.asarray(labels)
    if s.shape != y.shape or s.ndim not in (1, 2) or len(s) == 0:
        raise ValueError(
            f"{what}: scores and labels must share a shape (n,) or (n, C); got {s.shape}, {y.shape}"
        )
    if not np.isfinite(s).all():
        raise ValueError(f"{what}: scores contain NaN or inf")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"{what}: labels must be binary 0/1 (positive = 1)")
    return s, y.astype(bool)
