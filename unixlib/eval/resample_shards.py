"""Bootstrap of the paper's shard protocol: resample within each shard, average the shards.

The paper computes each generation metric (FD, KD, PRDC) on 4 consecutive shards of the
test set and reports the mean (``generation.sharded_scores``). The interval of that mean
must come from the same procedure on redrawn test sets: each shard is redrawn from its own
studies (a *stratified* bootstrap, one stratum per shard), the metric is computed per shard,
and the shards are averaged. Resampling the whole set instead would move studies between
shards and change every shard's size, which the protocol never does.

- :func:`resample_indices_stratified` draws ``(R, n)`` indices in which position i always
  holds a study of position i's stratum (each stratum drawn with replacement from itself);
- :class:`ShardMean` wraps a statistic: its value is the mean over consecutive shards
  (``np.array_split``, as ``sharded_scores``), its ``on_indices`` takes each shard's
  columns of such indices to the wrapped statistic's fast path;
- :func:`bootstrap_shards` is ``uncertainty.bootstrap`` with those indices.

``uncertainty.bootstrap`` and ``paired_difference`` draw over all studies, so they cannot
take a :class:`ShardMean` (it refuses indices that cross shards, with a message saying so);
``uncertainty.permutation_test`` can, since a swap keeps every study in its place.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from unixlib.eval.intervals import Interval, interval_from
from unixlib.eval.uncertainty import Method, Statistic, _check_options, resampled_values


def shard_strata(n: int, n_shards: int) -> np.ndarray:
    """``(n,)`` shard number of each position: ``n_shards`` consecutive shards, sized as
    ``np.array_split`` sizes them (the first ``n % n_shards`` one row longer)."""
    if isinstance(n_shards, bool) or not isinstance(n_shards, int) or not 1 <= n_shards <= n:
        raise ValueError(f"shard_strata: n_shards must be an int in [1, {n}], got {n_shards!r}")
    return np.concatenate(
        [np.full(len(part), s) for s, part in enumerate(np.array_split(np.arange(n), n_shards))]
    )


def resample_indices_stratified(strata: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    """``(n_resamples, n)`` indices: position i draws, with replacement, one of the positions
    that share its stratum (``strata`` ``(n,)``, any labels), seeded.

    Each stratum keeps its size and its own studies in every resample.
    """
    labels = np.asarray(strata)
    if labels.ndim != 1 or len(labels) == 0:
        raise ValueError(f"resample_indices_stratified: strata must be (n,), got {labels.shape}")
    _check_options(n_resamples, seed)
    rng = np.random.default_rng(seed)
    idx = np.empty((n_resamples, len(labels)), dtype=np.int64)
    for value in np.unique(labels):  # sorted, so the draws do not depend on label order
        members = np.flatnonzero(labels == value)
        idx[:, members] = members[rng.integers(0, len(members), size=(n_resamples, len(members)))]
    return idx


class ShardMean:
    """Mean of ``statistic`` over ``n_shards`` consecutive shards of the (paired) rows.

    The value equals ``generation.sharded_scores``' mean for the statistic it wraps
    (``FrechetDistance()`` for ``fd``, ``KernelDistance()`` for ``kd``, ``PRDC(m)`` for the
    others). ``on_indices`` needs indices that keep every study in its shard
    (:func:`resample_indices_stratified` with :func:`shard_strata`, or the permutation
    test's swaps) and raises otherwise. ``interval_method`` is the wrapped statistic's.
    """

    def __init__(self, statistic: Statistic, n_shards: int = 4) -> None:
        if isinstance(n_shards, bool) or not isinstance(n_shards, int) or n_shards < 1:
            raise ValueError(f"ShardMean: n_shards must be a positive int, got {n_shards!r}")
        self.statistic, self.n_shards = statistic, n_shards
        self.name = f"{getattr(statistic, 'name', 'statistic')}_mean_of_{n_shards}_shards"
        self.interval_method = getattr(statistic, "interval_method", "percentile")

    def strata(self, n: int) -> np.ndarray:
        """``(n,)`` shard of each of n rows (:func:`shard_strata`)."""
        return shard_strata(n, self.n_shards)

    def __call__(self, *arrays: Any) -> float:
        self.strata(len(arrays[0]))  # checks n_shards against the row count
        # Split each array at the same positions, as generation.sharded_scores does.
        parts = [np.array_split(np.asarray(a), self.n_shards) for a in arrays]
        per_shard = [float(self.statistic(*shard)) for shard in zip(*parts, strict=True)]
        return float(np.mean(per_shard))

    def on_indices(self, idx: np.ndarray, *arrays: Any) -> np.ndarray:
        n = idx.shape[1]
        shard = self.strata(n)
        # Position i holds study idx % n (the permutation test stacks two systems' n rows).
        crossing = shard[idx % n] != shard[None, :]
        if crossing.any():
            r, i = (int(v[0]) for v in np.nonzero(crossing))
            raise ValueError(
                f"ShardMean: resample {r} puts study {idx[r, i] % n} (shard "
                f"{shard[idx[r, i] % n]}) in shard {shard[i]}; draw the indices within shards "
                "(resample_indices_stratified, or bootstrap_shards), not over all studies"
            )
        per_shard = []
        for s in range(self.n_shards):
            # Hand over only the shard's rows (renumbered), so a statistic that works on
            # distances or kernels between rows (PRDC, KD) builds them per shard.
            rows, local = np.unique(idx[:, shard == s], return_inverse=True)
            shard_arrays = [np.asarray(a)[rows] for a in arrays]
            local = local.reshape(len(idx), -1)
            per_shard.append(resampled_values(self.statistic, local, *shard_arrays))
        return np.mean(per_shard, axis=0)  # (R,)


def bootstrap_shards(
    statistic: ShardMean,
    *arrays: Any,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    method: Method | None = None,
) -> Interval:
    """The shard mean ``statistic(*arrays)`` with its stratified bootstrap interval.

    As ``uncertainty.bootstrap`` (same options and result), but every resample redraws each
    shard from its own studies (:func:`resample_indices_stratified`).
    """
    _check_options(n_resamples, seed, level)
    if not isinstance(statistic, ShardMean):
        raise TypeError(f"bootstrap_shards: needs a ShardMean, got {type(statistic).__name__}")
    rows = [np.asarray(a) for a in arrays]
    if not rows or len({len(a) for a in rows}) != 1:
        raise ValueError("bootstrap_shards: give one or more arrays with the same row count")
    idx = resample_indices_stratified(statistic.strata(len(rows[0])), n_resamples, seed)
    how = statistic.interval_method if method is None else method
    return interval_from(
        float(statistic(*rows)), resampled_values(statistic, idx, *rows), level, how
    )
