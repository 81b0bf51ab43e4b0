"""Fig. 1's cross-model comparison: each model's score against its parameter count, for both
tasks, the paper's quoted rows beside this run's (data: ``experiments.headlines.comparison``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from unixlib.viz.common import save

PANELS = {  # task -> (y label, higher is better)
    "understanding": ("micro-F1-14, uncertain as positive (%)", True),
    "generation": ("FD-RadDino (lower is better)", False),
}
OURS = "this run"
COLOURS = {"paper (quoted)": "#7f7f7f", OURS: "#d62728"}
TICKS = (0.1, 0.2, 0.5, 1, 2, 3, 5, 10, 20, 50, 100)  # billions: readable steps on a log axis


def fig1_comparison(frame: pd.DataFrame, out_path: Path, title: str = "") -> Figure:
    """Two panels (understanding, generation): one point per model at (parameters, score), the
    x axis logarithmic in billions; every point is labelled (the unified models and this run in
    black). Rows without
    a parameter count (the paper gives "-" or "<1B") cannot be placed and are listed under the
    panel instead.

    ``frame``: columns ``model, task, value, params_b, source`` (``source`` "paper (quoted)"
    or "this run").
    """
    fig = Figure(figsize=(10.0, 4.2))
    axes = fig.subplots(1, 2)
    for ax, (task, (ylabel, higher)) in zip(axes, PANELS.items(), strict=True):
        rows = frame[(frame["task"] == task) & frame["value"].notna()]
        placed = rows[rows["params_b"].notna() & (rows["params_b"] > 0)]
        for source, group in placed.groupby("source"):
            ax.scatter(
                group["params_b"],
                group["value"],
                s=60 if source == OURS else 30,
                color=COLOURS.get(source, "#1f77b4"),
                marker="*" if source == OURS else "o",
                label=source,
                zorder=3,
            )
        for _, r in placed.iterrows():
            bold = r["source"] == OURS or "UniX" in r["model"] or "LLM-CXR" in r["model"]
            ax.annotate(
                r["model"],
                (r["params_b"], r["value"]),
                fontsize=7 if bold else 5.5,
                color="black" if bold else "#555555",
                xytext=(4, 3),
                textcoords="offset points",
            )
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}B"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("parameters (billions, log scale)")
        ax.set_ylabel(ylabel)
        ax.set_title(f"{task} ({'higher' if higher else 'lower'} is better)", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        unplaced = rows[~rows.index.isin(placed.index)]["model"].tolist()
        if unplaced:
            ax.text(
                0.0,
                -0.28,
                "no parameter count: " + ", ".join(unplaced),
                fontsize=6,
                transform=ax.transAxes,
                wrap=True,
            )
        if len(placed):
            lo, hi = placed["params_b"].min() / 1.6, placed["params_b"].max() * 1.6
            ax.set_xlim(lo, hi)
            ax.set_xticks([t for t in TICKS if lo <= t <= hi])
    axes[0].legend(fontsize=7, loc="lower right")
    fig.suptitle(title or "Fig. 1: UniX and the models it is compared with, by size")
    fig.tight_layout()
    return save(fig, out_path)
