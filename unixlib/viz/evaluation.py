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

from unixlib.viz.common import CHAR_EM, FONT, PAGE_WIDTH, TITLE_FONT, save, wrap

# One colour per kind of row, the same in every figure: ours, baselines, references.
PALETTE = {"model": "#1f77b4", "baseline": "#bbbbbb", "reference": "#2ca02c"}
ABSENT = "#999999"  # class names without a positive reference report
MARKERS = ("o", "s", "D", "^", "v", "P", "X", "*")  # one per image set, told apart in grey too


def _kind_colours(names: Sequence[str], kinds: dict[str, str]) -> list[str]:
    return [PALETTE[kinds.get(n, "model")] for n in names]


def _class_name(name: str) -> str:
    return name.replace("_", " ")


def per_class_f1_chart(per_class: pd.DataFrame, methods: Sequence[str], out_path: Path) -> Figure:
    """Grouped bars of per-class F1 (``report_eval.per_class_f1``), one group per class,
    one bar per method. A class without a positive reference report (F1 undefined for the
    positive side) has its name greyed, and the title says which those are; when every class
    has positives, nothing is greyed and the title says nothing of it.

    Args:
        per_class: ``class``, one F1 column per method, ``reference positives``.
        methods: the F1 columns to draw, in legend order.
    """
    data = per_class.assign(**{"class": per_class["class"].map(_class_name)})
    long = data.melt(id_vars="class", value_vars=list(methods), var_name="method", value_name="F1")
    fig = Figure(figsize=(6.5, 0.16 * len(data) * max(2, len(methods)) / 2 + 2.0))
    ax = fig.subplots()
    sns.barplot(data=long, y="class", x="F1", hue="method", ax=ax, orient="h")
    ax.set_xlim(0, 1)
    ax.set_xlabel("F1 (uncertain as positive)", fontsize=FONT + 0.5)
    ax.set_ylabel("")
    ax.tick_params(labelsize=FONT)
    absent = list(data.loc[per_class["reference positives"] == 0, "class"])
    for label in ax.get_yticklabels():
        label.set_color(ABSENT if label.get_text() in absent else "black")
    title = "Per-class F1 of generated reports"
    if absent:
        title += f"\ngrey: no positive test report ({', '.join(absent)})"
    ax.set_title(wrap(title, 80), fontsize=TITLE_FONT)
    sns.move_legend(
        ax,
        "upper center",
        bbox_to_anchor=(0.5, -0.08),
        ncol=2,
        fontsize=FONT,
        title=None,
        frameon=False,
    )
    fig.tight_layout()
    return save(fig, out_path)


def per_pathology_fd_chart(table4: pd.DataFrame, classes: Sequence[str], out_path: Path) -> Figure:
    """FD per pathology (rows of Table 4 from this run): one row per class, one marker per
    image set, side by side within the row (categories as points, never joined by lines).

    Args:
        table4: one row per image set: ``images`` and one FD column per class.
        classes: the class columns to draw, top to bottom.
    """
    sets = list(table4["images"])
    fig = Figure(figsize=(6.5, 0.3 * len(classes) + 1.6))
    ax = fig.subplots()
    y = np.arange(len(classes))
    step = 0.6 / max(1, len(sets))
    for k, (_, row) in enumerate(table4.iterrows()):
        offset = (k - (len(sets) - 1) / 2) * step
        values = [row[c] for c in classes]
        ax.scatter(
            values,
            y + offset,
            marker=MARKERS[k % len(MARKERS)],
            s=22,
            label=row["images"],
            zorder=3,
        )
    ax.set_yticks(y, [_class_name(c) for c in classes])
    ax.set_ylim(len(classes) - 0.5, -0.5)
    ax.grid(axis="x", alpha=0.3)
    for boundary in y[:-1] + 0.5:  # one band per class, so each marker reads with its class
        ax.axhline(boundary, color="#dddddd", lw=0.6)
    ax.tick_params(labelsize=FONT)
    ax.set_xlabel("FD (lower is closer to the real positives)", fontsize=FONT + 0.5)
    ax.legend(
        loc="upper center",
        bbox_to_anchor=(0.5, -0.1),
        ncol=min(3, len(sets)),
        fontsize=FONT,
        frameon=False,
    )
    ax.set_title(
        "Per-pathology FD: real test images with the finding\nvs images drawn from their reports",
        fontsize=TITLE_FONT,
    )
    fig.tight_layout()
    return save(fig, out_path)


def _understanding_panel(ax, understanding: pd.DataFrame, kinds: dict[str, str]) -> None:
    """(a): micro (dark) and macro (light) F1-14 per method."""
    names = list(understanding.index)
    y = np.arange(len(names))
    colours = _kind_colours(names, kinds)
    ax.barh(y - 0.2, understanding["micro14_upos"], 0.4, color=colours)
    ax.barh(y + 0.2, understanding["macro14_upos"], 0.4, color=colours, alpha=0.5)
    ax.set_yticks(y, [wrap(n, 22) for n in names])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("F1-14 (dark: micro, light: macro)", fontsize=FONT + 0.5)
    ax.set_title("(a) image to report", fontsize=TITLE_FONT)


def _realism_panel(ax, distribution: pd.DataFrame, kinds: dict[str, str]) -> None:
    """(b): FD of each image set to the real test images."""
    sets = list(distribution["images"])
    y = np.arange(len(sets))
    ax.barh(y, distribution["FD"], color=_kind_colours(sets, kinds))
    ax.set_yticks(y, [wrap(n, 22) for n in sets])
    ax.invert_yaxis()
    ax.set_xlabel("FD to the real test images (lower is better)", fontsize=FONT + 0.5)
    ax.set_title("(b) report to image: realism", fontsize=TITLE_FONT)


def _faithfulness_panel(ax, faithfulness: pd.DataFrame) -> None:
    """(c): per-class AUROC of the reference classifier on three image sets."""
    rows = faithfulness[faithfulness["class"] != "mean"].dropna(subset=["auroc_real"])
    x = np.arange(len(rows))
    cols = ("auroc_real", "auroc_generated", "auroc_shuffled")
    for off, col, label, colour in zip(
        (-0.27, 0.0, 0.27),
        cols,
        ("real test images", "generated from their reports", "generated from shuffled reports"),
        (PALETTE["reference"], PALETTE["model"], PALETTE["baseline"]),
        strict=True,
    ):
        ax.bar(x + off, rows[col], 0.27, label=label, color=colour)
    ax.axhline(0.5, color="black", lw=0.8, ls="--", label="chance (0.5)")
    ax.set_xticks(x, [_class_name(c) for c in rows["class"]], rotation=40, ha="right")
    low = float(np.nanmin(rows[list(cols)].to_numpy(float), initial=0.3))
    ax.set_ylim(min(0.3, np.floor(low * 10) / 10), 1.0)  # no bar cut off below the axis
    ax.set_ylabel("reference classifier AUROC", fontsize=FONT + 0.5)
    ax.legend(fontsize=FONT, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=4, frameon=False)
    ax.set_title(
        "(c) report to image: does the image show the report's findings?",
        fontsize=TITLE_FONT,
        pad=18,
    )


def fig1_summary(
    understanding: pd.DataFrame,
    distribution: pd.DataFrame,
    faithfulness: pd.DataFrame,
    kinds: dict[str, str],
    out_path: Path,
) -> Figure:
    """Fig. 1 (summary across tasks): (a) micro / macro F1-14 of the reports of the model and
    the baselines; (b) FD of each image set to the real test images; (c) per-class AUROC of the
    reference classifier on real, generated and shuffled-report images. (a) and (b) side by
    side, (c) across the page under them.

    Args:
        understanding: index method, columns ``micro14_upos``, ``macro14_upos``.
        distribution: columns ``images`` and ``FD`` (whole test set rows of Table 3).
        faithfulness: ``image_eval.faithfulness_table`` output (without its ``mean`` row).
        kinds: row name -> ``model`` / ``baseline`` / ``reference`` (its colour).
    """
    n_top = max(len(understanding), len(distribution))
    top_h = 0.32 * n_top + 0.9
    fig = Figure(figsize=(PAGE_WIDTH, top_h + 3.6))
    grid = fig.add_gridspec(2, 2, height_ratios=(top_h, 3.6))
    ax_u, ax_g = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])
    ax_f = fig.add_subplot(grid[1, :])
    _understanding_panel(ax_u, understanding, kinds)
    _realism_panel(ax_g, distribution, kinds)
    _faithfulness_panel(ax_f, faithfulness)
    for ax in (ax_u, ax_g, ax_f):
        ax.tick_params(labelsize=FONT)
    fig.tight_layout(h_pad=1.5, w_pad=2.0)
    return save(fig, out_path)


def _report_text(text: str, width: int, limit: int = 420) -> str:
    """A report as shown in a panel: unprintable characters as ``?``, cut after ``limit``
    characters (marked ``...``), wrapped at ``width``."""
    printable = "".join(ch if ch.isprintable() else "?" for ch in text)
    short = printable[:limit] + ("..." if len(printable) > limit else "")
    return "\n".join(textwrap.wrap(short, width)) or "(empty)"


def fig1_qualitative(
    references: Sequence[str],
    written: Sequence[str],
    real: np.ndarray,
    generated: np.ndarray,
    out_path: Path,
    width: int = 40,
) -> Figure:
    """Fig. 1 (qualitative): per test case, the real image, its reference report, the report
    the model wrote for that image, and the image the model drew from the reference report.

    Args:
        references, written: one report per case (shown up to 420 characters, wrapped at
            ``width``); real, generated: ``(N, H, W)`` images in [0, 1].
    """
    n = len(references)
    texts = [
        [_report_text(r, width) for r in pair] for pair in zip(references, written, strict=True)
    ]
    text_w = width * FONT * CHAR_EM / 72 + 0.2  # inches of a report column
    image_w = (PAGE_WIDTH - 2 * text_w - 0.3) / 2
    line_h = FONT * 1.2 / 72
    heights = [max(image_w, max(t.count("\n") + 1 for t in pair) * line_h + 0.12) for pair in texts]
    head, gap = 0.25, 0.08
    fig = Figure(figsize=(PAGE_WIDTH, head + sum(heights) + gap * (n - 1)))
    height = fig.get_figheight()
    grid = fig.add_gridspec(
        n,
        4,
        width_ratios=[image_w, text_w, text_w, image_w],
        height_ratios=heights,
        left=0,
        right=1,
        top=1 - head / height,
        bottom=0,
        wspace=0.1 / text_w,
        hspace=gap / (sum(heights) / n),
    )
    heads = ("real image", "reference report", "generated report", "generated image")
    for i in range(n):
        axes = [fig.add_subplot(grid[i, j]) for j in range(4)]
        for j, ax in enumerate(axes):
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                box = ax.get_position()
                fig.text(
                    (box.x0 + box.x1) / 2,
                    1 - 0.05 / height,
                    heads[j],
                    ha="center",
                    va="top",
                    fontsize=FONT + 1,
                )
        axes[0].imshow(real[i], cmap="gray", vmin=0, vmax=1)
        axes[3].imshow(generated[i], cmap="gray", vmin=0, vmax=1)
        for ax, text in zip(axes[1:3], texts[i], strict=True):
            ax.text(
                0.04 / text_w,
                1 - 0.06 / heights[i],
                text,
                va="top",
                ha="left",
                fontsize=FONT,
                family="monospace",
                transform=ax.transAxes,
            )
    return save(fig, out_path)
