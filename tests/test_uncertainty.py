"""Bootstrap intervals, paired tests and verdicts (unixlib.eval.uncertainty, issue 22 item 17)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from unixlib.data.schema import LABELS
from unixlib.eval.generation import frechet_distance, kernel_distance
from unixlib.eval.intervals import bootstrap_p_value, interval_from
from unixlib.eval.uncertainty import (
    F1,
    Comparison,
    FrechetDistance,
    Interval,
    KernelDistance,
    Mean,
    bootstrap,
    paired_difference,
    permutation_test,
    resample_indices,
    swap_indices,
    verdict,
)
from unixlib.eval.understanding import binarize, chexbert_f1


def _predictions(seed: int, n: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """References (n, 14), a good system (10% flips) and a poor one (35% flips)."""
    rng = np.random.default_rng(seed)
    ref = (rng.random((n, 14)) < 0.25).astype(int)
    good = np.where(rng.random((n, 14)) < 0.10, 1 - ref, ref)
    poor = np.where(rng.random((n, 14)) < 0.35, 1 - ref, ref)
    return ref, good, poor


def test_resample_indices_exact_under_a_fixed_seed() -> None:
    """Changing the draw would silently change every published interval: pin it."""
    expected = [[4, 3, 2, 1, 1], [0, 0, 0, 0, 4], [3, 4, 2, 3, 4]]
    np.testing.assert_array_equal(resample_indices(5, 3, seed=0), expected)
    assert resample_indices(7, 11, seed=2).shape == (11, 7)


def test_mean_of_binary_rows_has_the_binomial_resample_distribution() -> None:
    """x = [0, 0, 0, 1]: a resample's mean is K/4 with K ~ Binomial(4, 1/4), so the 95% interval
    is [0, 0.75] (P(K <= 2) = 243/256 < 0.975 < P(K <= 3) = 255/256)."""
    x = np.array([0.0, 0.0, 0.0, 1.0])
    iv = bootstrap(Mean(), x, n_resamples=4000, seed=1)
    assert (iv.value, iv.low, iv.high) == (0.25, 0.0, 0.75)
    assert (iv.n_resamples, iv.n_valid, iv.method, iv.shift) == (4000, 4000, "percentile", 0.0)
    k = (x[resample_indices(4, 4000, seed=1)].sum(axis=1)).astype(int)
    binom = [math.comb(4, j) * 0.25**j * 0.75 ** (4 - j) for j in range(5)]
    freq = np.bincount(k, minlength=5) / 4000
    np.testing.assert_allclose(freq, binom, atol=0.025)


def test_generic_callable_and_fast_path_give_the_same_interval() -> None:
    x = np.random.default_rng(0).random(60)
    assert bootstrap(Mean(), x, n_resamples=300, seed=4) == bootstrap(
        np.mean, x, n_resamples=300, seed=4
    )


def test_interval_contains_value_and_is_reproducible() -> None:
    ref, good, _ = _predictions(1)
    first = bootstrap(F1("micro"), ref, good, seed=3)
    assert first.low < first.value < first.high
    assert bootstrap(F1("micro"), ref, good, seed=3) == first
    other = bootstrap(F1("micro"), ref, good, seed=4)
    assert (other.low, other.high) != (first.low, first.high)
    assert other.value == first.value


def test_identical_systems_differ_by_zero_with_p_one() -> None:
    ref, good, _ = _predictions(2)
    for stat in (F1("micro"), F1("macro")):
        for test in ("bootstrap", "permutation"):
            c = paired_difference(stat, (ref, good), (ref, good), n_resamples=200, test=test)
            assert (c.diff.value, c.diff.low, c.diff.high, c.p_value) == (0.0, 0.0, 0.0, 1.0)
            text = verdict("A", "B", c, higher_is_better=True)
            assert text.startswith("no detectable difference between A and B")


def test_clearly_different_systems_beats_with_small_p() -> None:
    ref, good, poor = _predictions(3)
    for test in ("bootstrap", "permutation"):
        c = paired_difference(F1("micro"), (ref, good), (ref, poor), test=test)
        assert c.p_value < 0.01 and c.diff.low > 0
        assert verdict("UniX", "baseline", c, True).startswith("UniX beats baseline:")
        assert verdict("UniX", "baseline", c, False).startswith("UniX is worse than baseline:")
        flipped = paired_difference(F1("micro"), (ref, poor), (ref, good), test=test)
        assert verdict("baseline", "UniX", flipped, True).startswith("baseline is worse than UniX")
    assert c.diff.value == pytest.approx(c.a.value - c.b.value)


def test_paired_resamples_use_the_same_indices_for_both_systems() -> None:
    seen: list[np.ndarray] = []

    def spy(ids: np.ndarray, x: np.ndarray) -> float:
        seen.append(ids.copy())
        return float(x.mean())

    ids, rng = np.arange(9), np.random.default_rng(0)
    paired_difference(spy, (ids, rng.random(9)), (ids, rng.random(9)), n_resamples=5, seed=7)
    expected = resample_indices(9, 5, seed=7)
    assert len(seen) == 12  # value A, value B, 5 resamples of A, 5 of B
    np.testing.assert_array_equal(seen[2:7], expected)
    np.testing.assert_array_equal(seen[7:12], expected)


def test_paired_fast_path_gets_one_index_matrix_for_both() -> None:
    calls: list[np.ndarray] = []

    class Spy(Mean):
        def on_indices(self, idx: np.ndarray, scores: np.ndarray) -> np.ndarray:
            calls.append(idx)
            return super().on_indices(idx, scores)

    paired_difference(Spy(), np.arange(6.0), np.ones(6), n_resamples=4, seed=1)
    assert len(calls) == 2 and calls[0] is calls[1]


def test_bootstrap_p_value_hand_computed() -> None:
    # #{d <= 0} = 1, #{d >= 0} = 3: p = 2 * (1 + 1) / (1 + 4)
    assert bootstrap_p_value(np.array([1.0, 2.0, 3.0, -1.0])) == pytest.approx(0.8)
    assert bootstrap_p_value(np.ones(999)) == pytest.approx(0.002)
    assert bootstrap_p_value(np.zeros(10)) == 1.0
    assert math.isnan(bootstrap_p_value(np.array([])))


def test_permutation_p_value_hand_computed() -> None:
    """a = [1, 1], b = [0, 0]: a swap flips one study's +1/2, so |d_perm| >= |d| = 1 exactly
    when both studies are swapped the same way."""
    a, b = np.ones(2), np.zeros(2)
    idx_a, _ = swap_indices(2, 500, seed=3)
    same = int(np.sum((idx_a[:, 0] >= 2) == (idx_a[:, 1] >= 2)))
    p = permutation_test(Mean(), a, b, n_resamples=500, seed=3)
    assert p == (1 + same) / 501
    assert 0.4 < p < 0.6


def test_swap_indices_give_each_system_one_of_the_two_outputs() -> None:
    idx_a, idx_b = swap_indices(4, 50, seed=0)
    rows = np.arange(4)
    assert set(np.unique(idx_a % 4 - rows)) == {0}
    np.testing.assert_array_equal(idx_a + idx_b, np.tile(2 * rows + 4, (50, 1)))  # {i, i+n}


def test_bootstrap_p_agrees_with_the_interval() -> None:
    """p < 0.05 exactly when the 95% interval of the difference excludes 0 (same resamples)."""
    rng = np.random.default_rng(11)
    outcomes = set()
    for shift in np.linspace(0.0, 0.4, 9):
        a = rng.normal(size=80)
        b = a + rng.normal(size=80) - shift
        c = paired_difference(Mean(), a, b, seed=int(shift * 100))
        assert (c.p_value < 0.05) == c.diff.excludes(0.0), (shift, c)
        outcomes.add(c.diff.excludes(0.0))
    assert outcomes == {True, False}  # both sides of the rule were exercised


def test_nan_resamples_are_left_out_and_counted() -> None:
    """Mean score of the positive rows: NaN on a resample without the one positive study."""
    y = np.array([0, 0, 1, 0, 0])
    x = np.array([0.1, 0.2, 0.9, 0.3, 0.4])

    def mean_positive(y: np.ndarray, x: np.ndarray) -> float:
        return float(x[y == 1].mean()) if (y == 1).any() else float("nan")

    iv = bootstrap(mean_positive, y, x, n_resamples=300, seed=2)
    has_positive = (resample_indices(5, 300, seed=2) == 2).any(axis=1)
    assert iv.n_valid == int(has_positive.sum()) < 300
    assert (iv.value, iv.low, iv.high) == (0.9, 0.9, 0.9)
    c = paired_difference(mean_positive, (y, x), (y, x / 3), n_resamples=300, seed=2)
    assert c.diff.n_valid == iv.n_valid and c.diff.value == pytest.approx(0.6)


def test_fd_interval_is_centred_because_resampling_raises_fd() -> None:
    """Repeated studies shrink the covariance: resampled FD sits above FD, so the plain
    percentile interval can miss the value; the centred one puts it at the median."""
    rng = np.random.default_rng(5)
    real = rng.normal(size=(80, 40))
    fake = 0.8 * real + 0.5 * rng.normal(size=(80, 40)) + 0.3
    plain = bootstrap(FrechetDistance(), real, fake, n_resamples=200, method="percentile")
    assert plain.low > plain.value  # the whole percentile interval lies above the value
    centred = bootstrap(FrechetDistance(), real, fake, n_resamples=200)
    assert centred.method == "centred" and centred.shift > 0
    assert centred.low < centred.value < centred.high
    assert centred.high - centred.low == pytest.approx(plain.high - plain.low)
    kd = bootstrap(KernelDistance(), real, fake, n_resamples=200)
    assert kd.method == "centred" and kd.low < kd.value < kd.high


def test_centred_interval_covers_the_expected_fd_where_percentile_does_not() -> None:
    """A small simulation: 25 test sets of 60 studies from one Gaussian pair. The expected FD
    at that size comes from 200 further test sets; count how often each interval holds it."""
    rng = np.random.default_rng(0)

    def draw() -> tuple[np.ndarray, np.ndarray]:
        real = rng.normal(size=(60, 12))
        return real, 0.8 * real + 0.6 * rng.normal(size=(60, 12)) + 0.2

    one = np.arange(60)[None]
    expected = np.mean([FrechetDistance().on_indices(one, *draw())[0] for _ in range(200)])
    hits = {"percentile": 0, "centred": 0}
    for _ in range(25):
        real, fake = draw()
        for method in hits:
            iv = bootstrap(FrechetDistance(), real, fake, n_resamples=200, method=method)
            hits[method] += iv.low <= expected <= iv.high
    assert hits["centred"] >= 22 and hits["percentile"] <= 10, hits


def test_pandas_frames_resample_like_their_binarised_arrays() -> None:
    """The generic path takes DataFrames row-wise: chexbert_f1 on label frames gives the same
    interval and permutation p as the fast F1 on the binarised matrices."""
    rng = np.random.default_rng(6)
    frames = [
        pd.DataFrame(rng.choice([1.0, 0.0, -1.0, np.nan], size=(30, len(LABELS))), columns=LABELS)
        for _ in range(3)
    ]
    ref, gen_a, gen_b = frames
    y = [binarize(f, "negative") for f in frames]

    def micro(r: pd.DataFrame, g: pd.DataFrame) -> float:
        return chexbert_f1(r, g)["micro14_uneg"]

    slow = bootstrap(micro, ref, gen_a, n_resamples=20, seed=1)
    fast = bootstrap(F1("micro"), y[0], y[1], n_resamples=20, seed=1)
    assert slow.value == fast.value
    assert (slow.low, slow.high) == pytest.approx((fast.low, fast.high), rel=1e-12)
    p_slow = permutation_test(micro, (ref, gen_a), (ref, gen_b), n_resamples=20, seed=2)
    assert p_slow == permutation_test(F1("micro"), (y[0], y[1]), (y[0], y[2]), 20, seed=2)


def test_permutation_fast_paths_match_the_plain_metrics() -> None:
    """The permutation test stacks both systems' rows (2n): the fast FD and KD handle that."""
    rng = np.random.default_rng(7)
    real = rng.normal(size=(20, 3))
    fake_a, fake_b = real + 0.3 * rng.normal(size=(2, 20, 3))
    for fast, plain in (
        (FrechetDistance(), frechet_distance),
        (KernelDistance(), lambda r, f: kernel_distance(r, f)[0]),
    ):
        p_fast = permutation_test(fast, (real, fake_a), (real, fake_b), n_resamples=15, seed=4)
        assert p_fast == permutation_test(plain, (real, fake_a), (real, fake_b), 15, seed=4)


def test_interval_format_and_dicts() -> None:
    iv = Interval(0.697, 0.661, 0.730, 0.95, 1000, 1000)
    assert iv.format(digits=1, scale=100) == "69.7 [66.1, 73.0]"
    assert str(iv) == "0.697 [0.661, 0.730]"
    assert (
        Interval(-0.02, -0.05, 0.01, 0.95, 10, 10).format(2, signed=True) == "-0.02 [-0.05, 0.01]"
    )
    assert Interval(np.nan, np.nan, np.nan, 0.95, 10, 0).format() == "n/a [n/a, n/a]"
    assert iv.as_dict() == {
        "value": 0.697,
        "low": 0.661,
        "high": 0.730,
        "level": 0.95,
        "n_resamples": 1000,
        "n_valid": 1000,
        "method": "percentile",
        "shift": 0.0,
    }
    c = Comparison(iv, iv, Interval(0.0, -0.1, 0.1, 0.95, 1000, 990), 1.0, "paired bootstrap", 50)
    flat = c.as_dict()
    assert flat["a_value"] == 0.697 and flat["diff_low"] == -0.1 and flat["n_valid"] == 990
    assert {"p_value", "test", "n_studies", "b_high", "level", "method"} <= set(flat)


def test_verdict_wording_and_direction() -> None:
    iv = Interval(0.5, 0.4, 0.6, 0.95, 1000, 1000)

    def comp(lo: float, hi: float, value: float = 0.02) -> Comparison:
        diff = Interval(value, lo, hi, 0.95, 1000, 1000)
        return Comparison(iv, iv, diff, 0.004, "paired bootstrap", 200)

    assert verdict("UniX", "LLM-CXR", comp(0.01, 0.03), True, digits=1, scale=100) == (
        "UniX beats LLM-CXR: difference +2.0 [1.0, 3.0] (95% paired bootstrap interval, "
        "200 studies, 1000 resamples), p = 0.004 (paired bootstrap)"
    )
    # Lower is better (FD): a negative difference beats.
    assert verdict("A", "B", comp(-0.03, -0.01, -0.02), False).startswith("A beats B")
    assert verdict("A", "B", comp(-0.03, -0.01, -0.02), True).startswith("A is worse than B")
    assert verdict("A", "B", comp(0.0, 0.03), True).startswith("no detectable difference")
    assert verdict("A", "B", comp(np.nan, np.nan, np.nan), True).startswith("cannot compare")


def test_interval_from_rejects_an_unknown_method() -> None:
    with pytest.raises(ValueError, match="method must be one of"):
        interval_from(1.0, np.ones(3), 0.95, "bca")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"level": 0.0}, "level must lie strictly between 0 and 1"),
        ({"level": 1.0}, "level must lie strictly between 0 and 1"),
        ({"level": 95}, "level must lie strictly between 0 and 1"),
        ({"n_resamples": 0}, "n_resamples must be >= 1"),
        ({"n_resamples": 2.5}, "n_resamples must be an int"),
        ({"seed": -1}, "seed must be a non-negative int"),
        ({"seed": None}, "seed must be a non-negative int"),
        ({"method": "bca"}, "method must be one of"),
    ],
)
def test_bad_options_raise(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        bootstrap(Mean(), np.ones(4), **kwargs)


def test_bad_arrays_raise() -> None:
    with pytest.raises(ValueError, match="same number of rows"):
        bootstrap(F1("micro"), np.ones((4, 2), int), np.ones((5, 2), int))
    with pytest.raises(ValueError, match="empty arrays"):
        bootstrap(Mean(), np.array([]))
    with pytest.raises(ValueError, match="no arrays"):
        bootstrap(Mean())
    with pytest.raises(ValueError, match="must return one number"):
        bootstrap(lambda x: x, np.ones(3))
    with pytest.raises(ValueError, match="system A has 4 studies, system B 5"):
        paired_difference(Mean(), np.ones(4), np.ones(5))
    with pytest.raises(ValueError, match="system A has 2 arrays, system B 1"):
        paired_difference(Mean(), (np.ones(4), np.ones(4)), np.ones(4))
    with pytest.raises(ValueError, match="array 1 has shape"):
        paired_difference(
            F1("micro"), (np.ones((3, 2)), np.ones((3, 2))), (np.ones((3, 2)), np.ones((3, 1)))
        )
    with pytest.raises(ValueError, match="test must be"):
        paired_difference(Mean(), np.ones(4), np.ones(4), test="t-test")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n must be a positive int"):
        resample_indices(0, 10, seed=0)
