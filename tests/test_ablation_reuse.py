"""Notebook 06 does each piece of work once: bootstraps shared by tables and verdicts, the
same numbers to the digit with and without the sharing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from unixlib.eval.uncertainty import Resampling
from unixlib.experiments.ablations import summary
from unixlib.experiments.ablations.measure import StudyData
from unixlib.experiments.ablations.stats import MEASURES, Resamples, arm_comparison

R = Resampling(n_resamples=200, seed=3)
N = 40


class _References:
    """What the statistics read from the Measurer: reference labels, real features/probs."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.y_ref = (rng.random((N, 14)) < 0.3).astype(int)
        self.real_feats = rng.normal(size=(N, 8)).astype(np.float32)
        self.real_probs = rng.random((N, 14)).astype(np.float32)
        self.label_array = (rng.random((N, 14)) < 0.3).astype(float)


def _arm(rng: np.random.Generator, shift: float) -> StudyData:
    return StudyData(
        (rng.random((N, 14)) < 0.3).astype(int),
        rng.normal(shift, 1.0, size=(N, 8)).astype(np.float32),
        rng.random(N),
        rng.random((N, 14)),
    )


@pytest.fixture
def fixture():
    rng = np.random.default_rng(0)
    m = _References(rng)
    data = {(run, 0): _arm(rng, i / 2) for i, run in enumerate(("ref", "a", "b"))}
    base = {"baseline: start": _arm(rng, 0.1), "baseline: words": StudyData(m.y_ref.copy())}
    cost = pd.DataFrame([{"run": run, "seed": 0, "step_seconds": 0.5} for run in ("ref", "a")])
    return m, data, base, cost


def _everything(m, data, base, cost, cache):
    """Two studies' tables that share the reference arm and a baseline, then the verdicts."""
    one = summary.study_table(m, data, [("R", "ref"), ("A", "a")], [0], base, cost, R, None, cache)
    shown = ("micro_f1", "fd")
    two = summary.study_table(m, data, [("R", "ref"), ("B", "b")], [0], base, cost, R, shown, cache)
    claims = summary.claims({"coupling": ["R", "A", "B"]})
    runs = {"R": "ref", "A": "a", "B": "b"}
    return one, two, summary.verdicts(m, data, runs, [0], claims, R, cache)


def test_tables_and_verdicts_are_the_same_to_the_digit_with_the_shared_bootstraps(fixture):
    cached = _everything(*fixture, Resamples(R))
    fresh = _everything(*fixture, None)
    for a, b in zip(cached, fresh, strict=True):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    # only the measures asked for are computed, in the usual column order
    assert [c for c in cached[1] if c in MEASURES] == ["micro_f1", "fd"]


def test_each_arm_is_bootstrapped_once_per_measure(fixture):
    m, data, base, cost = fixture
    cache = Resamples(R)
    _everything(m, data, base, cost, cache)
    # table one: 3 image arms (ref, a, start) x 6 measures + the report baseline's 2 F1s;
    # table two adds arm b's micro_f1 and fd; the verdicts only b's faithfulness
    assert cache.computed == 3 * 6 + 2 + 2 + 1
    before = cache.computed
    _everything(m, data, base, cost, cache)
    assert cache.computed == before  # the second pass does no bootstrap at all


def test_other_arrays_are_a_miss_even_when_equal(fixture):
    m, data, _, _ = fixture
    cache = Resamples(R)
    fd = MEASURES["fd"]
    a = [fd.arrays(m, data[("a", 0)])]
    v1 = cache.values(fd, a)
    copy = StudyData(None, feats=data[("a", 0)].feats.copy())
    v2 = cache.values(fd, [fd.arrays(m, copy)])
    assert cache.computed == 2 and v1[0] == v2[0]
    assert np.array_equal(v1[1], v2[1])
    cache.values(MEASURES["kd"], a)  # another measure on the same arrays
    assert cache.computed == 3
    other = Resamples(Resampling(n_resamples=200, seed=4))  # other draws: its own cache
    assert not np.array_equal(other.values(fd, a)[1], v1[1])


def test_a_comparison_needs_the_same_studies(fixture):
    m, data, _, _ = fixture
    fd = MEASURES["fd"]
    short = StudyData(None, feats=data[("b", 0)].feats[:10])
    with pytest.raises(ValueError, match="same studies"):
        arm_comparison(fd, [fd.arrays(m, data[("a", 0)])], [(m.real_feats[:10], short.feats)], R)
