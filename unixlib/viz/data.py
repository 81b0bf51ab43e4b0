"""Figures of the data stage (notebook 01): the SynthCXR gallery, cleaning, labels, lengths."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from unixlib.viz.common import FONT, MONO_EM, MONO_FONT, TITLE_FONT, save, wrap
from unixlib.viz.generation import image_rows


def synth_gallery(rows: Mapping[str, Sequence[np.ndarray]], out_path: Path) -> Figure:
    """SynthCXR gallery: one line of examples per finding (titled with its name), the lines
    set in columns to fit a page.

    Args:
        rows: row title -> images, each (H, W) in [0, 1] (1 = bright); rows may differ in length.
        out_path: where the PNG is written (parent folders are created).

    Returns:
        The matplotlib Figure (also saved to ``out_path``).
    """
    # image_rows sets the findings in a grid of columns when that gives larger images
    return image_rows(rows, out_path, title="SynthCXR: a few examples of each finding")


def cleaning_examples(
    raw: Sequence[str], cleaned: Sequence[str], out_path: Path, width: int = 60
) -> Figure:
    """Paper Fig. 3: raw reports (left) beside their cleaned versions (right), one pair a row,
    in a monospaced 7 pt font. The two columns share ``2 * width`` characters a line (60 each
    fills a page width), split by how much text each holds (raw reports are the longer, so
    their column is wider, between 40 % and 65 %). Line breaks and runs of spaces are shown as
    one space, so a long raw report stays short."""
    raw = [" ".join(r.split()) for r in raw]
    cleaned = [" ".join(c.split()) for c in cleaned]
    share = sum(map(len, raw)) / max(1, sum(map(len, raw)) + sum(map(len, cleaned)))
    widths = (round(2 * width * min(max(share, 0.4), 0.65)),)
    widths += (2 * width - widths[0],)
    wrapped = [(wrap(r, widths[0]), wrap(c, widths[1])) for r, c in zip(raw, cleaned, strict=True)]
    lines = [max(a.count("\n"), b.count("\n")) + 1 for a, b in wrapped]
    line_h, pad, gap, head = MONO_FONT * 1.2 / 72, 0.1, 0.1, 0.3  # inches
    heights = [n * line_h + 2 * pad for n in lines]
    col_w = [w * MONO_FONT * MONO_EM / 72 + 2 * pad for w in widths]
    fig = Figure(figsize=(sum(col_w) + 0.15, head + sum(heights) + gap * (len(lines) - 1)))
    height = fig.get_figheight()
    grid = fig.add_gridspec(
        len(lines),
        2,
        width_ratios=col_w,
        height_ratios=heights,
        left=0,
        right=1,
        top=1 - head / height,
        bottom=0,
        wspace=0.15 / (sum(col_w) / 2),
        hspace=gap / (sum(heights) / len(heights)),
    )
    for i, pair in enumerate(wrapped):
        for j, (text, colour) in enumerate(zip(pair, ("#fdecea", "#e8f5e9"), strict=True)):
            ax = fig.add_subplot(grid[i, j], facecolor=colour)
            ax.set_xticks([])
            ax.set_yticks([])
            for side in ax.spines.values():
                side.set_visible(False)
            ax.text(
                pad / col_w[j],
                1 - pad / heights[i],
                text,
                va="top",
                ha="left",
                family="monospace",
                fontsize=MONO_FONT,
                transform=ax.transAxes,
            )
            if i == 0:
                ax.set_title(("raw report", "cleaned report")[j], loc="left", fontsize=TITLE_FONT)
    return save(fig, out_path)


def cleaning_status(statuses: pd.Series, out_path: Path) -> Figure:
    """Counts of cleaning statuses (llm / rules / fallback:<reason> / rejected:<reason>)."""
    counts = statuses.value_counts().sort_values(ascending=False)
    names = [wrap(s, 45) for s in counts.index]  # wrapped, never cut: the reason is the point
    lines = sum(n.count("\n") + 1 for n in names)
    fig = Figure(figsize=(6.5, 0.18 * lines + 0.2 * len(counts) + 1.2))
    ax = fig.subplots()
    sns.barplot(x=counts.to_numpy(), y=names, color="#4c72b0", orient="h", ax=ax)
    ax.bar_label(ax.containers[0], padding=2, fontsize=FONT)
    ax.set_xlim(0, counts.max() * 1.12)  # room for the count right of the longest bar
    ax.tick_params(labelsize=FONT)
    ax.set_xlabel("reports", fontsize=FONT + 0.5)
    ax.set_title("report cleaning: status per row", fontsize=TITLE_FONT)
    fig.tight_layout()  # long status names stay inside the figure's width
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
    fig = Figure(figsize=(6.5, 0.26 * frame.shape[1] + 1.4))
    ax = fig.subplots()
    frame = frame.rename(columns=lambda c: str(c).replace("_", " "))
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
    ax.set_xlabel(f"share of {len(frame)} training reports", fontsize=FONT + 0.5)
    ax.tick_params(labelsize=FONT)
    # seaborn stacks the last hue level first: positives start at 0; the legend reads from
    # the right end of the bars, so it is reversed to read left to right as they are stacked
    legend = ax.get_legend()
    handles, names = legend.legend_handles[::-1], [t.get_text() for t in legend.texts][::-1]
    legend.remove()
    ax.legend(
        handles,
        names,
        loc="lower center",
        bbox_to_anchor=(0.5, 1.0),
        ncol=4,
        fontsize=FONT,
        frameon=False,
    )
    ax.set_title("label distribution (training split)", fontsize=TITLE_FONT, pad=20)
    fig.tight_layout()
    return save(fig, out_path)


def label_agreement(
    table: pd.DataFrame, out_path: Path, title: str, note: str | None = None
) -> Figure:
    """Heatmap of a labeler-agreement table (``iu_mesh.agreement``): precision, recall and F1
    per class (rows), the class's support in its label; ``micro`` / ``macro`` rows last.

    Args:
        note: an optional line under the title that says how to read the scores (e.g. why
            they are all 1.00: "the synthetic reports use the labeler's own vocabulary").
    """
    scores = table[["precision", "recall", "f1"]].astype(float)
    rows = [
        f"{str(name).replace('_', ' ')} (n={int(n)})"
        for name, n in zip(table.index, table["support"], strict=True)
    ]
    note_lines = wrap(note, 70).count("\n") + 1 if note else 0
    fig = Figure(figsize=(5.5, 0.26 * len(table) + 1.3 + 0.16 * note_lines))
    ax = fig.subplots()
    sns.heatmap(
        scores.set_axis(rows),
        annot=True,
        fmt=".2f",
        vmin=0,
        vmax=1,
        cmap="viridis",
        cbar_kws={"label": "score"},
        annot_kws={"fontsize": FONT},
        ax=ax,
    )
    ax.tick_params(labelsize=FONT)
    colour_bar = ax.collections[0].colorbar
    colour_bar.ax.tick_params(labelsize=FONT)
    colour_bar.set_label("score", fontsize=FONT + 0.5)
    if note:
        ax.set_title(wrap(note, 70), fontsize=FONT, style="italic", pad=6)
        fig.suptitle(title, fontsize=TITLE_FONT)
    else:
        ax.set_title(title, fontsize=TITLE_FONT)
    fig.tight_layout()
    return save(fig, out_path)


def report_lengths(raw: pd.Series, cleaned: pd.Series, tokenizer, out_path: Path) -> Figure:
    """Histogram of report lengths in tokens before and after cleaning."""
    fig = Figure(figsize=(6.5, 3.2))
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
    ax.set_xlabel("tokens per report", fontsize=FONT + 0.5)
    ax.set_ylabel("reports", fontsize=FONT + 0.5)
    ax.tick_params(labelsize=FONT)
    sns.move_legend(ax, "upper right", title=None, fontsize=FONT)
    ax.set_title("report length before and after cleaning", fontsize=TITLE_FONT)
    fig.tight_layout()
    return save(fig, out_path)
