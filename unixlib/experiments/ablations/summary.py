"""From per-seed measurements to the ablation tables and plain-language verdicts.

A study's table has one row per arm: the mean over seeds of every measure and, with two or more
seeds, its spread (sample standard deviation), followed by baseline rows (same test rows, same
run) and, for Table 5, the paper's rows quoted. A verdict compares an arm with the study's
reference arm in the direction the paper reports or argues, and says whether the difference
exceeds the seed spread (|mean difference| > sd_a + sd_b; with one seed the spread is unknown).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from unixlib.viz.tables import FROM_PAPER, SOURCE_COL, THIS_RUN

MEASURES = ("micro_f1", "macro_f1", "fd", "kd", "alignment", "faithfulness")
COST = ("parameters", "parameters_trained", "step_seconds")
HIGHER_IS_BETTER = {
    "micro_f1": True,
    "macro_f1": True,
    "fd": False,
    "kd": False,
    "alignment": True,
    "faithfulness": True,
}


def aggregate(measured: pd.DataFrame, study: str) -> pd.DataFrame:
    """Mean (and ``<measure>_sd`` with >= 2 seeds) of each arm of ``study``, in table order;
    ``seeds`` counts the seeds."""
    rows = measured[measured["study"] == study]
    order = list(dict.fromkeys(rows["label"]))
    cols = [c for c in (*MEASURES, *COST) if c in rows and rows[c].notna().any()]
    grouped = rows.groupby("label", sort=False)
    out = grouped[cols].mean()
    n = grouped["seed"].nunique()
    if int(n.min()) >= 2:
        sd = grouped[[c for c in cols if c in MEASURES]].std(ddof=1)
        out = out.join(sd.add_suffix("_sd"))
    out.insert(0, "seeds", n)
    return out.loc[order].reset_index()


def study_table(
    measured: pd.DataFrame, study: str, baselines: pd.DataFrame, paper: dict[str, dict] | None
) -> pd.DataFrame:
    """The study's table: this run's arms, the baselines, then the paper's rows (when quoted).
    F1 in %, as the paper prints it."""
    table = aggregate(measured, study).assign(**{SOURCE_COL: THIS_RUN})
    extra = [baselines.assign(**{SOURCE_COL: "baseline (this run)"})]
    if paper:
        quoted = pd.DataFrame([{"label": k, **v} for k, v in paper.items()])
        f1 = [c for c in ("micro_f1", "macro_f1") if c in quoted]
        quoted[f1] = quoted[f1] / 100  # quoted in %, like ours until the scaling below
        extra.append(quoted.assign(**{SOURCE_COL: FROM_PAPER}))
    table = pd.concat([table, *extra], ignore_index=True)
    for c in [c for c in table if c.startswith(("micro_f1", "macro_f1"))]:
        table[c] = table[c] * 100
    keep = [c for c in table if table[c].notna().any()]
    return table[keep]


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


def verdicts(measured: pd.DataFrame, claims_: list[Claim]) -> pd.DataFrame:
    """One row per claim: the arm's and reference's means, the difference, whether this run
    agrees in direction and whether the difference exceeds the seed spread."""
    rows = []
    for c in claims_:
        sub = measured[measured["study"] == c.study]
        a = sub.loc[sub["label"] == c.arm, c.measure].dropna()
        r = sub.loc[sub["label"] == c.reference, c.measure].dropna()
        if a.empty or r.empty:
            continue
        diff = float(a.mean() - r.mean())
        arm_better = diff > 0 if HIGHER_IS_BETTER[c.measure] else diff < 0
        seeds = min(len(a), len(r))
        if seeds >= 2:
            spread = float(a.std(ddof=1) + r.std(ddof=1))
            exceeds = "yes" if abs(diff) > spread else "no"
        else:
            spread, exceeds = float("nan"), "unknown (1 seed)"
        agrees = "tie" if diff == 0 else ("agrees" if arm_better == c.better else "disagrees")
        rows.append(
            {
                "study": c.study,
                "arm": c.arm,
                "vs": c.reference,
                "measure": c.measure,
                "expected": f"{'better' if c.better else 'worse'} ({c.source})",
                "arm_mean": float(a.mean()),
                "reference_mean": float(r.mean()),
                "difference": diff,
                "spread": spread,
                "direction": agrees,
                "exceeds_spread": exceeds,
                "seeds": seeds,
            }
        )
    return pd.DataFrame(rows)


def verdict_sentences(table: pd.DataFrame) -> list[str]:
    """One sentence per verdict row, for the notebook and the summary file."""
    out = []
    for r in table.itertuples(index=False):
        size = (
            "beyond the seed spread"
            if r.exceeds_spread == "yes"
            else "within the seed spread"
            if r.exceeds_spread == "no"
            else "1 seed: spread unknown"
        )
        worse_or_better = "worse" if (r.difference > 0) != HIGHER_IS_BETTER[r.measure] else "better"
        if r.difference == 0:
            worse_or_better = "equal"
        out.append(
            f"[{r.study}] {r.arm} vs {r.vs}: {r.measure} {r.arm_mean:.4g} vs "
            f"{r.reference_mean:.4g} ({worse_or_better}; expected {r.expected}) -> "
            f"{r.direction} with the paper, {size}."
        )
    return out
