"""Table statistics with a vectorised path over many resamples (for ``eval.uncertainty``).

A *resample* is one row of an index matrix ``idx`` ``(R, n)``: the data rows (studies) that
make up one redrawn test set, repeats allowed. Each statistic here has two entry points:

- ``stat(*arrays) -> float``: the number on the data as given, computed by the project's own
  metric function (``understanding`` for F1, ``generation`` for FD and KD), so a table's value
  and its interval come from one definition;
- ``stat.on_indices(idx, *arrays) -> (R,)``: the same number on every resample
  ``[a[idx[r]] for a in arrays]`` at once, without building the R resampled copies.

The trick shared by F1, FD and KD: these statistics depend on a resample only through how
often it contains each row, its *row counts* ``w`` ``(R, N)`` (:func:`row_counts`). Sums over
the resampled rows become ``w @ per_row_terms``: true positives, feature sums and outer
products, kernel sums. The results equal the plain metric on the resampled rows (tests check
every resample), because every statistic here ignores row order.

Indices may point beyond ``n``: the paired permutation test stacks two systems' rows (2n) and
picks n of them per resample, so nothing assumes ``idx < n``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from threadpoolctl import threadpool_limits

from unixlib.eval.generation import frechet_distance, kernel_distance
from unixlib.eval.understanding import _f1, _micro_macro


def row_counts(idx: np.ndarray, n_rows: int) -> np.ndarray:
    """How often each of ``n_rows`` rows occurs in each resample: ``(R, n_rows)`` float64.

    ``idx`` ``(R, n)`` holds row numbers in ``[0, n_rows)``; row r of the result sums to n.
    """
    r = idx.shape[0]
    flat = (idx + n_rows * np.arange(r)[:, None]).ravel()  # resample r's rows -> bins r*N...
    return np.bincount(flat, minlength=r * n_rows).reshape(r, n_rows).astype(np.float64)


class Mean:
    """Mean of per-row scores ``(n,)`` (BLEU per report, alignment cosine per pair, ...)."""

    name = "mean"

    def __call__(self, scores: np.ndarray) -> float:
        return float(_scores(scores).mean())

    def on_indices(self, idx: np.ndarray, scores: np.ndarray) -> np.ndarray:
        return _scores(scores)[idx].mean(axis=1)  # (R, n) -> (R,)


class F1:
    """CheXbert-style micro or macro F1 of binary label matrices ``ref``, ``pred`` ``(n, C)``.

    The F1 of ``understanding`` (``_f1``: tp / (tp + (fp + fn) / 2), a class with 0/0 counts
    as 0 in the macro mean), so never NaN. Choose the columns (14 or 5 classes) and the
    uncertain convention before: pass ``understanding.binarize(...)[:, cols]``.
    """

    def __init__(self, average: Literal["micro", "macro"]) -> None:
        if average not in ("micro", "macro"):
            raise ValueError(f"F1: average must be 'micro' or 'macro', got {average!r}")
        self.average = average
        self.name = f"{average}_f1"

    def __call__(self, ref: np.ndarray, pred: np.ndarray) -> float:
        micro, macro = _micro_macro(*_binary_pair(ref, pred))
        return micro if self.average == "micro" else macro

    def on_indices(self, idx: np.ndarray, ref: np.ndarray, pred: np.ndarray) -> np.ndarray:
        y_ref, y_pred = _binary_pair(ref, pred)
        w = row_counts(idx, len(y_ref))  # (R, N)
        tp = w @ (y_ref & y_pred)  # (R, C): per-resample counts are weighted row sums
        fp = w @ ((1 - y_ref) & y_pred)
        fn = w @ (y_ref & (1 - y_pred))
        if self.average == "micro":
            return _f1(tp.sum(axis=1), fp.sum(axis=1), fn.sum(axis=1))
        return _f1(tp, fp, fn).mean(axis=1)


class FrechetDistance:
    """FD between real and generated features ``(n, F)``, paired by row (``generation``).

    Row i of ``fake`` was generated from study i, so a resample takes the same rows of both.
    Per resample, with ``L = sqrt(w / (m - 1)) * (x - mean)`` over its distinct rows (``w`` their
    counts, ``m = sum(w)``), the sample covariance is ``S = L^T L``, so ``Tr S = |L|_F^2``, and
    ``S_r S_f`` has (besides zeros) the eigenvalues of ``(L_r L_f^T)(L_r L_f^T)^T``: hence
    ``Tr((S_r S_f)^(1/2))`` is the sum of the singular values of ``L_r L_f^T``, a matrix of the
    size of the smaller of (distinct rows, F). No F x F matrix square root is needed.
    """

    name = "fd"
    interval_method = "centred"  # resampled FD sits above FD (see eval.uncertainty)

    def __call__(self, real: np.ndarray, fake: np.ndarray) -> float:
        return frechet_distance(real, fake)

    def on_indices(self, idx: np.ndarray, real: np.ndarray, fake: np.ndarray) -> np.ndarray:
        r, f = _paired_features(real, fake, "FrechetDistance")
        w = row_counts(idx, len(r))  # (R, N)
        # Many small factorisations: BLAS threads only contend on shared cores (10-20x slower
        # on the 2-core CI machine), so each runs single-threaded.
        with threadpool_limits(limits=1):
            return np.array([_fd_of_counts(counts, r, f) for counts in w])


def _fd_of_counts(counts: np.ndarray, real: np.ndarray, fake: np.ndarray) -> float:
    """FD of the rows of ``real``, ``fake`` ``(N, F)`` repeated ``counts`` ``(N,)`` times."""
    rows = np.flatnonzero(counts)
    w = counts[rows]
    m = w.sum()
    r, f = real[rows], fake[rows]  # (k, F), k distinct rows
    mu_r, mu_f = w @ r / m, w @ f / m
    scale = np.sqrt(w / (m - 1))[:, None]
    l_r, l_f = (r - mu_r) * scale, (f - mu_f) * scale  # (k, F) each, S = L^T L
    traces = (l_r**2).sum() + (l_f**2).sum()  # Tr S_r + Tr S_f
    if len(rows) > r.shape[1]:  # L = QR: L_r L_f^T and R_r R_f^T share singular values
        l_r, l_f = np.linalg.qr(l_r, mode="r"), np.linalg.qr(l_f, mode="r")  # (F, F)
    trace_sqrt = np.linalg.svd(l_r @ l_f.T, compute_uv=False).sum()
    return float(((mu_r - mu_f) ** 2).sum() + traces - 2 * trace_sqrt)


class KernelDistance:
    """KD (unbiased MMD^2, kernel ``(x.y / F + 1)^degree``) of paired features ``(n, F)``.

    The value is ``generation.kernel_distance(real, fake, subsets, subset_size, degree, seed)``
    (its mean). On a resample: with ``subset_size=None`` (the whole set, ``kernel_distance``'s
    default for equal sizes) one exact MMD^2 of the resampled rows; with a ``subset_size`` m
    below n, the mean over ``resample_subsets`` subsets (default 10, not 100: the bootstrap
    already averages over 1,000 resamples, and the subset noise it keeps only widens the
    interval a little), each drawing m of the resample's rows without replacement for real and
    fake independently, as torchmetrics draws them.
    """

    name = "kd"
    interval_method = "centred"  # repeated rows raise the within-set kernel sums

    def __init__(
        self,
        subset_size: int | None = None,
        subsets: int = 100,
        resample_subsets: int = 10,
        degree: int = 3,
        seed: int = 0,
        chunk: int = 100,
    ) -> None:
        if resample_subsets < 1:
            raise ValueError(
                f"KernelDistance: resample_subsets must be >= 1, got {resample_subsets}"
            )
        self.subset_size = subset_size  # None: the whole set (kernel_distance's default)
        self.subsets = subsets  # for the value, as generation.kernel_distance draws them
        self.resample_subsets = resample_subsets  # per resample (see the class docstring)
        self.degree, self.seed = degree, seed
        self.chunk = chunk  # resamples per batch of subset weights (bounds memory)

    def __call__(self, real: np.ndarray, fake: np.ndarray) -> float:
        kd, _ = kernel_distance(real, fake, self.subsets, self.subset_size, self.degree, self.seed)
        return kd

    def on_indices(self, idx: np.ndarray, real: np.ndarray, fake: np.ndarray) -> np.ndarray:
        r, f = _paired_features(real, fake, "KernelDistance")
        n = idx.shape[1]
        size = n if self.subset_size is None else self.subset_size
        if not 2 <= size <= n:
            raise ValueError(f"KernelDistance: subset_size {size} not in [2, {n}]")
        kernels = [(a @ b.T / r.shape[1] + 1.0) ** self.degree for a, b in ((r, r), (f, f), (r, f))]
        if size == n:  # the whole resample: one exact MMD^2, no subset draw
            w = row_counts(idx, len(r))
            return _weighted_mmd(w, w, size, *kernels)
        rng = np.random.default_rng(self.seed)
        out = np.empty(len(idx))
        for s in range(0, len(idx), self.chunk):
            sub_r, sub_f = kd_subset_rows(idx[s : s + self.chunk], size, self.resample_subsets, rng)
            b, k = sub_r.shape[:2]  # (B, S, m)
            w_r = row_counts(sub_r.reshape(b * k, size), len(r))
            w_f = row_counts(sub_f.reshape(b * k, size), len(r))
            out[s : s + b] = _weighted_mmd(w_r, w_f, size, *kernels).reshape(b, k).mean(axis=1)
        return out


def kd_subset_rows(
    idx: np.ndarray, size: int, subsets: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Data rows of ``subsets`` KD subsets per resample: real, fake, each ``(R, subsets, size)``.

    Each subset takes ``size`` distinct positions of the resample (a repeated study may come
    in more than once, as it would from the resampled copy), real and fake drawn independently.
    """
    r, n = idx.shape
    rows = []
    for _ in range(2):
        pos = rng.random((r, subsets, n)).argsort(axis=-1)[..., :size]  # (R, S, m) positions
        rows.append(np.take_along_axis(idx[:, None, :], pos, axis=-1))
    return rows[0], rows[1]


def _weighted_mmd(
    w_r: np.ndarray, w_f: np.ndarray, m: int, k_rr: np.ndarray, k_ff: np.ndarray, k_rf: np.ndarray
) -> np.ndarray:
    """torchmetrics' unbiased MMD^2 of the row multisets given by counts ``(B, N)`` (each sums
    to m): the within-set sums leave out each position's own pair ``w . diag(K)``."""
    within_r = ((w_r @ k_rr) * w_r).sum(axis=1) - w_r @ np.diag(k_rr)
    within_f = ((w_f @ k_ff) * w_f).sum(axis=1) - w_f @ np.diag(k_ff)
    cross = ((w_r @ k_rf) * w_f).sum(axis=1)
    return (within_r + within_f) / (m * (m - 1)) - 2 * cross / m**2


def _scores(scores: np.ndarray) -> np.ndarray:
    x = np.asarray(scores, dtype=np.float64)
    if x.ndim != 1 or len(x) == 0 or not np.isfinite(x).all():
        raise ValueError(f"Mean: need finite per-row scores (n,), got shape {x.shape}")
    return x


def _binary_pair(ref: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y_ref, y_pred = np.asarray(ref), np.asarray(pred)
    if y_ref.ndim != 2 or y_ref.shape != y_pred.shape:
        raise ValueError(f"F1: need two (n, C) label matrices, got {y_ref.shape}, {y_pred.shape}")
    if not (np.isin(y_ref, (0, 1)).all() and np.isin(y_pred, (0, 1)).all()):
        raise ValueError("F1: labels must be binary 0/1 (binarize them first)")
    return y_ref.astype(np.int64), y_pred.astype(np.int64)


def _paired_features(
    real: np.ndarray, fake: np.ndarray, what: str
) -> tuple[np.ndarray, np.ndarray]:
    r, f = np.asarray(real, dtype=np.float64), np.asarray(fake, dtype=np.float64)
    if r.ndim != 2 or r.shape != f.shape:
        raise ValueError(
            f"{what}: need paired (n, F) features of one shape, got {r.shape}, {f.shape}"
        )
    if not (np.isfinite(r).all() and np.isfinite(f).all()):
        raise ValueError(f"{what}: features contain NaN or inf")
    return r, f
