"""Stratified (within-shard) resampling and the mean over shards of generation.sharded_scores."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from unixlib.eval.generation import frechet_distance, kernel_distance, prdc, sharded_scores
from unixlib.eval.intervals import interval_from
from unixlib.eval.resample_prdc import PRDC
from unixlib.eval.resample_shards import (
    ShardMean,
    bootstrap_shards,
    resample_indices_stratified,
    shard_strata,
)
from unixlib.eval.resample_stats import FrechetDistance, KernelDistance
from unixlib.eval.uncertainty import bootstrap, permutation_test, resample_indices


def _features(seed: int, n: int, f: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    real = rng.normal(size=(n, f))
    return real, 0.8 * real + 0.6 * rng.normal(size=(n, f)) + 0.2


def test_shard_strata_follow_array_split() -> None:
    np.testing.assert_array_equal(shard_strata(10, 4), [0, 0, 0, 1, 1, 1, 2, 2, 3, 3])
    with pytest.raises(ValueError, match="n_shards"):
        shard_strata(3, 4)


def test_stratified_indices_stay_in_their_stratum() -> None:
    strata = np.array(["b", "a", "b", "a", "a", "c"])  # any labels, not contiguous
    idx = resample_indices_stratified(strata, 400, seed=3)
    assert idx.shape == (400, 6)
    np.testing.assert_array_equal(strata[idx], np.broadcast_to(strata, idx.shape))
    assert set(idx[:, 1]) == {1, 3, 4} and set(idx[:, 0]) == {0, 2}  # every member drawn
    assert (idx[:, 5] == 5).all()  # a stratum of one is always itself
    np.testing.assert_array_equal(idx, resample_indices_stratified(strata, 400, seed=3))
    with pytest.raises(ValueError, match="seed"):
        resample_indices_stratified(strata, 10, seed=-1)


@pytest.mark.parametrize(
    ("key", "statistic"),
    [
        ("fd", FrechetDistance()),
        ("kd", KernelDistance()),
        ("precision", PRDC("precision")),
        ("recall", PRDC("recall")),
        ("density", PRDC("density")),
        ("coverage", PRDC("coverage")),
    ],
)
def test_shard_mean_value_equals_sharded_scores(key: str, statistic: object) -> None:
    real, fake = _features(0, 90, 6)  # shards of 23, 23, 22, 22 rows
    assert ShardMean(statistic, 4)(real, fake) == sharded_scores(real, fake)[key]


def test_shard_mean_resamples_equal_per_shard_metrics() -> None:
    real, fake = _features(1, 70, 5)
    idx = resample_indices_stratified(shard_strata(70, 4), 6, seed=2)
    shards = np.array_split(np.arange(70), 4)

    def per_shard_mean(metric: Callable[..., float], row: np.ndarray) -> float:
        return float(np.mean([metric(real[row[s]], fake[row[s]]) for s in shards]))

    fd = ShardMean(FrechetDistance()).on_indices(idx, real, fake)
    np.testing.assert_allclose(fd, [per_shard_mean(frechet_distance, r) for r in idx], rtol=1e-7)
    kd = ShardMean(KernelDistance()).on_indices(idx, real, fake)
    plain_kd = [per_shard_mean(lambda a, b: kernel_distance(a, b)[0], r) for r in idx]
    np.testing.assert_allclose(kd, plain_kd, rtol=1e-10)
    for m in ("precision", "coverage"):
        fast = ShardMean(PRDC(m)).on_indices(idx, real, fake)
        plain = [per_shard_mean(lambda a, b, m=m: prdc(a, b)[m], r) for r in idx]
        np.testing.assert_array_equal(fast, plain)


def test_bootstrap_shards_is_the_interval_of_the_shard_mean() -> None:
    real, fake = _features(2, 80, 4)
    stat = ShardMean(FrechetDistance())
    interval = bootstrap_shards(stat, real, fake, n_resamples=40, seed=5)
    idx = resample_indices_stratified(shard_strata(80, 4), 40, seed=5)
    expected = interval_from(stat(real, fake), stat.on_indices(idx, real, fake), 0.95, "centred")
    assert interval == expected
    assert interval.value == sharded_scores(real, fake)["fd"]


def test_draws_over_all_studies_are_refused_and_permutations_accepted() -> None:
    real, fake = _features(3, 40, 3)
    stat = ShardMean(FrechetDistance())
    with pytest.raises(ValueError, match="within shards"):
        stat.on_indices(resample_indices(40, 3, seed=0), real, fake)
    with pytest.raises(ValueError, match="within shards"):
        bootstrap(stat, real, fake, n_resamples=5)
    # A permutation swaps the two systems' outputs of a study: every study stays in place.
    p = permutation_test(stat, (real, fake), (real, fake + 1.0), n_resamples=30, seed=1)
    assert p == pytest.approx(1 / 31)  # a shift of 1 per feature: no swap comes close
    with pytest.raises(TypeError, match="ShardMean"):
        bootstrap_shards(FrechetDistance(), real, fake)  # type: ignore[arg-type]
