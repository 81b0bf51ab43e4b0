"""Figures of the ablations (notebook 06): one per study, from the per-seed measurements.

Bars are means over seeds; each seed is a dot on its bar, so the spread is visible (one dot:
one seed, spread unknown). Dashed lines are the baselines of the same run (same test rows).
Panels form a grid of at most three a row, so a study fits a page width.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import seaborn as sns
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from unixlib.viz.common import CHAR_EM, FONT, PAGE_WIDTH, TITLE_FONT, save, text_inches, wrap

TITLES = {
    "micro_f1": "micro-F1-14 (%)",
    "macro_f1": "macro-F1-14 (%)",
    "fd": "FD (lower better)",
    "kd": "KD (lower better)",
    "alignment": "alignment",
    "faithfulness": "finding faithfulness\n(0 chance, 1 real)",
    "step_seconds": "s / training step",
}
LINESTYLES = ("--", ":", "-.", (0, (5, 1)), (0, (1, 3)))
COLOURS = ("#d62728", "#ff7f0e", "#7f7f7f", "#9467bd", "#8c564b")
BAR, PAPER_BAR = "#1f77b4", "#2ca02c"
ARM_CHARS = 22  # arm names wrap at this many characters (never truncated)
LEGEND_CHARS = 44  # baseline names in the legend wrap at this many characters
MAX_COLS = 3  # panels per row of the grid
ARM_LINE = FONT * 1.3 / 72  # inches per line of an arm's name
ROW_GAP = 0.6  # inches between rows of panels: tick labels and a two-line panel title


def _styles(labels: Sequence[str]) -> dict[str, dict]:
    """Baseline label -> its line style: colour and dash, the same in every panel."""
    return {
        label: {
            "ls": LINESTYLES[i % len(LINESTYLES)],
            "color": COLOURS[i % len(COLOURS)],
            "label": wrap(label, LEGEND_CHARS),
        }
        for i, label in enumerate(labels)
    }


def _panel(
    ax: Axes,
    rows: pd.DataFrame,
    measure: str,
    order: Sequence[str],
    base: pd.DataFrame,
    styles: dict[str, dict],
) -> None:
    """One measure: a bar per arm (mean over seeds), a dot per seed, a line per baseline
    (values drawn as stored: F1 already in %)."""
    data = rows.assign(value=rows[measure])
    sns.barplot(
        data=data, y="label", x="value", order=order, ax=ax, errorbar=None, color=BAR, alpha=0.8
    )
    sns.stripplot(data=data, y="label", x="value", order=order, ax=ax, color="black", size=3)
    if measure in base:
        for r in base[base[measure].notna()].itertuples(index=False):
            ax.axvline(getattr(r, measure), lw=1.2, **styles[r.label])
    ax.set_title(TITLES[measure], fontsize=FONT + 0.5)


def _paper_panel(ax: Axes, paper: dict[str, dict], measure: str, order: Sequence[str]) -> None:
    """A measure as the paper quotes it, per arm (green: not comparable to this run's scale)."""
    quoted = pd.DataFrame([{"label": k, **v} for k, v in paper.items()])
    sns.barplot(data=quoted, y="label", x=measure, order=order, ax=ax, color=PAPER_BAR)
    ax.set_title(f"paper (quoted): {TITLES[measure]}".replace(" (%)", ""), fontsize=FONT + 0.5)


def _handles(axes: Sequence[Axes]) -> dict[str, Artist]:
    """Legend entries: what bars and dots are, then every baseline line once."""
    handles: dict[str, Artist] = {
        "bar: this run, mean over seeds": Patch(color=BAR, alpha=0.8),
        "dot: one seed": Line2D([], [], ls="", marker="o", color="black", markersize=3),
    }
    for ax in axes:
        for line in ax.get_lines():
            if not line.get_label().startswith("_"):
                handles.setdefault(line.get_label(), line)
    return handles


def _legend_height(labels: Sequence[str], ncol: int) -> float:
    """Inches a legend of ``labels`` in ``ncol`` columns takes (rows as tall as their
    tallest entry)."""
    lines = [label.count("\n") + 1 for label in labels]
    rows = [max(lines[i : i + ncol]) for i in range(0, len(lines), ncol)]
    return sum(rows) * FONT * 1.35 / 72 + 0.1


def _place_legend(fig: Figure, handles: dict[str, Artist], free: list[Axes]) -> None:
    """One legend: in the grid's empty cells when there are any (one column, labels wrapped
    to their width), else centred under the panels (two columns; room kept by the caller)."""
    style = {"fontsize": FONT, "frameon": False}
    if not free:
        fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=2, **style)
        return
    boxes = [ax.get_position() for ax in free]
    x0, x1 = min(b.x0 for b in boxes), max(b.x1 for b in boxes)
    y0, y1 = min(b.y0 for b in boxes), max(b.y1 for b in boxes)
    chars = int(((x1 - x0) * fig.get_figwidth() - 0.5) * 72 / (FONT * CHAR_EM))
    labels = [wrap(k.replace("\n", " "), max(chars, 16)) for k in handles]
    area = (x0, y0, x1 - x0, y1 - y0)
    fig.legend(handles.values(), labels, loc="center", bbox_to_anchor=area, ncol=1, **style)


def study_chart(
    measured: pd.DataFrame,
    study: str,
    measures: Sequence[str],
    baselines: pd.DataFrame,
    out_path: Path,
    title: str,
    paper: dict[str, dict] | None = None,
) -> Figure:
    """A grid of panels, one per measure (bars: mean over seeds, dots: seeds, lines: the
    run's baselines), up to three a row, arm names on the left of each row; with ``paper``,
    two more panels of the paper's quoted micro-F1 and FD (Table 5). One legend under the
    title serves every panel.

    Args:
        measured: one row per (arm, seed): ``study``, ``label`` (the arm) and the measures.
        measures: columns to draw, in order; those without a value are left out.
        baselines: one row per baseline: ``label`` and the measures it has.
        paper: arm label -> ``{"micro_f1": ..., "fd": ...}`` as the paper quotes them.
    """
    rows = measured[measured["study"] == study]
    order = list(dict.fromkeys(rows["label"]))
    measures = [m for m in measures if m in rows and rows[m].notna().any()]
    panels = [("run", m) for m in measures] + [("paper", m) for m in ("micro_f1", "fd") if paper]
    ncols = min(MAX_COLS, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    names = [wrap(a, ARM_CHARS) for a in order]
    lines = sum(n.count("\n") + 1 for n in names)
    panel_h = max(0.28 * len(order), ARM_LINE * lines + 0.06 * len(order)) + 0.15  # axes
    styles = _styles(list(baselines["label"]))
    below = 0.0  # the legend goes under the panels when no grid cell is free
    if nrows * ncols == len(panels):
        below = _legend_height(["a", "b", *(st["label"] for st in styles.values())], 2)
    title = wrap(title, 95)
    head = 0.55 + 0.15 * title.count("\n")  # the title and the first row's panel titles
    foot = 0.3 + below  # the last row's tick labels and the legend
    fig = Figure(figsize=(PAGE_WIDTH, head + nrows * panel_h + (nrows - 1) * ROW_GAP + foot))
    axes = fig.subplots(nrows, ncols, sharey=True, squeeze=False).ravel()
    for ax, (kind, m) in zip(axes, panels, strict=False):
        if kind == "run":
            _panel(ax, rows, m, order, baselines, styles)
        else:
            _paper_panel(ax, paper, m, order)
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.tick_params(labelsize=FONT)
    axes[0].set_yticks(range(len(order)), names)
    height = fig.get_figheight()
    fig.suptitle(title, fontsize=TITLE_FONT, y=1 - 0.05 / height, va="top")
    fig.subplots_adjust(
        left=(text_inches("\n".join(names)) + 0.15) / PAGE_WIDTH,
        right=0.98,
        top=1 - head / height,
        bottom=foot / height,
        hspace=ROW_GAP / panel_h,
        wspace=0.12,
    )
    free = list(axes[len(panels) :])
    _place_legend(fig, _handles(axes[: len(panels)]), free)
    for ax in free:
        ax.remove()
    return save(fig, out_path)


def curves_chart(
    curves: pd.DataFrame, names: dict[str, str], terms: Sequence[str], out_path: Path, title: str
) -> Figure:
    """Training-loss curves of several runs (one line per run and seed), one panel per term
    (two a row), one legend of the arms under the panels.

    Args:
        curves: ``run``, ``seed``, ``step`` and one column per term.
        names: run -> the arm's label shown in the legend.
    """
    ncols = min(2, len(terms))
    nrows = math.ceil(len(terms) / ncols)
    fig = Figure(figsize=(min(PAGE_WIDTH, 3.75 * ncols), 2.6 * nrows + 0.9))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    data = curves.assign(arm=curves["run"].map(names).map(lambda a: wrap(a, LEGEND_CHARS)))
    for ax, term in zip(axes, terms, strict=False):
        sns.lineplot(
            data=data, x="step", y=term, hue="arm", units="seed", estimator=None, ax=ax, lw=1
        )
        ax.set_title(term, fontsize=FONT + 0.5)
        ax.tick_params(labelsize=FONT)
        ax.set_xlabel("step", fontsize=FONT)
        ax.set_ylabel("loss", fontsize=FONT)
    handles, labels = axes[0].get_legend_handles_labels()
    for ax in axes:
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    for ax in axes[len(terms) :]:
        ax.remove()
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=FONT, frameon=False)
    fig.suptitle(wrap(title, 90), fontsize=TITLE_FONT)
    fig.tight_layout(rect=(0, 0.3 / fig.get_figheight(), 1, 1))  # room for the legend
    return save(fig, out_path)
