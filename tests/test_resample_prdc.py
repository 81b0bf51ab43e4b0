"""PRDC over resamples from distances computed once equals the prdc package on each resample."""

from __future__ import annotations

import numpy as np
import pytest

from unixlib.eval.generation import prdc
from unixlib.eval.resample_prdc import MEASURES, PRDC, prdc_on_indices
from unixlib.eval.uncertainty import bootstrap, permutation_test, resample_indices

REAL_1D = np.array([[0.0], [1.0], [2.0], [3.0]])
FAKE_1D = np.array([[0.4], [5.0], [2.2], [10.0]])


def test_prdc_hand_computed_with_a_repeated_study() -> None:
    """k = 1 on a line. Full set: real radii 1 (nearest real); fake radii 1.8, 2.8, 1.8, 5.
    Resample [0, 0, 1, 2]: real 0 twice is its own neighbour at distance 0 (radius 0), so
    its ball holds nothing; real 1, 2 keep radius 1; fake 0.4 twice: radius 0."""
    full = prdc_on_indices(np.arange(4)[None], REAL_1D, FAKE_1D, k=1)
    # precision: 0.4 and 2.2 lie in real balls; recall: every real lies in a fake ball;
    # density: 0.4 in balls of 0 and 1, 2.2 in balls of 2 and 3 -> 4 / (1 * 4).
    expected = {"precision": 0.5, "recall": 1.0, "density": 1.0, "coverage": 1.0}
    assert {m: float(v[0]) for m, v in full.items()} == expected
    res = prdc_on_indices(np.array([[0, 0, 1, 2]]), REAL_1D, FAKE_1D, k=1)
    # precision: 0.4 (x2) in ball of 1, 2.2 in ball of 2 -> 3/4; recall: only 1 and 2 lie
    # in the ball of 2.2 (radius 1.8) -> 2/4; density: 0.4 x2 in one ball, 2.2 in one -> 3/4;
    # coverage: the balls of 1 and 2 hold a fake, those of 0 (radius 0) do not -> 2/4.
    expected = {"precision": 0.75, "recall": 0.5, "density": 0.75, "coverage": 0.5}
    assert {m: float(v[0]) for m, v in res.items()} == expected
    assert prdc(REAL_1D[[0, 0, 1, 2]], FAKE_1D[[0, 0, 1, 2]], k=1) == expected


def _features(seed: int, n: int, f: int, spread: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    real = rng.normal(size=(n, f))
    return real, 0.7 * real + spread * rng.normal(size=(n, f)) + 0.4


@pytest.mark.parametrize(("spread", "k"), [(0.5, 5), (1.5, 5), (0.3, 3)])
def test_prdc_on_indices_equals_the_package_on_every_resample(spread: float, k: int) -> None:
    """Fakes near the reals (narrow balls) and spread out (wide fake balls hold many reals)."""
    real, fake = _features(int(spread * 10) + k, 48, 6, spread)
    idx = resample_indices(48, 12, seed=k)
    fast = prdc_on_indices(idx, real, fake, k)
    for r, rows in enumerate(idx):
        plain = prdc(real[rows], fake[rows], k)
        assert {m: float(fast[m][r]) for m in MEASURES} == plain, r
    values = prdc(real, fake, k)
    assert sum(0 < values[m] < 1 for m in MEASURES) >= 2  # not a case where all are 0 or 1
    for m in MEASURES:
        assert PRDC(m, k)(real, fake) == values[m]


def test_prdc_statistic_in_bootstrap_is_centred() -> None:
    real, fake = _features(3, 40, 4, 0.8)
    interval = bootstrap(PRDC("density"), real, fake, n_resamples=30, seed=2)
    assert interval.method == "centred" and interval.value == prdc(real, fake)["density"]
    # Repeated studies shrink real balls, so resampled density sits below the value.
    assert interval.shift < 0


def test_prdc_in_a_permutation_test_over_stacked_systems() -> None:
    """The permutation test stacks two systems' rows (2n) and indexes into them."""
    real, fake = _features(6, 30, 3, 0.5)
    far = fake + 3.0  # a generator whose images all lie off the real manifold
    p = permutation_test(PRDC("precision"), (real, fake), (real, far), n_resamples=40, seed=0)
    assert p == pytest.approx(1 / 41)
    stacked = np.concatenate([np.arange(30), 30 + np.arange(30)]).reshape(2, 30)
    both = PRDC("precision").on_indices(stacked, np.vstack([real, real]), np.vstack([fake, far]))
    np.testing.assert_array_equal(
        both, [prdc(real, fake)["precision"], prdc(real, far)["precision"]]
    )


def test_prdc_keeps_recent_results_and_returns_copies() -> None:
    real, fake = _features(4, 30, 3, 0.5)
    idx = resample_indices(30, 5, seed=0)
    first = prdc_on_indices(idx, real, fake)
    first["precision"][:] = -1.0  # the caller's copy: must not reach the kept result
    again = prdc_on_indices(idx, real, fake)
    assert (again["precision"] >= 0).all()
    np.testing.assert_array_equal(PRDC("recall").on_indices(idx, real, fake), again["recall"])
    other = prdc_on_indices(idx, real, fake + 0.5)  # other inputs are computed anew
    assert not np.array_equal(other["density"], again["density"])


def test_prdc_rejects_bad_input() -> None:
    real, fake = _features(5, 10, 2, 0.5)
    with pytest.raises(ValueError, match="measure must be one of"):
        PRDC("f1")
    with pytest.raises(ValueError, match="k must be"):
        PRDC("recall", k=0)
    with pytest.raises(ValueError, match="n >= k \\+ 2 = 7"):
        prdc_on_indices(np.zeros((2, 6), dtype=int), real, fake)
    with pytest.raises(ValueError, match="paired"):
        prdc_on_indices(resample_indices(10, 2, 0), real, fake[:9])
