"""Each ablation measure as a statistic over test studies: arm values with their intervals,
and arm-vs-reference comparisons paired over the same studies.

An arm trained with several seeds is measured on the same test studies with each; its value is
the mean over seeds, and a bootstrap resample draws the studies once and averages the seeds'
statistics on them, so the interval covers the test sample (not the spread between training
seeds, which the tables show beside it when there are two or more). A comparison of two arms
resamples the same studies for both (paired): "beats" only when the interval of the
difference excludes zero (see :mod:`unixlib.eval.uncertainty`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from unixlib.eval.intervals import Comparison, Interval, bootstrap_p_value, interval_from
from unixlib.eval.resample_auroc import FaithfulnessFraction
from unixlib.eval.resample_stats import F1, FrechetDistance, KernelDistance, Mean
from unixlib.eval.uncertainty import Resampling, resample_indices, resampled_values
from unixlib.experiments.ablations.measure import StudyData


@dataclass(frozen=True)
class Measure:
    """One column of the ablation tables: its statistic, how to get its arrays from an arm's
    :class:`StudyData` and the shared references, its direction and display scale."""

    make: Callable[[], Callable[..., float]]
    arrays: Callable[[object, StudyData], tuple | None]  # (measurer, data) -> stat's arrays
    higher_is_better: bool
    scale: float = 1.0  # 100: F1 in %


def _reports(m: object, d: StudyData) -> tuple | None:
    """(reference labels, the arm's report labels); None for an image-only baseline."""
    return None if d.y_gen is None else (m.y_ref, d.y_gen)


MEASURES: dict[str, Measure] = {
    "micro_f1": Measure(lambda: F1("micro"), lambda m, d: _reports(m, d), True, 100),
    "macro_f1": Measure(lambda: F1("macro"), lambda m, d: _reports(m, d), True, 100),
    "fd": Measure(
        FrechetDistance,
        lambda m, d: None if d.feats is None else (m.real_feats, d.feats),
        False,
    ),
    "kd": Measure(
        KernelDistance,
        lambda m, d: None if d.feats is None else (m.real_feats, d.feats),
        False,
    ),
    "alignment": Measure(Mean, lambda m, d: None if d.align is None else (d.align,), True),
    "faithfulness": Measure(
        FaithfulnessFraction,  # over all 14 classes
        lambda m, d: None if d.probs is None else (d.probs, m.real_probs, m.label_array),
        True,
    ),
}


def _seed_values(stat, per_seed: Sequence[tuple], idx: np.ndarray) -> tuple[float, np.ndarray]:
    value = float(np.mean([stat(*a) for a in per_seed]))
    res = np.mean([resampled_values(stat, idx, *a) for a in per_seed], axis=0)
    return value, res


class Resamples:
    """Each arm's value and ``(R,)`` bootstrap values per measure, computed once.

    Every table cell and every verdict of notebook 06 draws the same resamples of the same test
    studies (``r``), so an arm's statistic on them is the same numbers wherever it appears (an
    arm in two studies' tables, a reference arm in several verdicts, the start model's baseline
    row in three tables). Keyed by the measure and the identity of the arrays it reads (kept
    alive here, so an id is never reused); other arrays, even equal ones, are computed anew.
    ``computed`` counts the bootstraps actually run.
    """

    def __init__(self, r: Resampling) -> None:
        self.r = r
        self.computed = 0
        self._memo: dict[tuple, tuple[float, np.ndarray, Sequence[tuple]]] = {}

    def values(self, measure: Measure, per_seed: Sequence[tuple]) -> tuple[float, np.ndarray]:
        """(mean over seeds of the statistic, mean over seeds of its resampled values)."""
        key = (measure, tuple(id(a) for arrays in per_seed for a in arrays))
        if key not in self._memo:
            idx = resample_indices(len(per_seed[0][0]), self.r.n_resamples, self.r.seed)
            value, res = _seed_values(measure.make(), per_seed, idx)
            self._memo[key] = (value, res, per_seed)
            self.computed += 1
        value, res, _ = self._memo[key]
        return value, res


def _method(measure: Measure) -> str:
    return getattr(measure.make(), "interval_method", "percentile")


def arm_interval(
    measure: Measure, per_seed: Sequence[tuple], r: Resampling, cache: Resamples | None = None
) -> Interval:
    """The arm's value (mean over seeds) with its interval over studies (``cache``: where
    resamples already computed on ``r``'s draws are kept)."""
    value, res = (cache or Resamples(r)).values(measure, per_seed)
    return interval_from(value, res, r.level, _method(measure))


def arm_comparison(
    measure: Measure,
    per_seed_a: Sequence[tuple],
    per_seed_b: Sequence[tuple],
    r: Resampling,
    cache: Resamples | None = None,
) -> Comparison:
    """Arm A vs arm B on the same studies (the same resamples for both): each one's interval,
    the difference's, and the paired bootstrap p-value."""
    cache = cache or Resamples(r)
    n = len(per_seed_a[0][0])
    if len(per_seed_b[0][0]) != n:
        raise ValueError(f"paired arms need the same studies, got {n} and {len(per_seed_b[0][0])}")
    value_a, res_a = cache.values(measure, per_seed_a)
    value_b, res_b = cache.values(measure, per_seed_b)
    method = _method(measure)
    both = np.isfinite(res_a) & np.isfinite(res_b)
    res_d = np.where(both, res_a - res_b, np.nan)
    diff = interval_from(value_a - value_b, res_d, r.level, method)
    p = bootstrap_p_value(res_d[both] - diff.shift)
    a = interval_from(value_a, res_a, r.level, method)
    b = interval_from(value_b, res_b, r.level, method)
    return Comparison(a, b, diff, p, "paired bootstrap", n)
