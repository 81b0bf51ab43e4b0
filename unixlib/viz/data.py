"""Figures of the data stage (notebook 01): the SynthCXR gallery, cleaning, labels, lengths."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from unixlib.viz.common import save
from unixlib.viz.generation import image_rows


def synth_gallery(rows: Mapping[str, Sequence[np.ndarray]], out_path: Path) -> Figure:
    """SynthCXR gallery: one row per finding (row title = its name), a few examples each.

    Args:
        rows: row title -> images, each (H, W) in [0, 1] (1 = bright); rows may differ in length.
        out_path: where the PNG is written (parent folders are created).

    Returns:
        The matplotlib Figure (also saved to ``out_path``).
    """
    return image_rows(rows, out_path, title="SynthCXR: one row per finding")


def cleaning_examples(
    raw: Sequence[str], cleaned: Sequence[str], out_path: Path, width: int = 60
) -> Figure:
    """Paper Fig. 3: raw reports (left) beside their cleaned versions (right), one pair a row."""
    n = len(raw)
    wrapped = [
        (textwrap.fill(r, width), textwrap.fill(c, width))
        for r, c in zip(raw, cleaned, strict=True)
    ]
    heights = [max(a.count("\n"), b.count("\n")) + 2 for a, b in wrapped]
    fig = Figure(figsize=(13, 0.17 * sum(heights) + 0.6))
    axes = fig.subplots(n, 2, squeeze=False, gridspec_kw={"height_ratios": heights})
    for i, (r, c) in enumerate(wrapped):
        for j, (text, colour) in enumerate([(r, "#fdecea"), (c, "#e8f5e9")]):
            ax = axes[i, j]
            ax.set_axis_off()
            ax.text(
                0,
                1,
                text,
                va="top",
                ha="left",
                family="monospace",
                fontsize=7.5,
                transform=ax.transAxes,
                bbox={"facecolor": colour, "edgecolor": "none", "pad": 4},
            )
    axes[0, 0].set_title("raw report", loc="left", fontsize=10)
    axes[0, 1].set_title("cleaned report", loc="left", fontsize=10)
    return save(fig, out_path)


def cleaning_status(statuses: pd.Series, out_path: Path) -> Figure:
    """Counts of cleaning statuses (llm / rules / fallback:<reason> / rejected:<reason>)."""
    counts = statuses.value_counts().sort_values(ascending=False)
    names = [textwrap.shorten(s, 60) for s in counts.index]
    fig = Figure(figsize=(7, 0.35 * len(counts) + 1.2))
    ax = fig.subplots()
    sns.barplot(x=counts.to_numpy(), y=names, color="#4c72b0", orient="h", ax=ax)
    ax.bar_label(ax.containers[0], padding=2, fontsize=8)
    ax.set_xlabel("reports")
    ax.set_title("report cleaning: status per row")
    return save(fig, out_path)


# Label states from the left of each bar, with their colours.
LABEL_STATES = {
    "positive": "#c44e52",
    "uncertain": "#dd8452",
    "negative": "#55a868",
    "not mentioned": "#cccccc",
}


def label_shares(values: pd.DataFrame) -> pd.DataFrame:
    """Long table ``class, state, share``: the share of rows in each label state per class
    (``values``: one column per class, 1 / -1 / 0 / NaN)."""
    shares = {
        "positive": (values == 1).mean(),
        "uncertain": (values == -1).mean(),
        "negative": (values == 0).mean(),
        "not mentioned": values.isna().mean(),
    }
    long = pd.DataFrame(shares).rename_axis("class").reset_index()
    return long.melt(id_vars="class", var_name="state", value_name="share")


def label_distribution(frame: pd.DataFrame, out_path: Path) -> Figure:
    """Share of positive / uncertain / negative / unmentioned per observation (stacked bars)."""
    fig = Figure(figsize=(8, 5))
    ax = fig.subplots()
    sns.histplot(
        data=label_shares(frame),
        y="class",
        hue="state",
        weights="share",
        multiple="stack",
        discrete=True,
        shrink=0.8,
        palette=LABEL_STATES,
        hue_order=list(LABEL_STATES)[::-1],
        ax=ax,
        linewidth=0,
        alpha=1.0,
    )
    ax.set_xlim(0, 1)
    ax.set_ylabel("")
    ax.set_xlabel(f"share of {len(frame)} training reports")
    # seaborn stacks the last hue level first: positives start at 0 (legend from the right end)
    sns.move_legend(ax, "upper left", bbox_to_anchor=(1.01, 1), fontsize=8, title=None)
    ax.set_title("label distribution (training split)")
    return save(fig, out_path)


def label_agreement(table: pd.DataFrame, out_path: Path, title: str) -> Figure:
    """Heatmap of a labeler-agreement table (``iu_mesh.agreement``): precision, recall and F1
    per class (rows), the class's support in its label; ``micro`` / ``macro`` rows last."""
    scores = table[["precision", "recall", "f1"]].astype(float)
    rows = [f"{name} (n={int(n)})" for name, n in zip(table.index, table["support"], strict=True)]
    fig = Figure(figsize=(5.5, 0.32 * len(table) + 1.4))
    ax = fig.subplots()
    sns.heatmap(
        scores.set_axis(rows),
        annot=True,
        fmt=".2f",
        vmin=0,
        vmax=1,
        cmap="viridis",
        cbar_kws={"label": "score"},
        annot_kws={"fontsize": 7},
        ax=ax,
    )
    ax.set_title(title, fontsize=10)
    ax.tick_params(axis="y", labelsize=8)
    return save(fig, out_path)


def report_lengths(raw: pd.Series, cleaned: pd.Series, tokenizer, out_path: Path) -> Figure:
    """Histogram of report lengths in tokens before and after cleaning."""
    fig = Figure(figsize=(7, 3.5))
    ax = fig.subplots()
    parts = []
    for name, texts in [("raw", raw), ("cleaned", cleaned)]:
        texts = [t for t in texts.fillna("") if t]
        lengths = np.array([len(ids) for ids in tokenizer.encode_batch(texts)])
        label = f"{name} (median {np.median(lengths):.0f})"
        parts.append(pd.DataFrame({"tokens": lengths, "text": label}))
    long = pd.concat(parts, ignore_index=True)
    bins = np.linspace(0, int(long["tokens"].max()) + 1, 40)
    sns.histplot(data=long, x="tokens", hue="text", bins=bins, alpha=0.6, ax=ax)
    ax.set_xlabel("tokens per report")
    ax.set_ylabel("reports")
    sns.move_legend(ax, "upper right", title=None)
    ax.set_title("report length before and after cleaning")
    return save(fig, out_path)
