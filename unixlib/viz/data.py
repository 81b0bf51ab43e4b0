"""Figures of the data stage (notebook 01): the SynthCXR gallery, cleaning, labels, lengths."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from unixlib.data.schema import LABELS
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
    counts = statuses.value_counts().sort_values()
    fig = Figure(figsize=(7, 0.35 * len(counts) + 1.2))
    ax = fig.subplots()
    ax.barh([textwrap.shorten(s, 60) for s in counts.index], counts.to_numpy(), color="#4c72b0")
    for y, v in enumerate(counts.to_numpy()):
        ax.text(v, y, f" {v}", va="center", fontsize=8)
    ax.set_xlabel("reports")
    ax.set_title("report cleaning: status per row")
    return save(fig, out_path)


def label_distribution(frame: pd.DataFrame, out_path: Path) -> Figure:
    """Share of positive / uncertain / negative / unmentioned per observation (stacked bars)."""
    values = frame[list(LABELS)]
    parts = {
        "positive": (values == 1).mean(),
        "uncertain": (values == -1).mean(),
        "negative": (values == 0).mean(),
        "not mentioned": values.isna().mean(),
    }
    colours = ["#c44e52", "#dd8452", "#55a868", "#cccccc"]
    fig = Figure(figsize=(8, 5))
    ax = fig.subplots()
    left = np.zeros(len(LABELS))
    for (name, share), colour in zip(parts.items(), colours, strict=True):
        ax.barh(list(LABELS), share.to_numpy(), left=left, label=name, color=colour)
        left += share.to_numpy()
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"share of {len(frame)} training reports")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("label distribution (training split)")
    return save(fig, out_path)


def report_lengths(raw: pd.Series, cleaned: pd.Series, tokenizer, out_path: Path) -> Figure:
    """Histogram of report lengths in tokens before and after cleaning."""
    fig = Figure(figsize=(7, 3.5))
    ax = fig.subplots()
    lengths = {}
    for name, texts in [("raw", raw), ("cleaned", cleaned)]:
        texts = [t for t in texts.fillna("") if t]
        lengths[name] = np.array([len(ids) for ids in tokenizer.encode_batch(texts)])
    top = max(int(v.max()) for v in lengths.values() if len(v)) + 1
    bins = np.linspace(0, top, 40)
    for name, v in lengths.items():
        ax.hist(v, bins=bins, alpha=0.6, label=f"{name} (median {np.median(v):.0f})")
    ax.set_xlabel("tokens per report")
    ax.set_ylabel("reports")
    ax.legend()
    ax.set_title("report length before and after cleaning")
    return save(fig, out_path)
