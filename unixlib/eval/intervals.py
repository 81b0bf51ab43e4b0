"""Result types of ``eval.uncertainty``: intervals, paired comparisons and their wording.

The method (why bootstrap over studies, why paired, what the p-value means) is explained in
``unixlib.eval.uncertainty``; this file turns resampled values into numbers and sentences.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

METHODS: tuple[str, ...] = ("percentile", "centred")


@dataclass(frozen=True)
class Interval:
    """A number with its bootstrap interval; ``low <= value <= high`` is typical, not promised.

    ``n_valid`` resamples of ``n_resamples`` were finite; ``shift`` is how far the interval was
    moved (``median(resamples) - value`` for ``method="centred"``, else 0).
    """

    value: float
    low: float
    high: float
    level: float
    n_resamples: int
    n_valid: int
    method: str = "percentile"
    shift: float = 0.0

    def format(self, digits: int = 3, scale: float = 1.0, signed: bool = False) -> str:
        """``"69.7 [66.1, 73.0]"`` (digits=1, scale=100 for fractions); NaN prints ``n/a``."""
        v = _number(self.value * scale, digits, signed)
        return f"{v} [{_number(self.low * scale, digits)}, {_number(self.high * scale, digits)}]"

    def __str__(self) -> str:
        return self.format()

    def excludes(self, x: float = 0.0) -> bool:
        """True when both bounds are finite and ``x`` lies outside ``[low, high]``."""
        return bool(np.isfinite([self.low, self.high]).all() and not self.low <= x <= self.high)

    def as_dict(self) -> dict[str, Any]:
        """All fields, for machine-readable outputs (tables keep value, low and high)."""
        return asdict(self)


@dataclass(frozen=True)
class Comparison:
    """System A vs system B on the same studies: each one's interval and the difference's.

    ``diff.value = a.value - b.value``; all three come from the same resampled indices.
    ``p_value`` is from ``test`` ("paired bootstrap" or "paired permutation").
    """

    a: Interval
    b: Interval
    diff: Interval
    p_value: float
    test: str
    n_studies: int

    def as_dict(self) -> dict[str, Any]:
        """Flat dict: ``a_value``, ``a_low``, ..., ``diff_high``, ``p_value``, ``test``, ..."""
        out: dict[str, Any] = {"p_value": self.p_value, "test": self.test}
        out["n_studies"] = self.n_studies
        for tag, iv in (("a", self.a), ("b", self.b), ("diff", self.diff)):
            out.update({f"{tag}_{k}": iv.as_dict()[k] for k in ("value", "low", "high")})
        shared = ("level", "n_resamples", "n_valid", "method", "shift")
        out.update({k: self.diff.as_dict()[k] for k in shared})
        return out


def verdict(
    name_a: str,
    name_b: str,
    comparison: Comparison,
    higher_is_better: bool,
    digits: int = 3,
    scale: float = 1.0,
) -> str:
    """One sentence: "A beats B", "A is worse than B" or "no detectable difference ...".

    "beats" only when the interval of ``A - B`` excludes 0 on the good side, "is worse than"
    when it excludes 0 on the other; always followed by the difference, interval and p.
    """
    d = comparison.diff
    if not np.isfinite([d.value, d.low, d.high]).all():
        head = f"cannot compare {name_a} and {name_b} (the statistic is undefined on these data)"
    elif d.excludes(0.0) and (d.low > 0) == higher_is_better:
        head = f"{name_a} beats {name_b}"
    elif d.excludes(0.0):
        head = f"{name_a} is worse than {name_b}"
    else:
        head = f"no detectable difference between {name_a} and {name_b}"
    p = "n/a" if not np.isfinite(comparison.p_value) else f"{comparison.p_value:.3g}"
    kind = "centred paired bootstrap" if d.method == "centred" else "paired bootstrap"
    return (
        f"{head}: difference {d.format(digits, scale, signed=True)} ({d.level:.0%} {kind} "
        f"interval, {comparison.n_studies} studies, {d.n_valid} resamples), "
        f"p = {p} ({comparison.test})"
    )


def interval_from(value: float, values: np.ndarray, level: float, method: str) -> Interval:
    """The interval of ``value`` from its resampled ``values`` ``(R,)`` (non-finite ones left out).

    ``method`` "percentile": the (1 - level) / 2 and (1 + level) / 2 quantiles (numpy's linear
    interpolation); "centred": those shifted by ``median(values) - value``.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    ok = values[np.isfinite(values)]
    low = high = shift = float("nan")
    if len(ok):
        low, high = (float(q) for q in np.quantile(ok, [(1 - level) / 2, (1 + level) / 2]))
        shift = float(np.median(ok) - value) if method == "centred" else 0.0
        low, high = low - shift, high - shift
    return Interval(value, low, high, level, len(values), len(ok), method, shift)


def bootstrap_p_value(d: np.ndarray) -> float:
    """Two-sided p of a difference from its finite resampled values ``d`` (already shifted
    for the centred method): the smallest alpha whose interval still contains 0."""
    if len(d) == 0:
        return float("nan")
    tail = min(np.sum(d <= 0), np.sum(d >= 0))
    return float(min(1.0, 2 * (1 + tail) / (1 + len(d))))


def _number(x: float, digits: int, signed: bool = False) -> str:
    if not np.isfinite(x):
        return "n/a"
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"
