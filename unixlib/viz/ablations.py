"""Figures of the ablations (notebook 06): one per study, from the per-seed measurements.

Bars are means over seeds; each seed is a dot on its bar, so the spread is visible (one dot:
one seed, spread unknown). Dashed lines are the baselines of the same run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from unixlib.viz.common import save

TITLES = {
    "micro_f1": "micro-F1-14 (%)",
    "macro_f1": "macro-F1-14 (%)",
    "fd": "FD (lower better)",
    "kd": "KD (lower better)",
    "alignment": "alignment",
    "faithfulness": "finding faithfulness\n(0 chance, 1 real)",
    "step_seconds": "s / training step",
}
PERCENT = ("micro_f1", "macro_f1")
LINESTYLES = ("--", ":", "-.", (0, (5, 1)), (0, (1, 3)))
COLOURS = ("#d62728", "#ff7f0e", "#7f7f7f", "#9467bd", "#8c564b")
BASELINE_STYLE: dict[str, dict] = {}  # baseline label -> line style (one legend per figure)


def _styles(labels: Sequence[str]) -> None:
    BASELINE_STYLE.clear()
    for i, label in enumerate(labels):
        BASELINE_STYLE[label] = {
            "ls": LINESTYLES[i % 5],
            "color": COLOURS[i % 5],
            "label": label.replace("baseline: ", ""),
        }


def _panel(ax, rows: pd.DataFrame, measure: str, order: Sequence[str], base: pd.DataFrame) -> None:
    scale = 100 if measure in PERCENT else 1
    data = rows.assign(value=rows[measure] * scale)
    sns.barplot(
        data=data,
        y="label",
        x="value",
        order=order,
        ax=ax,
        errorbar=None,
        color="#1f77b4",
        alpha=0.8,
    )
    sns.stripplot(data=data, y="label", x="value", order=order, ax=ax, color="black", size=4)
    if measure in base:
        for r in base[base[measure].notna()].itertuples(index=False):
            ax.axvline(getattr(r, measure) * scale, lw=1.2, **BASELINE_STYLE[r.label])
    ax.set_title(TITLES[measure], fontsize=9)
    ax.set_xlabel("")
    ax.set_ylabel("")


def study_chart(
    measured: pd.DataFrame,
    study: str,
    measures: Sequence[str],
    baselines: pd.DataFrame,
    out_path: Path,
    title: str,
    paper: dict[str, dict] | None = None,
) -> Figure:
    """One panel per measure (bars: mean over seeds, dots: seeds); with ``paper``, a last
    panel per paper measure beside (Table 5)."""
    rows = measured[measured["study"] == study]
    order = list(dict.fromkeys(rows["label"]))
    measures = [m for m in measures if m in rows and rows[m].notna().any()]
    n = len(measures) + (2 if paper else 0)
    fig = Figure(figsize=(3.2 * n, 0.55 * len(order) + 2.4))
    axes = fig.subplots(1, n, sharey=True, squeeze=False)[0]
    _styles(list(baselines["label"]))
    for ax, m in zip(axes, measures, strict=False):
        _panel(ax, rows, m, order, baselines)
    handles = {}
    for ax in axes:
        for line in ax.get_lines():
            if not line.get_label().startswith("_"):
                handles.setdefault(line.get_label(), line)
    if handles:
        fig.legend(
            handles.values(),
            handles.keys(),
            loc="lower center",
            ncol=min(3, len(handles)),
            fontsize=7,
            frameon=False,
            title="baselines (same run, same rows)",
            title_fontsize=7,
            bbox_to_anchor=(0.5, -0.02),
        )
    if paper:
        quoted = pd.DataFrame([{"label": k, **v} for k, v in paper.items()])
        for ax, m in zip(axes[len(measures) :], ("micro_f1", "fd"), strict=True):
            sns.barplot(data=quoted, y="label", x=m, order=order, ax=ax, color="#2ca02c")
            ax.set_title(f"paper (quoted): {TITLES[m]}".replace(" (%)", ""), fontsize=9)
            ax.set_xlabel("")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.12 if handles else 0, 1, 1))
    return save(fig, out_path)


def curves_chart(
    curves: pd.DataFrame, names: dict[str, str], terms: Sequence[str], out_path: Path, title: str
) -> Figure:
    """Training-loss curves of several runs (one line per run and seed), one panel per term."""
    fig = Figure(figsize=(4.2 * len(terms), 3.2))
    axes = fig.subplots(1, len(terms), squeeze=False)[0]
    data = curves.assign(arm=curves["run"].map(names))
    for ax, term in zip(axes, terms, strict=True):
        sns.lineplot(
            data=data, x="step", y=term, hue="arm", units="seed", estimator=None, ax=ax, lw=1
        )
        ax.set_title(term, fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save(fig, out_path)
