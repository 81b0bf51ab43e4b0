"""Resampled AUROC equals sklearn on the resampled rows; the faithfulness fraction equals
image_eval.mean_fraction of generation.faithfulness, on the data and on each resample."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from unixlib.data.schema import LABELS
from unixlib.eval.image_eval import FAITHFULNESS_CLASSES, faithfulness_table, mean_fraction
from unixlib.eval.resample_auroc import (
    Auroc,
    FaithfulnessFraction,
    auroc_on_indices,
    per_class_auroc,
)
from unixlib.eval.uncertainty import bootstrap, paired_difference, resample_indices


def _sklearn(scores: np.ndarray, labels: np.ndarray) -> float:
    y = labels.astype(bool)
    return roc_auc_score(y, scores) if y.any() and not y.all() else np.nan


def test_auroc_hand_computed_with_ties_and_a_missing_class() -> None:
    scores = np.array([0.1, 0.4, 0.4, 0.8])
    positive = np.array([False, True, False, True])
    idx = np.array([[0, 1, 2, 3], [1, 1, 0, 3], [2, 2, 1, 0], [1, 3, 1, 3]])
    # [0..3]: pairs (0.4 > 0.1), (0.4 = 0.4: half), (0.8 > both) -> 3.5 / 4;
    # [1, 1, 0, 3]: every positive above the one negative -> 1;
    # [2, 2, 1, 0]: positive 0.4 ties the two copies of negative 0.4, beats 0.1 -> 2 / 3;
    # [1, 3, 1, 3]: no negative -> NaN.
    np.testing.assert_allclose(
        auroc_on_indices(idx, scores, positive), [0.875, 1.0, 2 / 3, np.nan], rtol=1e-15
    )
    assert Auroc()(scores, positive.astype(int)) == 0.875 == roc_auc_score(positive, scores)


@pytest.mark.parametrize("decimals", [1, 2, 8])  # coarse scores: many ties
def test_auroc_resamples_equal_sklearn_on_every_resample(decimals: int) -> None:
    rng = np.random.default_rng(decimals)
    y = np.zeros(30, dtype=int)
    y[[3, 11, 17]] = 1  # 3 positives in 30: about 1 resample in 25 draws none
    scores = np.round(rng.random(30) * 0.7 + 0.3 * y, decimals)
    idx = resample_indices(30, 300, seed=1)
    fast = Auroc().on_indices(idx, scores, y)
    plain = np.array([_sklearn(scores[i], y[i]) for i in idx])
    assert np.isnan(plain).any()  # some resamples have no positive: NaN on both paths
    np.testing.assert_allclose(fast, plain, rtol=1e-12, atol=0)


def test_per_class_auroc_and_column_statistic() -> None:
    rng = np.random.default_rng(7)
    y = (rng.random((40, 3)) < [0.1, 0.4, 0.6]).astype(int)
    scores = rng.random((40, 3)) + 0.5 * y
    idx = resample_indices(40, 50, seed=2)
    fast = per_class_auroc(idx, scores, y)
    assert fast.shape == (50, 3)
    for c in range(3):
        plain = [_sklearn(scores[i, c], y[i, c]) for i in idx]
        np.testing.assert_allclose(fast[:, c], plain, rtol=1e-12)
        np.testing.assert_array_equal(Auroc(column=c).on_indices(idx, scores, y), fast[:, c])
        assert Auroc(column=c)(scores, y) == roc_auc_score(y[:, c], scores[:, c])
    interval = bootstrap(Auroc(column=0), scores, y, n_resamples=200, seed=0)
    assert interval.n_valid < 200  # 4 positives: some resamples lack the class, left out


def _faithfulness_data(seed: int, n: int, real_signal: float) -> tuple[np.ndarray, ...]:
    """Label values 1/0/-1/NaN; a class never positive; probabilities carrying the labels."""
    rng = np.random.default_rng(seed)
    labels = rng.choice([1.0, 0.0, -1.0, np.nan], size=(n, 14), p=[0.2, 0.3, 0.05, 0.45])
    labels[:, LABELS.index("fracture")] = 0.0  # no positive: NaN AUROC, left out of the mean
    pos = labels == 1
    generated = np.clip(0.25 * pos + rng.random((n, 14)) * 0.75, 0, 1)
    real = np.clip(real_signal * pos + rng.random((n, 14)) * 0.6, 0, 1)
    return generated, real, labels


@pytest.mark.parametrize("classes", [LABELS, FAITHFULNESS_CLASSES])
def test_faithfulness_fraction_equals_mean_fraction(classes: tuple[str, ...]) -> None:
    generated, real, labels = _faithfulness_data(1, 60, 0.5)
    frame = pd.DataFrame(labels, columns=list(LABELS))
    probs = {"model": generated, "real (test)": real, "shuffled reports": generated[::-1]}
    expected = mean_fraction(faithfulness_table(probs, frame, "model", classes=classes), classes)
    stat = FaithfulnessFraction(classes)
    assert stat(generated, real, labels) == expected == stat(generated, real, frame)
    idx = resample_indices(60, 25, seed=4)
    fast = stat.on_indices(idx, generated, real, labels)
    plain = [stat(generated[i], real[i], labels[i]) for i in idx]
    np.testing.assert_allclose(fast, plain, rtol=1e-12)


def test_faithfulness_fraction_in_a_paired_comparison() -> None:
    """Model vs shuffled-report images on the same studies: same real images and labels."""
    generated, real, labels = _faithfulness_data(3, 80, 0.5)
    shuffled = generated[np.roll(np.arange(80), 1)]  # images of the neighbouring report
    stat = FaithfulnessFraction()
    comparison = paired_difference(
        stat, (generated, real, labels), (shuffled, real, labels), n_resamples=200, seed=0
    )
    assert comparison.diff.value == stat(generated, real, labels) - stat(shuffled, real, labels)
    assert comparison.diff.low > 0 and comparison.p_value < 0.05


def test_faithfulness_fraction_is_nan_when_real_images_are_below_chance() -> None:
    generated, real, labels = _faithfulness_data(2, 50, -0.5)  # real AUROC < 0.5
    stat = FaithfulnessFraction()
    assert np.isnan(stat(generated, real, labels))
    assert np.isnan(stat.on_indices(resample_indices(50, 5, seed=0), generated, real, labels)).all()


def test_auroc_and_faithfulness_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="binary"):
        Auroc()(np.array([0.1, 0.2]), np.array([0, 2]))
    with pytest.raises(ValueError, match="NaN or inf"):
        Auroc()(np.array([0.1, np.nan]), np.array([0, 1]))
    with pytest.raises(ValueError, match="column"):
        Auroc()(np.zeros((3, 2)), np.zeros((3, 2), dtype=int))
    with pytest.raises(ValueError, match="LABELS names"):
        FaithfulnessFraction(["cardiomegaly", "dragons"])
    with pytest.raises(ValueError, match=r"labels must be \(n, 14\)"):
        FaithfulnessFraction()(np.zeros((3, 14)), np.zeros((3, 14)), np.zeros((3, 5)))
