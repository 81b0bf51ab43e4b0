"""From per-study measurements to the ablation tables and plain-language verdicts.

A study's table has one row per arm: each measure's value (the mean over training seeds) with
its 95% bootstrap interval over test studies, and with two or more seeds the seeds' standard
deviation beside it; then baseline rows (same test studies, same run) and, for Table 5, the
paper's rows quoted as a separate block. A verdict compares an arm with the study's reference
arm on the same studies (paired bootstrap, :mod:`unixlib.experiments.ablations.stats`): it
"agrees with the paper" only when the interval of the difference excludes zero in the
direction the paper reports or argues, "contradicts" it when it excludes zero the other way,
and otherwise finds no detectable difference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from unixlib.eval.uncertainty import Resampling
from unixlib.experiments.ablations.measure import StudyData
from unixlib.experiments.ablations.stats import (
    MEASURES,
    Resamples,
    arm_comparison,
    arm_interval,
)
from unixlib.viz.tables import FROM_PAPER, SOURCE_COL, THIS_RUN

COST = ("parameters", "parameters_trained", "step_seconds")
HIGHER_IS_BETTER = {k: m.higher_is_better for k, m in MEASURES.items()}


def _arrays(measurer, data: dict, run: str, seeds: list[int], key: str) -> list[tuple] | None:
    per_seed = [MEASURES[key].arrays(measurer, data[(run, s)]) for s in seeds]
    return None if any(a is None for a in per_seed) else per_seed


def arm_row(
    measurer,
    data: dict,
    run: str,
    seeds: list[int],
    r: Resampling,
    measures: tuple[str, ...] | None = None,
    cache: Resamples | None = None,
) -> dict:
    """Every measure of one arm (``measures``: only those, in ``MEASURES`` order): ``X,
    X_low, X_high`` (and ``X_sd`` over two or more seeds). ``cache``: bootstraps shared with
    other rows and verdicts (:class:`~unixlib.experiments.ablations.stats.Resamples`)."""
    row: dict[str, float] = {}
    for key, m in MEASURES.items():
        per_seed = _arrays(measurer, data, run, seeds, key)
        if per_seed is None or (measures is not None and key not in measures):
            continue
        iv = arm_interval(m, per_seed, r, cache)
        row.update({key: iv.value * m.scale, f"{key}_low": iv.low * m.scale})
        row[f"{key}_high"] = iv.high * m.scale
        if len(seeds) >= 2:
            row[f"{key}_sd"] = float(np.std([m.make()(*a) for a in per_seed], ddof=1)) * m.scale
    return row


def study_table(
    measurer,
    data: dict,
    arms: list[tuple[str, str]],
    seeds: list[int],
    baselines: dict[str, StudyData],
    cost: pd.DataFrame,
    r: Resampling,
    measures: tuple[str, ...] | None = None,
    cache: Resamples | None = None,
) -> pd.DataFrame:
    """This run's arms (``arms``: (label, run), table order) with intervals and costs, then the
    baselines (same studies). F1 in %, as the paper prints it. ``measures``: the columns to
    compute (default every measure the data allows); ``cache``: as :func:`arm_row`."""
    rows = []
    for label, run in arms:
        c = cost[cost["run"] == run][[k for k in COST if k in cost]].mean().to_dict()
        row = arm_row(measurer, data, run, seeds, r, measures, cache)
        rows.append({"label": label, "seeds": len(seeds), **row})
        rows[-1].update(c)
        rows[-1][SOURCE_COL] = THIS_RUN
    base = {(name, 0): d for name, d in baselines.items()}
    for name in baselines:
        row = arm_row(measurer, base, name, [0], r, measures, cache)
        rows.append({"label": name, **row, SOURCE_COL: "baseline (this run)"})  # no seeds
    table = pd.DataFrame(rows)
    return table[[c for c in table if table[c].notna().any()]]


def quoted_rows(paper: dict[str, dict] | None) -> pd.DataFrame | None:
    """The paper's numbers for a study's arms (Table 5), F1 in % as quoted."""
    if not paper:
        return None
    quoted = pd.DataFrame([{"label": k, **v} for k, v in paper.items()])
    return quoted.assign(**{SOURCE_COL: FROM_PAPER})


@dataclass(frozen=True)
class Claim:
    """What the paper reports (Table 5) or argues: ``arm`` vs ``reference`` on ``measure``,
    ``better`` = the arm is expected better than the reference."""

    study: str
    arm: str
    reference: str
    measure: str
    better: bool
    source: str


def claims(labels: dict[str, list[str]]) -> list[Claim]:
    """The directions to check, from each study's arm labels (reference arm first)."""
    out = []
    t5 = labels.get("table5", [])
    for arm in t5[1:]:  # Table 5: every und+gen arm has lower F1 and higher FD than gen-only
        out += [
            Claim("table5", arm, t5[0], "micro_f1", False, "paper Table 5"),
            Claim("table5", arm, t5[0], "fd", False, "paper Table 5"),
        ]
    coupling = labels.get("coupling", [])
    for arm in coupling[1:]:  # the paper argues MoT beats shared weights and shallow coupling
        out += [
            Claim("coupling", arm, coupling[0], m, False, "paper's argument (no table)")
            for m in ("micro_f1", "fd", "faithfulness")
        ]
    for study, measures in (
        ("repa", ("fd", "faithfulness")),
        ("cleaning", ("micro_f1", "macro_f1")),
    ):
        arms = labels.get(study, [])
        for arm in arms[1:]:  # REPA and cleaning are the paper's choices: off/raw expected worse
            out += [
                Claim(study, arm, arms[0], m, False, "paper's choice (no table)") for m in measures
            ]
    return out


def verdicts(
    measurer,
    data: dict,
    runs: dict[str, str],
    seeds: list[int],
    claims_: list[Claim],
    r: Resampling,
    cache: Resamples | None = None,
) -> pd.DataFrame:
    """One row per claim (``runs``: arm label -> run name): the arm's and the reference's
    values, the paired difference with its interval and p-value, and whether this run agrees
    with the paper's direction (the interval excludes zero on the expected side). ``cache``:
    the bootstraps of the tables' rows, reused (the same draws of the same studies)."""
    rows = []
    for c in claims_:
        a = _arrays(measurer, data, runs[c.arm], seeds, c.measure)
        b = _arrays(measurer, data, runs[c.reference], seeds, c.measure)
        if a is None or b is None:
            continue
        m = MEASURES[c.measure]
        cmp = arm_comparison(m, a, b, r, cache)
        d = cmp.diff
        better = d.low > 0 if m.higher_is_better else d.high < 0
        worse = d.high < 0 if m.higher_is_better else d.low > 0
        if better or worse:
            found = "better" if better else "worse"
            direction = "agrees" if better == c.better else "contradicts"
        else:
            found, direction = "no detectable difference", "undecided"
        rows.append(
            {
                "study": c.study,
                "arm": c.arm,
                "vs": c.reference,
                "measure": c.measure,
                "expected": f"{'better' if c.better else 'worse'} ({c.source})",
                "arm_value": cmp.a.value * m.scale,
                "reference_value": cmp.b.value * m.scale,
                "difference": d.value * m.scale,
                "difference_low": d.low * m.scale,
                "difference_high": d.high * m.scale,
                "p_value": cmp.p_value,
                "found": found,
                "direction": direction,
                "seeds": len(seeds),
                "studies": cmp.n_studies,
            }
        )
    return pd.DataFrame(rows)


def verdict_sentences(table: pd.DataFrame) -> list[str]:
    """One sentence per verdict row, for the notebook and the summary file."""
    out = []
    for r in table.itertuples(index=False):
        said = {
            "agrees": "agrees with the paper",
            "contradicts": "contradicts the paper",
            "undecided": "no detectable difference (the interval contains 0)",
        }[r.direction]
        seeds = f"{r.seeds} seed{'s' if r.seeds > 1 else ''}"
        out.append(
            f"[{r.study}] {r.arm} vs {r.vs}, {r.measure}: {r.arm_value:.4g} vs "
            f"{r.reference_value:.4g}, difference {r.difference:+.4g} "
            f"[{r.difference_low:+.4g}, {r.difference_high:+.4g}], p = {r.p_value:.3g} "
            f"({r.studies} test studies, {seeds}; expected {r.expected}) -> {said}."
        )
    return out
