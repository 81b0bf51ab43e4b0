"""Figures of the evaluation (notebook 05): Fig. 1 (summary and qualitative panel), per-class
F1 and per-pathology FD charts. Each takes tables and arrays, never a model."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from unixlib.viz.common import save

# One colour per kind of row, the same in every figure: ours, baselines, references.
PALETTE = {"model": "#1f77b4", "baseline": "#bbbbbb", "reference": "#2ca02c"}


def _kind_colours(names: Sequence[str], kinds: dict[str, str]) -> list[str]:
    return [PALETTE[kinds.get(n, "model")] for n in names]


def per_class_f1_chart(per_class: pd.DataFrame, methods: Sequence[str], out_path: Path) -> Figure:
    """Grouped bars of per-class F1 (``report_eval.per_class_f1``), one group per class,
    one bar per method; classes without reference positives are greyed in their label."""
    long = per_class.melt(
        id_vars="class", value_vars=list(methods), var_name="method", value_name="F1"
    )
    fig = Figure(figsize=(7.5, 6.0))
    ax = fig.subplots()
    sns.barplot(data=long, y="class", x="F1", hue="method", ax=ax, orient="h")
    ax.set_xlim(0, 1)
    ax.set_xlabel("F1 (uncertain as positive)")
    ax.set_ylabel("")
    absent = set(per_class.loc[per_class["reference positives"] == 0, "class"])
    for label in ax.get_yticklabels():
        label.set_color("#999999" if label.get_text() in absent else "black")
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title("Per-class F1 of generated reports (grey class: no positive test report)")
    fig.tight_layout()
    return save(fig, out_path)


def per_pathology_fd_chart(table4: pd.DataFrame, classes: Sequence[str], out_path: Path) -> Figure:
    """FD per pathology (rows of Table 4 from this run: one line of points per image set)."""
    fig = Figure(figsize=(8.0, 4.0))
    ax = fig.subplots()
    x = np.arange(len(classes))
    for _, row in table4.iterrows():
        ax.plot(x, [row[c] for c in classes], marker="o", label=row["images"])
    ax.set_xticks(x, [c.replace("_", " ") for c in classes], rotation=45, ha="right")
    ax.set_ylabel("FD (lower is closer to the real positives)")
    ax.legend(fontsize=7)
    ax.set_title("Per-pathology FD: real test images with the finding vs images of their reports")
    fig.tight_layout()
    return save(fig, out_path)


def fig1_summary(
    understanding: pd.DataFrame,
    distribution: pd.DataFrame,
    faithfulness: pd.DataFrame,
    kinds: dict[str, str],
    out_path: Path,
) -> Figure:
    """Fig. 1 (summary across tasks): (a) micro / macro F1-14 of the reports of the model and
    the baselines; (b) FD of each image set to the real test images; (c) per-class AUROC of the
    reference classifier on real, generated and shuffled-report images.

    Args:
        understanding: index method, columns ``micro14_upos``, ``macro14_upos``.
        distribution: columns ``images`` and ``FD`` (whole test set rows of Table 3).
        faithfulness: ``image_eval.faithfulness_table`` output (without its ``mean`` row).
    """
    fig = Figure(figsize=(13.0, 4.2))
    ax_u, ax_g, ax_f = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1.1, 1.0, 1.3]})
    names = list(understanding.index)
    y = np.arange(len(names))
    ax_u.barh(y - 0.2, understanding["micro14_upos"], 0.4, color=_kind_colours(names, kinds))
    ax_u.barh(
        y + 0.2, understanding["macro14_upos"], 0.4, color=_kind_colours(names, kinds), alpha=0.5
    )
    ax_u.set_yticks(y, names, fontsize=8)
    ax_u.invert_yaxis()
    ax_u.set_xlim(0, 1)
    ax_u.set_xlabel("F1-14 (dark: micro, light: macro)")
    ax_u.set_title("(a) image to report")
    sets = list(distribution["images"])
    ax_g.barh(sets, distribution["FD"], color=_kind_colours(sets, kinds))
    ax_g.invert_yaxis()
    ax_g.tick_params(axis="y", labelsize=8)
    ax_g.set_xlabel("FD to the real test images (lower is better)")
    ax_g.set_title("(b) report to image: realism")
    rows = faithfulness[faithfulness["class"] != "mean"].dropna(subset=["auroc_real"])
    x = np.arange(len(rows))
    for off, col, label, colour in (
        (-0.27, "auroc_real", "real test images", PALETTE["reference"]),
        (0.0, "auroc_generated", "generated from their reports", PALETTE["model"]),
        (0.27, "auroc_shuffled", "generated from shuffled reports", PALETTE["baseline"]),
    ):
        ax_f.bar(x + off, rows[col], 0.27, label=label, color=colour)
    ax_f.axhline(0.5, color="black", lw=0.8, ls="--")
    ax_f.set_xticks(
        x, [c.replace("_", " ") for c in rows["class"]], rotation=45, ha="right", fontsize=8
    )
    ax_f.set_ylim(0.3, 1.0)
    ax_f.set_ylabel("reference classifier AUROC")
    ax_f.legend(fontsize=7, loc="upper right")
    ax_f.set_title("(c) report to image: does the image show the report's findings?")
    fig.tight_layout()
    return save(fig, out_path)


def fig1_qualitative(
    references: Sequence[str],
    written: Sequence[str],
    real: np.ndarray,
    generated: np.ndarray,
    out_path: Path,
    width: int = 46,
) -> Figure:
    """Fig. 1 (qualitative): per test case, the real image, its reference report, the report
    the model wrote for that image, and the image the model drew from the reference report."""
    n = len(references)
    fig = Figure(figsize=(12.0, 2.2 * n))
    axes = fig.subplots(n, 4, squeeze=False, gridspec_kw={"width_ratios": [1, 2, 2, 1]})
    heads = ("real image", "reference report", "generated report", "generated image")
    for i in range(n):
        for j, ax in enumerate(axes[i]):
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(heads[j], fontsize=9)
        axes[i, 0].imshow(real[i], cmap="gray", vmin=0, vmax=1)
        axes[i, 3].imshow(generated[i], cmap="gray", vmin=0, vmax=1)
        for ax, text in ((axes[i, 1], references[i]), (axes[i, 2], written[i])):
            printable = "".join(ch if ch.isprintable() else "?" for ch in text)
            short = printable[:420] + ("..." if len(printable) > 420 else "")
            wrapped = "\n".join(textwrap.wrap(short, width)) or "(empty)"
            ax.text(0.02, 0.98, wrapped, va="top", ha="left", fontsize=6.5, family="monospace")
    fig.tight_layout()
    return save(fig, out_path)
