"""The vectorised resample paths equal the project's plain metrics on every resample."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from unixlib.data.schema import LABELS
from unixlib.eval.generation import frechet_distance, kernel_distance
from unixlib.eval.resample_stats import (
    F1,
    FrechetDistance,
    KernelDistance,
    Mean,
    kd_subset_rows,
    row_counts,
)
from unixlib.eval.uncertainty import resample_indices
from unixlib.eval.understanding import _micro_macro, binarize, chexbert_f1


def _labels(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Binary (n, 14) references and noisy predictions; class 13 is never positive (0/0)."""
    ref = (rng.random((n, 14)) < np.linspace(0.02, 0.5, 14)).astype(int)
    pred = np.where(rng.random((n, 14)) < 0.2, 1 - ref, ref)
    ref[:, 13] = pred[:, 13] = 0
    return ref, pred


def _features(rng: np.random.Generator, n: int, f: int) -> tuple[np.ndarray, np.ndarray]:
    real = rng.normal(size=(n, f))
    return real, 0.8 * real + 0.5 * rng.normal(size=(n, f)) + 0.3


def test_row_counts_hand_computed() -> None:
    idx = np.array([[0, 0, 2], [1, 2, 2]])
    np.testing.assert_array_equal(row_counts(idx, 4), [[2, 0, 1, 0], [0, 1, 2, 0]])


@pytest.mark.parametrize("average", ["micro", "macro"])
def test_f1_on_indices_equals_understanding_f1_on_every_resample(average: str) -> None:
    rng = np.random.default_rng(3)
    ref, pred = _labels(rng, 50)
    idx = resample_indices(50, 200, seed=1)
    fast = F1(average).on_indices(idx, ref, pred)
    pick = 0 if average == "micro" else 1
    plain = [_micro_macro(ref[i], pred[i])[pick] for i in idx]
    np.testing.assert_allclose(fast, plain, rtol=1e-12, atol=0)
    assert F1(average)(ref, pred) == _micro_macro(ref, pred)[pick]


def test_f1_matches_chexbert_f1_on_resampled_label_frames() -> None:
    """Tie the fast path to the public DataFrame API: values 1/0/-1/NaN, uncertain as positive."""
    rng = np.random.default_rng(4)
    values = rng.choice([1.0, 0.0, -1.0, np.nan], size=(2, 40, len(LABELS)), p=[0.2, 0.3, 0.1, 0.4])
    ref, gen = (pd.DataFrame(v, columns=list(LABELS)) for v in values)
    y_ref, y_gen = binarize(ref, "positive"), binarize(gen, "positive")
    idx = resample_indices(40, 15, seed=2)
    fast = F1("macro").on_indices(idx, y_ref, y_gen)
    plain = [
        chexbert_f1(ref.iloc[i].reset_index(drop=True), gen.iloc[i].reset_index(drop=True))[
            "macro14_upos"
        ]
        for i in idx
    ]
    np.testing.assert_allclose(fast, plain, rtol=1e-12)


def test_f1_rejects_non_binary_and_bad_average() -> None:
    with pytest.raises(ValueError, match="binary"):
        F1("micro")(np.array([[1, 2]]), np.array([[1, 0]]))
    with pytest.raises(ValueError, match="label matrices"):
        F1("micro")(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="average"):
        F1("weighted")  # type: ignore[arg-type]


def test_mean_on_indices_and_bad_scores() -> None:
    x = np.array([0.0, 1.0, 3.0])
    np.testing.assert_allclose(Mean().on_indices(np.array([[0, 0, 2], [2, 2, 1]]), x), [1, 7 / 3])
    with pytest.raises(ValueError, match="finite per-row scores"):
        Mean()(np.array([0.0, np.nan]))


@pytest.mark.parametrize(("n", "f"), [(60, 8), (40, 64)])  # distinct rows > F (QR) and < F
def test_fd_on_indices_equals_frechet_distance_on_every_resample(n: int, f: int) -> None:
    real, fake = _features(np.random.default_rng(5), n, f)
    idx = resample_indices(n, 12, seed=3)
    fast = FrechetDistance().on_indices(idx, real, fake)
    plain = [frechet_distance(real[i], fake[i]) for i in idx]
    np.testing.assert_allclose(fast, plain, rtol=1e-7)
    identity = np.arange(n)[None]
    np.testing.assert_allclose(
        FrechetDistance().on_indices(identity, real, fake),
        [frechet_distance(real, fake)],
        rtol=1e-7,
    )


def test_kd_whole_set_equals_kernel_distance_on_every_resample() -> None:
    real, fake = _features(np.random.default_rng(6), 30, 5)
    idx = resample_indices(30, 20, seed=4)
    fast = KernelDistance().on_indices(idx, real, fake)
    plain = [kernel_distance(real[i], fake[i])[0] for i in idx]
    np.testing.assert_allclose(fast, plain, rtol=1e-10)
    assert KernelDistance()(real, fake) == kernel_distance(real, fake)[0]


def test_kd_subsets_equal_kernel_distance_on_each_subset() -> None:
    """Each resample's KD is the mean over its subsets of the exact MMD^2 on those rows."""
    real, fake = _features(np.random.default_rng(7), 25, 4)
    idx = resample_indices(25, 6, seed=5)
    stat = KernelDistance(subset_size=10, resample_subsets=3, seed=9)
    fast = stat.on_indices(idx, real, fake)
    sub_r, sub_f = kd_subset_rows(idx, 10, 3, np.random.default_rng(9))  # the same draws
    assert sub_r.shape == sub_f.shape == (6, 3, 10)
    for r in range(6):
        assert set(sub_r[r].ravel()) <= set(idx[r])  # subsets come from the resample's rows
        per_subset = [
            kernel_distance(real[a], fake[b])[0] for a, b in zip(sub_r[r], sub_f[r], strict=True)
        ]
        assert fast[r] == pytest.approx(np.mean(per_subset), rel=1e-10)
    assert stat(real, fake) == kernel_distance(real, fake, 100, 10, 3, 9)[0]


def test_kd_rejects_bad_subset_size_and_features() -> None:
    real, fake = _features(np.random.default_rng(8), 10, 3)
    with pytest.raises(ValueError, match="subset_size 11 not in"):
        KernelDistance(subset_size=11).on_indices(resample_indices(10, 2, 0), real, fake)
    with pytest.raises(ValueError, match="resample_subsets"):
        KernelDistance(resample_subsets=0)
    with pytest.raises(ValueError, match="NaN or inf"):
        FrechetDistance().on_indices(resample_indices(10, 2, 0), real, fake * np.nan)
    with pytest.raises(ValueError, match="paired"):
        FrechetDistance().on_indices(resample_indices(10, 2, 0), real, fake[:9])
