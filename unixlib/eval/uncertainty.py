"""Uncertainty of table numbers: bootstrap intervals over studies, paired tests (issue 22, 17).

**Why an interval.** A table number (micro-F1, FD, ...) is computed on one finite test set.
Another draw of studies from the same hospital would give another number; the interval says
how far. The bootstrap estimates this without new data: draw n studies *with replacement*
from the n test studies, recompute the number, repeat R times (seeded), and read the spread
of the R values. The 95% *percentile interval* is their 2.5th and 97.5th percentiles; the
table's value is the number on the full test set, not a bootstrap average.

**Why over studies.** The study (image, report, generated output) is what was sampled, so it
is what gets redrawn: all arrays of a statistic share axis 0 and are resampled with the same
row indices (report i stays with its prediction i, real image i with the image generated
from report i). Studies of one patient are treated as independent: a bootstrap clustered by
patient would give wider intervals where patients have several studies in the test set.

**Why paired.** Two systems scored on the same studies share those studies' difficulty, so
their difference varies far less than either score: two overlapping intervals can still
hide a clear difference. :func:`paired_difference` resamples the *same* indices for both
systems and takes the interval of ``stat(A) - stat(B)`` over those resamples.

**The p-value.** The bootstrap p is the smallest alpha at which the (1 - alpha) interval of
the difference still contains 0, ``2 * min(#{d* <= 0}, #{d* >= 0})`` over the resamples
(+1 on counts and total, capped at 1). So p < 0.05 exactly when the 95% interval excludes 0
(up to one resample at the edge), and verdict and p tell one story: the tables use it. The
permutation test (:func:`permutation_test`) asks instead how often the difference would be
as large if the two systems were interchangeable on every study: it swaps the two outputs
of each study with probability 1/2, and ``p = (1 + #{|d_perm| >= |d|}) / (1 + R)``. It is
exact under that null for any n and never repeats a study, so it is the check to run on
small test sets or statistics that resampling distorts (below); ``compare`` may print both.

**What "no detectable difference" says.** The interval of the difference contains 0: with
this many studies, the data cannot tell which system is better. It does *not* say they are
equal; the interval's width says how large a difference could still be hidden. Likewise
"beats" says the difference is unlikely to be resampling noise, not that it matters.

**Statistics that resampling distorts.** A resample leaves out about a third of the studies
and repeats others. Means and F1 do not care, but FD and KD reward diversity: repeated rows
shrink the covariance and raise the kernel sums, so resampled FD sits above FD (on 200
studies x 128 features by about a third, and the percentile interval missed the value
altogether in our simulations). Their spread still measures how much the number depends on
the studies drawn, so for them (``interval_method = "centred"``) the interval is the
percentile interval shifted by ``median(resamples) - value``: ``value`` sits at its median.
In simulations of Gaussian features this covered the expected FD / KD at that test size,
where the plain percentile interval did not (``tests/test_uncertainty.py`` repeats this for
FD). :class:`Interval` records the method and the shift. The resampled spread of FD is also
wider than its true spread (twice as wide on 200 x 128, a fifth wider on 200 x 16, in the
same simulations), so FD intervals and bootstrap p-values are conservative: a true
difference needs more studies to show; the permutation test keeps its nominal level there.
PRDC (nearest neighbours: a repeated study is its own neighbour at distance 0) is distorted
too and has no fast path here: pass ``method="centred"`` and prefer the permutation test for
its comparisons.

**NaN.** A statistic can be undefined on a resample (say, a per-class AUROC when the resample
has no positive). Such resamples (any non-finite value; in paired mode, either system's) are
left out of the percentiles and p-values, and ``n_valid`` records how many were used; a
table should show it when it is below ``n_resamples``, since the interval is then conditional
on the class being present. The project's F1 is never NaN (0/0 counts as 0).

**Convention.** 1,000 resamples by default (a parameter). LLaVA-Rad's evaluation script
(``llava/eval/rrg_eval/run.py``) draws 500 (``n_bootstrap=500`` for BLEU, ``n_resamples=500``
for RadGraph F1) and reports the median of the resamples as its value; we report the number
on the full test set.

Fast paths: statistics with ``on_indices`` (``resample_stats``: :class:`Mean`, :class:`F1`,
:class:`FrechetDistance`, :class:`KernelDistance`) are computed on all resamples at once; any
other callable ``stat(*arrays) -> float`` is called once per resample.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from unixlib.eval.intervals import (
    METHODS,
    Comparison,
    Interval,
    bootstrap_p_value,
    interval_from,
    verdict,
)
from unixlib.eval.resample_stats import F1, FrechetDistance, KernelDistance, Mean

__all__ = [
    "DEFAULT_RESAMPLING",
    "F1",
    "Comparison",
    "FrechetDistance",
    "Interval",
    "KernelDistance",
    "Mean",
    "Resampling",
    "bootstrap",
    "paired_difference",
    "permutation_test",
    "resample_indices",
    "resampled_values",
    "swap_indices",
    "verdict",
]

Statistic = Callable[..., float]  # stat(*arrays) -> float; optional .on_indices(idx, *arrays)


@dataclass(frozen=True)
class Resampling:
    """How a table's intervals are drawn: resamples (1,000 by default; LLaVA-Rad draws 500),
    seed and level."""

    n_resamples: int = 1000
    seed: int = 0
    level: float = 0.95


DEFAULT_RESAMPLING = Resampling()
Method = Literal["percentile", "centred"]


def resample_indices(n: int, n_resamples: int, seed: int) -> np.ndarray:
    """``(n_resamples, n)`` row indices drawn with replacement from ``range(n)`` (seeded)."""
    _check_options(n_resamples, seed)
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"resample_indices: n must be a positive int, got {n!r}")
    return np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))


def swap_indices(n: int, n_resamples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Permutation draws over two systems' stacked rows ``[A rows; B rows]`` (2n rows).

    Returns ``(idx_a, idx_b)``, each ``(n_resamples, n)``: study i is swapped (A's output
    goes to B and back) with probability 1/2, independently per study and resample.
    """
    _check_options(n_resamples, seed)
    swap = np.random.default_rng(seed).integers(0, 2, size=(n_resamples, n))
    rows = np.arange(n)
    return rows + n * swap, rows + n * (1 - swap)


def resampled_values(statistic: Statistic, idx: np.ndarray, *arrays: Any) -> np.ndarray:
    """``(R,)`` values of ``statistic`` on each resample ``[a[idx[r]] for a in arrays]``.

    Uses ``statistic.on_indices`` when it has one, else calls it once per resample (pandas
    objects are taken with ``iloc`` and re-indexed 0..n-1).
    """
    if hasattr(statistic, "on_indices"):
        return np.asarray(statistic.on_indices(idx, *arrays), dtype=np.float64)
    return np.array([_scalar(statistic(*(_take(a, row) for a in arrays))) for row in idx])


def bootstrap(
    statistic: Statistic,
    *arrays: Any,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    method: Method | None = None,
) -> Interval:
    """``statistic(*arrays)`` with its bootstrap interval over rows (studies).

    ``arrays`` share axis 0 and are resampled jointly. ``method`` defaults to the statistic's
    ``interval_method`` ("percentile" when it has none). Non-finite resamples are left out
    (``n_valid``); see the module docstring.
    """
    _check_options(n_resamples, seed, level)
    rows, n = _as_rows(arrays, "bootstrap")
    value = _scalar(statistic(*rows))
    values = resampled_values(statistic, resample_indices(n, n_resamples, seed), *rows)
    return interval_from(value, values, level, _method(statistic, method))


def paired_difference(
    statistic: Statistic,
    arrays_a: Any,
    arrays_b: Any,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    method: Method | None = None,
    test: Literal["bootstrap", "permutation"] = "bootstrap",
) -> Comparison:
    """Paired comparison of system A and B on the same n studies.

    ``arrays_a`` / ``arrays_b``: the statistic's arguments for each system (a tuple of
    arrays, or one array), e.g. ``(y_ref, y_pred_a)`` and ``(y_ref, y_pred_b)``. Row i of
    every array is study i. The intervals of A, B and ``A - B`` use the same resampled
    indices; ``p_value`` is the paired bootstrap's or, with ``test="permutation"``,
    :func:`permutation_test`'s (same ``n_resamples`` and ``seed``).
    """
    _check_options(n_resamples, seed, level)
    if test not in ("bootstrap", "permutation"):
        raise ValueError(
            f"paired_difference: test must be 'bootstrap' or 'permutation', got {test!r}"
        )
    rows_a, rows_b, n = _paired_rows(arrays_a, arrays_b, "paired_difference")
    how = _method(statistic, method)
    idx = resample_indices(n, n_resamples, seed)
    value_a, value_b = _scalar(statistic(*rows_a)), _scalar(statistic(*rows_b))
    res_a = resampled_values(statistic, idx, *rows_a)
    res_b = resampled_values(statistic, idx, *rows_b)
    both = np.isfinite(res_a) & np.isfinite(res_b)  # a resample counts only if both are defined
    res_d = np.where(both, res_a - res_b, np.nan)
    diff = interval_from(value_a - value_b, res_d, level, how)
    if test == "bootstrap":
        p = bootstrap_p_value(res_d[both] - diff.shift)
    else:
        p = permutation_test(statistic, tuple(rows_a), tuple(rows_b), n_resamples, seed)
    a, b = interval_from(value_a, res_a, level, how), interval_from(value_b, res_b, level, how)
    return Comparison(a, b, diff, p, f"paired {test}", n)


def permutation_test(
    statistic: Statistic, arrays_a: Any, arrays_b: Any, n_resamples: int = 1000, seed: int = 0
) -> float:
    """Two-sided paired permutation p-value of ``statistic(A) - statistic(B)``.

    Each draw swaps the two systems' rows of a study with probability 1/2 (:func:`swap_indices`);
    ``p = (1 + #{|d_perm| >= |d|}) / (1 + R_valid)``. ``d`` is recomputed through the same
    path as the permuted differences, so both carry the same subset noise (KD).
    """
    _check_options(n_resamples, seed)
    rows_a, rows_b, n = _paired_rows(arrays_a, arrays_b, "permutation_test")
    stacked = [_stack(a, b) for a, b in zip(rows_a, rows_b, strict=True)]
    identity = np.arange(2 * n).reshape(2, n)  # row 0: A as given, row 1: B as given
    observed = resampled_values(statistic, identity, *stacked)
    d = observed[0] - observed[1]
    if not np.isfinite(d):
        return float("nan")  # no observed difference to test
    idx_a, idx_b = swap_indices(n, n_resamples, seed)
    perm = resampled_values(statistic, idx_a, *stacked) - resampled_values(
        statistic, idx_b, *stacked
    )
    perm = perm[np.isfinite(perm)]
    tol = 1e-12 * max(1.0, abs(d))  # a swap that reproduces |d| must count despite rounding
    return float((1 + np.sum(np.abs(perm) >= abs(d) - tol)) / (1 + len(perm)))


def _method(statistic: Statistic, method: str | None) -> str:
    how = getattr(statistic, "interval_method", "percentile") if method is None else method
    if how not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {how!r}")
    return how


def _check_options(n_resamples: int, seed: int, level: float = 0.95) -> None:
    """Every entry point checks its options here, so each message names the bad one."""
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int | np.integer):
        raise ValueError(f"n_resamples must be an int, got {n_resamples!r}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(
            f"seed must be a non-negative int (results must be reproducible), got {seed!r}"
        )
    if isinstance(level, bool) or not (isinstance(level, float | int) and 0 < level < 1):
        raise ValueError(f"level must lie strictly between 0 and 1, got {level!r}")


def _as_rows(arrays: Sequence[Any], what: str) -> tuple[list[Any], int]:
    """Arrays (numpy-convertible or pandas) of one non-zero length along axis 0."""
    if not arrays:
        raise ValueError(f"{what}: no arrays given")
    rows = [a if isinstance(a, pd.DataFrame | pd.Series) else np.asarray(a) for a in arrays]
    if any(np.ndim(a) == 0 for a in rows):
        raise ValueError(f"{what}: every array needs a row axis (got a scalar)")
    lengths = [len(a) for a in rows]
    if len(set(lengths)) > 1:
        raise ValueError(f"{what}: arrays must have the same number of rows, got {lengths}")
    if lengths[0] == 0:
        raise ValueError(f"{what}: empty arrays (no studies to resample)")
    return rows, lengths[0]


def _paired_rows(a: Any, b: Any, what: str) -> tuple[list[Any], list[Any], int]:
    a, b = (x if isinstance(x, tuple) else (x,) for x in (a, b))
    if len(a) != len(b):
        raise ValueError(f"{what}: system A has {len(a)} arrays, system B {len(b)}")
    rows_a, n = _as_rows(a, what)
    rows_b, n_b = _as_rows(b, what)
    if n != n_b:
        raise ValueError(f"{what}: system A has {n} studies, system B {n_b} (must be the same)")
    for i, (x, y) in enumerate(zip(rows_a, rows_b, strict=True)):
        if np.shape(x)[1:] != np.shape(y)[1:]:
            raise ValueError(
                f"{what}: array {i} has shape {np.shape(x)} for A, {np.shape(y)} for B"
            )
    return rows_a, rows_b, n


def _take(a: Any, rows: np.ndarray) -> Any:
    if isinstance(a, pd.DataFrame | pd.Series):
        return a.iloc[rows].reset_index(drop=True)
    return a[rows]


def _stack(a: Any, b: Any) -> Any:
    if isinstance(a, pd.DataFrame | pd.Series):
        return pd.concat([a, b], ignore_index=True)
    return np.concatenate([a, b])


def _scalar(x: Any) -> float:
    if np.ndim(x) != 0:
        raise ValueError(f"the statistic must return one number, got shape {np.shape(x)}")
    return float(x)
