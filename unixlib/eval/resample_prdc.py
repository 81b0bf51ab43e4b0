"""Precision, recall, density and coverage (PRDC) over bootstrap resamples, fast.

PRDC (Naeem et al. 2020; the ``prdc`` package, as ``generation.prdc`` calls it with k = 5)
draws a ball around every real feature whose radius is the distance to its k-th nearest
real neighbour, and the same around every fake feature:

- precision: the share of fake rows inside at least one real ball;
- recall: the share of real rows inside at least one fake ball;
- density: the number of real balls holding each fake row, / k, averaged over fake rows;
- coverage: the share of real rows whose ball holds at least one fake row.

**What a resample is.** Row i of ``real`` and of ``fake`` belong to study i (the test image
and the image generated from its report), so a resample takes the same rows of both. The
package, run on the resampled copies, sees a study drawn c times as c identical points.

**Fast path.** Every distance a resample needs is a distance between two original rows, so
the three distance matrices (real-real, fake-fake, real-fake) are computed once, with the
function the package calls (sklearn's ``pairwise_distances``), and each row's neighbours are
sorted once. A resample enters only through its row counts ``w`` (``row_counts``):

- a radius is the (k+1)-th smallest distance of the *multiset* in which neighbour j appears
  ``w_j`` times (the package takes the (k+1)-th smallest of a row that includes the point
  itself at distance 0): the sorted neighbour at which the cumulative count reaches k + 1.
  We keep its *rank* ``t`` in the sorted row, not the distance;
- "row x is inside ball b" (distance < radius) becomes a comparison of ranks: ``t_b``
  against the number of b's sorted neighbours at distance <= d(b, x), computed once. Exact,
  with no float rounding between the two paths;
- only pairs inside a ball in *some* resample can count; they are listed once (a few per
  row when fakes resemble reals, all N^2 at worst) and tested per resample; "at least one"
  and "how many" over repeated rows are sums weighted by ``w`` (a sparse matrix product).

The four measures come from one pass, kept for the next calls with the same inputs (a table
asks for all four). 1,000 resamples of 200 studies take 0.15-0.3 s (0.07-0.15 s of CPU) on
the shared two-core machine, the more the wider the fake balls; no distance is recomputed.

**Resampling distorts PRDC.** A study drawn twice is its own nearest neighbour at distance
0, so resampled real balls shrink: precision and density drop, and the percentile interval
can miss the value. Hence ``interval_method = "centred"`` (as for FD; see
``eval.uncertainty``), and the permutation test is the better check for comparisons.
"""

from __future__ import annotations

import hashlib

import numpy as np
from scipy.sparse import csr_matrix
from sklearn.metrics import pairwise_distances
from threadpoolctl import threadpool_limits

from unixlib.eval.generation import prdc
from unixlib.eval.resample_stats import _paired_features, row_counts

MEASURES: tuple[str, ...] = ("precision", "recall", "density", "coverage")
_RECENT_SIZE = 8  # inputs remembered: 4 shards of one table row, with room to spare
_recent: dict[str, dict[str, np.ndarray]] = {}  # digest of recent inputs -> their measures


class PRDC:
    """One PRDC measure of paired real and fake features ``(n, F)``, k nearest neighbours.

    The value is ``generation.prdc(real, fake, k)[measure]``; ``on_indices`` computes all
    four measures per resample (:func:`prdc_on_indices`) and returns this one.
    """

    interval_method = "centred"  # a repeated study is its own neighbour at distance 0

    def __init__(self, measure: str, k: int = 5) -> None:
        if measure not in MEASURES:
            raise ValueError(f"PRDC: measure must be one of {MEASURES}, got {measure!r}")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"PRDC: k must be a positive int, got {k!r}")
        self.measure, self.k = measure, k
        self.name = measure

    def __call__(self, real: np.ndarray, fake: np.ndarray) -> float:
        return prdc(real, fake, self.k)[self.measure]

    def on_indices(self, idx: np.ndarray, real: np.ndarray, fake: np.ndarray) -> np.ndarray:
        return prdc_on_indices(idx, real, fake, self.k)[self.measure]


def prdc_on_indices(
    idx: np.ndarray, real: np.ndarray, fake: np.ndarray, k: int = 5
) -> dict[str, np.ndarray]:
    """All four measures, each ``(R,)``, on the resamples ``idx`` ``(R, n)`` of paired rows.

    Equals ``generation.prdc(real[idx[r]], fake[idx[r]], k)`` for every r, up to how a
    distance between two identical rows rounds (0 here; the package may get 1e-8 when it
    recomputes it), which matters only when a radius is such a distance. The results for the
    last few inputs are kept, so asking for the four measures one by one computes them once.
    """
    r, f = _paired_features(real, fake, "PRDC")
    idx = np.asarray(idx)
    if idx.ndim != 2 or idx.shape[1] < k + 2:
        raise ValueError(f"PRDC: need (R, n) indices with n >= k + 2 = {k + 2}, got {idx.shape}")
    key = hashlib.blake2b(b"".join(np.ascontiguousarray(a).tobytes() for a in (idx, r, f)))
    key.update(repr((idx.shape, r.shape, k)).encode())
    digest = key.hexdigest()
    if digest not in _recent:
        with threadpool_limits(limits=1):  # BLAS threads only contend on shared cores
            measures = _prdc_counts(idx, r, f, k)
        if len(_recent) >= _RECENT_SIZE:  # a table asks for the four measures in a row
            del _recent[next(iter(_recent))]  # forget the oldest
        _recent[digest] = measures
    return {m: v.copy() for m, v in _recent[digest].items()}


def _prdc_counts(idx: np.ndarray, r: np.ndarray, f: np.ndarray, k: int) -> dict[str, np.ndarray]:
    n = idx.shape[1]
    d_rf = _distances(r, f)  # (N, N): real i to fake j
    # Resamples run along the last (contiguous) axis: every step below is a row operation.
    w = np.ascontiguousarray(row_counts(idx, len(r)).T).astype(np.int32)  # (N, R) copies
    real_nb = _SortedNeighbours(_distances(r, r))
    fake_nb = _SortedNeighbours(_distances(f, f))
    rank_r, rank_f = real_nb.radius_ranks(w, k), fake_nb.radius_ranks(w, k)  # (N, R) each
    # Ball o holds point x  <=>  rank[o] >= need[o, x], the number of o's sorted neighbours
    # at distance <= d(o, x). Candidate pairs: inside the ball in at least one resample.
    need = real_nb.ranks_within(d_rf)  # (N_real, N_fake)
    o, x = np.nonzero(need <= rank_r.max(axis=1)[:, None])  # real ball o holds fake x
    fakes_per_real_ball = _ball_sums(o, x, o, need[o, x], w, rank_r)  # (N, R)
    real_balls_per_fake = _ball_sums(x, o, o, need[o, x], w, rank_r)
    need = fake_nb.ranks_within(d_rf.T)  # (N_fake, N_real)
    o, x = np.nonzero(need <= rank_f.max(axis=1)[:, None])  # fake ball o holds real x
    fake_balls_per_real = _ball_sums(x, o, o, need[o, x], w, rank_f)
    # Integer counts / n: the package's mean of booleans, exactly.
    return {
        "precision": (w * (real_balls_per_fake > 0)).sum(axis=0) / n,
        "recall": (w * (fake_balls_per_real > 0)).sum(axis=0) / n,
        "density": (1.0 / k) * ((w * real_balls_per_fake).sum(axis=0) / n),
        "coverage": (w * (fakes_per_real_ball > 0)).sum(axis=0) / n,
    }


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances ``(len(a), len(b))`` as the ``prdc`` package computes them
    (sklearn's ``pairwise_distances``; zero diagonal when ``a is b``) but in one job: the
    package asks for 8 threads, which only wait on each other on two cores."""
    return pairwise_distances(a, b, metric="euclidean")


def _ball_sums(
    group: np.ndarray,
    w_rows: np.ndarray,
    rank_rows: np.ndarray,
    need: np.ndarray,
    w: np.ndarray,
    rank: np.ndarray,
    block: int = 128,
) -> np.ndarray:
    """``(N, R)``: for each group g and resample, over the candidate pairs p of g,
    ``sum_p w[w_rows[p]] * (rank[rank_rows[p]] >= need[p])`` (all index arrays ``(P,)``).

    The sum over pairs is a sparse (N, P) incidence matrix times the (P, block) terms, and
    resamples go in blocks of ``block`` columns so the gathered terms stay in cache.
    """
    sum_by_group = csr_matrix(
        (np.ones(len(group), dtype=np.int32), (group, np.arange(len(group)))),
        shape=(w.shape[0], len(group)),
    )
    out = np.empty(w.shape, dtype=np.int64)
    for s in range(0, w.shape[1], block):
        cols = slice(s, s + block)
        inside = rank[rank_rows, cols] >= need[:, None]  # (P, B)
        out[:, cols] = sum_by_group @ (inside * w[w_rows, cols])
    return out


class _SortedNeighbours:
    """One set's distance matrix ``(N, N)`` with each row's neighbours sorted once."""

    def __init__(self, dist: np.ndarray) -> None:
        self.order = np.argsort(dist, axis=1, kind="stable")  # (N, N) neighbour rows, nearest first
        self.sorted = np.take_along_axis(dist, self.order, axis=1)  # (N, N) their distances

    def radius_ranks(self, w: np.ndarray, k: int) -> np.ndarray:
        """``(N, R)``: per row and resample (counts ``w`` ``(N, R)``), the rank in the row's
        sorted neighbours of its radius, the (k+1)-th smallest distance with neighbour j
        counted ``w[j]`` times (the row itself included): ``self.sorted[row, rank]``."""
        n_rows = self.order.shape[0]
        cum = np.zeros_like(w)  # (N, R) copies among each row's t nearest neighbours
        rank = np.full(w.shape, -1, dtype=np.min_scalar_type(-n_rows))
        # Walk outwards one neighbour at a time; the (k+1)-th copy is usually among the
        # nearest ~2k neighbours, so this stops after a few dozen (N, R) additions.
        for t in range(n_rows):
            cum += w[self.order[:, t]]
            rank[(rank < 0) & (cum >= k + 1)] = t
            if t >= k and (rank >= 0).all():
                break
        return rank

    def ranks_within(self, dist: np.ndarray) -> np.ndarray:
        """``(N, M)`` int: for row i and point x at ``dist[i, x]``, how many of i's sorted
        neighbours lie at distance <= it; x is inside i's ball iff the radius rank >= this."""
        rows = zip(self.sorted, dist, strict=True)
        return np.stack([np.searchsorted(s, d, side="right") for s, d in rows])
