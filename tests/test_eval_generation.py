"""Generation metrics against independent NumPy/SciPy computations and hand-worked cases."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pandas as pd
import prdc as prdc_lib
import pytest
import scipy.linalg
import torch

from unixlib.data.schema import LABELS
from unixlib.eval.generation import (
    alignment_score,
    distribution_scores,
    faithfulness,
    faithfulness_summary,
    frechet_distance,
    kernel_distance,
    per_pathology_fd,
    prdc,
    sharded_scores,
    shuffled_indices,
)


def _gauss(n: int, f: int, shift: float = 0.0, seed: int = 0) -> np.ndarray:
    """``(n, f)`` samples (``seed``) of one correlated Gaussian per ``f``, mean ``shift``."""
    mix = np.eye(f) + 0.3 * np.random.default_rng(f).normal(size=(f, f))
    return np.random.default_rng(seed).normal(size=(n, f)) @ mix + shift


def _fd_scipy(a: np.ndarray, b: np.ndarray) -> float:
    """FD by the textbook formula, with SciPy's matrix square root."""
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(s1 + s2 - 2 * root))


def _mmd_numpy(x: np.ndarray, y: np.ndarray, degree: int = 3) -> float:
    """Unbiased MMD^2 with kernel (x.y / F + 1)^degree, written out term by term."""
    m, f = len(x), x.shape[1]
    kxx, kyy, kxy = ((u @ v.T / f + 1) ** degree for u, v in ((x, x), (y, y), (x, y)))
    within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(within - 2 * kxy.mean())


def _labels(columns: dict[str, list[float]], n: int) -> pd.DataFrame:
    """A label table with all 14 classes (NaN unless given)."""
    out = pd.DataFrame({c: np.full(n, np.nan) for c in LABELS})
    for c, v in columns.items():
        out[c] = np.asarray(v, dtype=np.float64)
    return out


# --- FD -----------------------------------------------------------------------------------


def test_fd_matches_scipy_formula() -> None:
    a, b = _gauss(300, 8, seed=1), _gauss(250, 8, shift=0.4, seed=2)
    assert frechet_distance(a, b) == pytest.approx(_fd_scipy(a, b), rel=1e-8)


def test_fd_hand_case_1d() -> None:
    # [-1, 0, 1] has sample mean 0 and sample variance 1, so these sets have exactly
    # means 2, -1 and standard deviations 3, 0.5: FD = (2 + 1)^2 + (3 - 0.5)^2.
    z = np.array([[-1.0], [0.0], [1.0]])
    assert frechet_distance(2 + 3 * z, -1 + 0.5 * z) == pytest.approx(9 + 6.25, rel=1e-10)


def test_fd_of_a_set_with_itself_is_zero() -> None:
    a = _gauss(100, 6)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)


# --- KD -----------------------------------------------------------------------------------


def test_kd_whole_set_matches_numpy_mmd() -> None:
    a, b = _gauss(60, 5, seed=3), _gauss(60, 5, shift=0.3, seed=4)
    mean, std = kernel_distance(a, b, subsets=1, subset_size=60)
    assert mean == pytest.approx(_mmd_numpy(a, b), rel=1e-10)
    assert std == 0.0


def test_kd_hand_case_linear_kernel() -> None:
    # degree 1, F = 1: k(x, y) = xy + 1. X = {0, 2}, Y = {1, 3}:
    # k(0,2) = 1, k(1,3) = 4 -> within terms 2/2 + 8/2 = 5; cross 1+1+3+7 = 12 -> 2*12/4 = 6.
    x, y = np.array([[0.0], [2.0]]), np.array([[1.0], [3.0]])
    assert kernel_distance(x, y, subsets=1, degree=1)[0] == pytest.approx(-1.0)


def test_kd_subsets_are_mean_of_numpy_mmd_on_subsets_and_seeded() -> None:
    a, b = _gauss(80, 4, seed=5), _gauss(70, 4, shift=0.5, seed=6)
    state = torch.random.get_rng_state()
    mean, std = kernel_distance(a, b, subsets=20, subset_size=30, seed=7)
    assert torch.equal(torch.random.get_rng_state(), state)  # global RNG left alone
    assert kernel_distance(a, b, subsets=20, subset_size=30, seed=7) == (mean, std)
    assert kernel_distance(a, b, subsets=20, subset_size=30, seed=8) != (mean, std)
    # Same estimator on any 30-row subsets: its mean is near the whole-set MMD and std > 0.
    assert std > 0
    assert abs(mean - _mmd_numpy(a[:70], b)) < 4 * std


def test_kd_same_distribution_is_zero_in_expectation() -> None:
    # Unbiased: over independent pairs of draws from one distribution the mean is ~0 (within
    # 3 standard errors), far below the KD of a shifted distribution.
    same = [
        kernel_distance(_gauss(100, 4, seed=s), _gauss(100, 4, seed=s + 1))[0]
        for s in range(0, 60, 2)
    ]
    shifted = kernel_distance(_gauss(100, 4, seed=0), _gauss(100, 4, shift=0.5, seed=1))[0]
    assert abs(np.mean(same)) < 3 * np.std(same) / np.sqrt(len(same)) < 0.2 * shifted


# --- PRDC, alignment ----------------------------------------------------------------------


def test_prdc_matches_package() -> None:
    a, b = _gauss(90, 6, seed=11), _gauss(70, 6, shift=0.3, seed=12)
    with contextlib.redirect_stdout(io.StringIO()):
        ref = prdc_lib.compute_prdc(real_features=a, fake_features=b, nearest_k=4)
    assert prdc(a, b, k=4) == pytest.approx({k: float(v) for k, v in ref.items()})


def test_prdc_identical_sets() -> None:
    a = _gauss(60, 5, seed=13)
    out = prdc(a, a)
    assert (out["precision"], out["recall"], out["coverage"]) == (1.0, 1.0, 1.0)
    assert out["density"] == pytest.approx(1.0, abs=0.05)


def test_alignment_hand_case() -> None:
    img = np.array([[1.0, 0.0], [1.0, 1.0]])
    txt = np.array([[2.0, 0.0], [0.0, 5.0]])  # cosines 1 and 1/sqrt(2); norms do not matter
    assert alignment_score(img, txt) == pytest.approx((1 + 2**-0.5) / 2)


def test_alignment_matched_beats_shuffled() -> None:
    rng = np.random.default_rng(14)
    img = rng.normal(size=(50, 16))
    txt = 3 * img + 0.5 * rng.normal(size=img.shape)
    matched, shuffled = (
        alignment_score(img, txt),
        alignment_score(img, txt[shuffled_indices(50, 0)]),
    )
    assert matched > 0.9 > 0.3 > abs(shuffled)


# --- per-pathology FD ---------------------------------------------------------------------


def test_per_pathology_fd_uses_exactly_the_positive_rows() -> None:
    real, fake = _gauss(8, 3, seed=15), _gauss(8, 3, shift=1.0, seed=16)
    labels = _labels(
        {"cardiomegaly": [1, 1, 0, -1, np.nan, 1, 0, 1], "edema": [0, 0, 1, -1, 0, 0, 0, 0]}, 8
    )
    out = per_pathology_fd(real, fake, labels)
    assert list(out.columns) == ["class", "n", "fd"]
    assert list(out["class"]) == list(LABELS)
    row = out.set_index("class")
    rows = [0, 1, 5, 7]
    assert row.loc["cardiomegaly", "n"] == 4
    assert row.loc["cardiomegaly", "fd"] == pytest.approx(frechet_distance(real[rows], fake[rows]))
    assert row.loc["edema", "n"] == 1 and np.isnan(row.loc["edema", "fd"])  # uncertain not counted
    assert row.loc["fracture", "n"] == 0 and np.isnan(row.loc["fracture", "fd"])


def test_per_pathology_fd_min_count_and_class_order() -> None:
    real, fake = _gauss(6, 2, seed=17), _gauss(6, 2, seed=18)
    labels = _labels({"edema": [1, 1, 1, 0, 0, 0]}, 6)
    out = per_pathology_fd(real, fake, labels, classes=["edema", "cardiomegaly"], min_count=4)
    assert list(out["class"]) == ["edema", "cardiomegaly"]
    assert list(out["n"]) == [3, 0] and out["fd"].isna().all()


# --- faithfulness -------------------------------------------------------------------------


def test_faithfulness_hand_auroc() -> None:
    scores = np.zeros((4, len(LABELS)))
    scores[:, LABELS.index("edema")] = [0.9, 0.8, 0.3, 0.1]
    # Positives score 0.9, 0.3; negatives (0 and uncertain) 0.8, 0.1: 3 of 4 pairs ordered.
    labels = _labels({"edema": [1, 0, 1, -1], "cardiomegaly": [0, 0, 0, 0]}, 4)
    out = faithfulness(scores, labels, ["edema", "cardiomegaly"]).set_index("class")
    assert out.loc["edema", "auroc"] == pytest.approx(0.75)
    assert (out.loc["edema", "n_pos"], out.loc["edema", "n_neg"]) == (2, 2)
    assert np.isnan(out.loc["cardiomegaly", "auroc"])  # no positive


def test_faithfulness_summary_fraction_of_the_way() -> None:
    def table(aurocs: list[float]) -> pd.DataFrame:
        return pd.DataFrame(
            {"class": ["a", "b", "c"], "n_pos": [5, 6, 7], "n_neg": [5, 4, 3], "auroc": aurocs}
        )

    out = faithfulness_summary(table([0.7, 0.8, 0.6]), table([0.9, 0.55, 0.8]), table([0.5] * 3))
    assert list(out.columns) == [
        "class",
        "n_pos",
        "auroc_generated",
        "auroc_real",
        "auroc_shuffled",
        "fraction_of_the_way",
    ]
    assert list(out["class"]) == ["a", "b", "c", "mean"]
    frac = out["fraction_of_the_way"].to_numpy()
    assert frac[0] == pytest.approx(0.5)  # (0.7 - 0.5) / (0.9 - 0.5)
    assert np.isnan(frac[1])  # real within min_margin 0.1 of chance: no yardstick
    assert frac[2] == pytest.approx(1 / 3)  # 0.1 / 0.3
    # the mean row: AUROCs averaged over a and c (b has no fraction), fraction of the means
    assert out["auroc_generated"].iloc[3] == pytest.approx(0.65)
    assert out["auroc_real"].iloc[3] == pytest.approx(0.85)
    assert frac[3] == pytest.approx(0.15 / 0.35)
    looser = faithfulness_summary(
        table([0.7, 0.8, 0.6]), table([0.9, 0.55, 0.8]), table([0.5] * 3), min_margin=0.01
    )
    assert looser["fraction_of_the_way"].iloc[1] == pytest.approx(6.0)  # 0.3 / 0.05


# --- shuffling, sharding, bad inputs ------------------------------------------------------


def test_shuffled_indices_is_a_seeded_derangement() -> None:
    for n in (2, 3, 10, 101):
        for seed in range(5):
            p = shuffled_indices(n, seed)
            assert sorted(p) == list(range(n)) and (p != np.arange(n)).all()
    assert np.array_equal(shuffled_indices(50, 3), shuffled_indices(50, 3))
    assert not np.array_equal(shuffled_indices(50, 3), shuffled_indices(50, 4))


def test_sharded_scores_is_mean_over_array_split_shards() -> None:
    real, fake = _gauss(50, 4, seed=19), _gauss(50, 4, shift=0.3, seed=20)
    out = sharded_scores(real, fake, n_shards=3, k=3, kd_subsets=5, seed=1)
    shards = zip(np.array_split(real, 3), np.array_split(fake, 3), strict=True)
    per = [distribution_scores(r, f, k=3, kd_subsets=5, seed=1) for r, f in shards]
    assert out == pytest.approx({k: np.mean([p[k] for p in per]) for k in per[0]})
    assert set(out) == {"fd", "kd", "kd_std", "precision", "recall", "density", "coverage"}


def test_bad_inputs_raise() -> None:
    a = _gauss(20, 4)
    with pytest.raises(ValueError, match="feature dims differ"):
        frechet_distance(a, _gauss(20, 5))
    with pytest.raises(ValueError, match=">= 2 rows"):
        frechet_distance(a, a[:1])
    with pytest.raises(ValueError, match="2-D"):
        kernel_distance(a[:, 0], a[:, 1])
    with pytest.raises(ValueError, match="subset_size"):
        kernel_distance(a, a[:10], subset_size=15)
    with pytest.raises(ValueError, match=">= 7 rows"):
        prdc(a, a[:6], k=5)  # k + 1 rows: the package itself would fail inside np.argpartition
    assert set(prdc(a, a[:7], k=5)) == {"precision", "recall", "density", "coverage"}
    with pytest.raises(ValueError, match="shard has 5 rows"):
        sharded_scores(a, a, n_shards=4)
    with pytest.raises(ValueError, match="paired by row"):
        sharded_scores(a, a[:10])
    with pytest.raises(ValueError, match="one shape"):
        alignment_score(a, a[:10])
    with pytest.raises(ValueError, match="rows differ"):
        per_pathology_fd(a, a, _labels({}, 5))
    with pytest.raises(ValueError, match="scores must be"):
        faithfulness(np.zeros((3, 13)), _labels({}, 3), LABELS)
    with pytest.raises(ValueError, match="n >= 2"):
        shuffled_indices(1, 0)


def test_kd_follows_chexgenbench_subset_size_min_n_m() -> None:
    """Issue 22.13: CheXGenBench (metrics/fid.py) draws KD subsets of size min(N, M); with as
    many generated as real images each subset is the whole set, so KD is the whole-set
    unbiased MMD^2 and its std over subsets is 0 (the value the paper's numbers used)."""
    rng = np.random.default_rng(5)
    real, fake = rng.normal(size=(30, 4)), rng.normal(0.3, 1.0, size=(30, 4))
    kd, std = kernel_distance(real, fake)
    assert kd == pytest.approx(_mmd_numpy(real, fake), rel=1e-10) and std == 0.0
