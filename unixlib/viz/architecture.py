"""Fig. 2: the architecture as the training code builds it.

Per task, a strip of the packed sample's splits (coloured by token kind, hatched where a loss
is taken), its RoPE positions (flat over an image block) and its attention mask (query rows x
key columns, each allowed cell coloured by the key's kind, split boundaries drawn); beside them
a table of which weight groups each stage trains. The inputs come from
``unixlib.experiments.sequence_figure`` as the plain data types below (arrays and a DataFrame), never
from a model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

from unixlib.viz.common import FONT, PAGE_WIDTH, TITLE_FONT, save, text_inches, wrap

__all__ = ["SplitSpan", "TaskSequence", "fig2"]

KIND_COLORS = {"text": "#4c72b0", "vit": "#55a868", "vae": "#dd8452", "pad": "#c8c8c8"}
KIND_LEGEND = {
    "text": "text tokens (und. branch)",
    "vit": "ViT image tokens (und. branch)",
    "vae": "noisy VAE latents (gen. branch)",
    "pad": "padding",
}
# "trained" in a red unlike every token kind, so the panel does not read as one of them.
STATE_COLORS = {"trained": "#c44e52", "frozen": "#c9dced", "unused": "#f2f2f2"}
BOUNDARY = "#404040"
LABEL_SIZE = FONT  # pt, split labels
CHAR_WIDTH = 0.58  # average glyph width in em (DejaVu Sans), for label placement
TASK_TITLE = FONT + 1  # pt, the title over each task's column
LEVEL_PT = 11  # height of one label level above the strip, in points


@dataclass(frozen=True)
class SplitSpan:
    """One split of a packed row: ``kind`` (text / vit / vae / pad), its token range
    ``[start, start + length)``, a label such as ``"ViT 4x4"``, and whether it carries loss."""

    kind: str
    start: int
    length: int
    label: str
    loss: bool = False


@dataclass(frozen=True)
class TaskSequence:
    """The first sample of one task's packed batch.

    Attributes:
        task: ``und`` / ``gen`` / ``uncond``; title: a caption for it.
        splits: the sample's splits in order, trailing padding last; lengths sum to L.
        token_kind: (L,) int codes of ``PackedBatch.token_kind``; ``kind_names`` names them.
        attention_mask: (L, L) bool, True where query (row) may attend key (column).
        position_ids: (L,) int RoPE positions (one per image block).
        batch_shape: (B, L) of the packed batch the sample came from.
    """

    task: str
    title: str
    splits: tuple[SplitSpan, ...]
    token_kind: np.ndarray
    kind_names: dict[int, str]
    attention_mask: np.ndarray
    position_ids: np.ndarray
    batch_shape: tuple[int, int]


def _mask_image(seq: TaskSequence) -> np.ndarray:
    """(L, L, 3) RGB: white where attention is masked, else the colour of the key's kind."""
    names = [seq.kind_names[int(c)] for c in seq.token_kind]
    key_rgb = np.array([to_rgb(KIND_COLORS[n]) for n in names])  # (L, 3)
    image = np.ones((*seq.attention_mask.shape, 3))
    rows, cols = np.nonzero(seq.attention_mask)
    image[rows, cols] = key_rgb[cols]
    return image


def _draw_mask(ax: Axes, seq: TaskSequence) -> None:
    length = len(seq.token_kind)
    ax.imshow(
        _mask_image(seq),
        interpolation="nearest",
        aspect="auto",
        extent=(-0.5, length - 0.5, length - 0.5, -0.5),
    )
    for span in seq.splits[1:]:  # boundaries between splits, on both axes
        ax.axvline(span.start - 0.5, color=BOUNDARY, lw=0.6)
        ax.axhline(span.start - 0.5, color=BOUNDARY, lw=0.6)
    ax.set_xlabel("key token", fontsize=FONT + 0.5)
    ax.set_ylabel("query token", fontsize=FONT + 0.5)
    ax.tick_params(labelsize=FONT)


def _text_width(ax: Axes, text: str, fontsize: float) -> float:
    """Approximate width of ``text`` as a fraction of ``ax``'s width (no renderer needed)."""
    ax_inches = ax.get_position().width * ax.figure.get_figwidth()
    return len(text) * fontsize * CHAR_WIDTH / 72 / ax_inches


def _free_level(taken: list[list[tuple[float, float]]], lo: float, hi: float) -> int:
    """The lowest label level above the strip where ``[lo, hi]`` overlaps no label (a new
    level if none), marked as taken."""
    gap = 0.01  # axes fraction kept between neighbouring labels
    for level, row in enumerate(taken):
        if all(lo > b + gap or hi < a - gap for a, b in row):
            row.append((lo, hi))
            return level
    taken.append([(lo, hi)])
    return len(taken) - 1


def _label_inside(ax: Axes, span: SplitSpan, text: str, center: float) -> None:
    # A box of the split's colour keeps the label readable over the loss hatching.
    box = {"facecolor": KIND_COLORS[span.kind], "edgecolor": "none", "pad": 1.0}
    color = "black" if span.kind == "pad" else "white"
    ax.text(
        center,
        0.5,
        text,
        transform=ax.transAxes,
        ha="center",
        va="center",
        fontsize=LABEL_SIZE,
        color=color,
        fontweight="bold",
        bbox=box,
    )


def _label_above(ax: Axes, text: str, center: float, lo: float, level: int) -> None:
    """``text`` starting at ``lo`` (axes fraction), ``level`` rows above the strip, with a
    leader line down to the split's centre."""
    width = _text_width(ax, text, LABEL_SIZE)
    leader = {"arrowstyle": "-", "lw": 0.6, "color": BOUNDARY, "shrinkA": 0, "shrinkB": 0}
    ax.annotate(
        text,
        xy=(center, 1.0),
        xycoords="axes fraction",
        xytext=(lo + width / 2, 3 + LEVEL_PT * level),
        textcoords=("axes fraction", "offset points"),
        ha="center",
        va="bottom",
        fontsize=LABEL_SIZE,
        arrowprops=leader,
    )


def _draw_strip(ax: Axes, seq: TaskSequence) -> int:
    """The splits as coloured boxes (hatched where a loss is taken), each labelled with its
    token count: inside the box where the label fits, else above it on the first free level.
    Returns the number of label levels used above the strip."""
    length = len(seq.token_kind)
    taken: list[list[tuple[float, float]]] = []
    for span in seq.splits:
        hatch = "////" if span.loss else None
        ax.add_patch(
            Rectangle(
                (span.start - 0.5, 0),
                span.length,
                1,
                hatch=hatch,
                lw=0.8,
                facecolor=KIND_COLORS[span.kind],
                edgecolor="white",
            )
        )
        text, center = f"{span.label} ({span.length})", (span.start + span.length / 2) / length
        width = _text_width(ax, text, LABEL_SIZE)
        if width * 1.1 < span.length / length:
            _label_inside(ax, span, text, center)
        else:
            lo = min(max(center - width / 2, 0.0), 1.0 - width)  # keep the label over the axes
            _label_above(ax, text, center, lo, _free_level(taken, lo, lo + width))
    ax.set_ylim(0, 1)
    ax.set_yticks([])
    ax.tick_params(labelbottom=False, bottom=False)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    return len(taken)


def _draw_positions(ax: Axes, seq: TaskSequence) -> None:
    """RoPE position per token: a whole image block shares one position."""
    pos = seq.position_ids
    ax.step(np.arange(len(pos)), pos, where="mid", color=BOUNDARY, lw=1)
    ax.set_ylabel("RoPE\npos.", fontsize=FONT, rotation=0, ha="right", va="center")
    ax.tick_params(labelbottom=False, labelsize=FONT - 0.5)
    ax.set_ylim(-0.5, max(1, int(pos.max())) * 1.1)


def _draw_task(fig: Figure, cell, seq: TaskSequence) -> None:
    grid = cell.subgridspec(3, 1, height_ratios=(0.3, 0.55, 4.2), hspace=0.08)
    mask_ax = fig.add_subplot(grid[2])
    strip_ax = fig.add_subplot(grid[0], sharex=mask_ax)
    pos_ax = fig.add_subplot(grid[1], sharex=mask_ax)
    _draw_mask(mask_ax, seq)
    mask_ax.set_xlim(-0.5, len(seq.token_kind) - 0.5)
    levels = _draw_strip(strip_ax, seq)
    _draw_positions(pos_ax, seq)
    # the title may reach into the gaps beside its column
    width = strip_ax.get_position().width * fig.get_figwidth() + 0.35
    chars = int(width * 72 / (TASK_TITLE * CHAR_WIDTH))
    length = f"L\u00a0=\u00a0{seq.batch_shape[1]}"  # no-break spaces: "L = 742" stays whole
    title = f"{seq.title}\nfirst of {seq.batch_shape[0]} packed samples, {length}"
    strip_ax.set_title(wrap(title, chars), fontsize=TASK_TITLE, pad=6 + LEVEL_PT * levels)


def _draw_groups(ax: Axes, groups: pd.DataFrame) -> None:
    """The stage x weight-group table as a coloured grid with the state written in each cell."""
    states = groups.to_numpy(str)
    colors = np.array([[to_rgb(STATE_COLORS.get(s, "#888888")) for s in row] for row in states])
    ax.imshow(colors, aspect="auto")
    for (r, c), state in np.ndenumerate(states):
        trained = state == "trained"
        ax.text(
            c,
            r,
            state,
            ha="center",
            va="center",
            fontsize=FONT,
            fontweight="bold" if trained else "normal",
            color="white" if trained else "black",
        )
    ax.set_xticks(range(groups.shape[1]), [c.replace(" (", "\n(") for c in groups.columns])
    rows = [str(r).replace(" (", "\n(") for r in groups.index]  # long group names on 2 lines
    ax.set_yticks(range(groups.shape[0]), rows, fontsize=FONT)
    ax.tick_params(top=True, labeltop=True, bottom=False, labelbottom=False, labelsize=FONT)
    ax.set_xticks(np.arange(groups.shape[1] + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(groups.shape[0] + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="white", lw=2)
    ax.tick_params(which="minor", length=0)
    ax.set_title("weights trained per stage", fontsize=TASK_TITLE, pad=8)


def _legend(fig: Figure, kinds: set[str], area: tuple[float, float, float, float]) -> None:
    """The token kinds, loss hatching and masked cells, one entry a line, centred in
    ``area`` (figure fraction: left, bottom, width, height)."""
    handles = [
        Patch(facecolor=KIND_COLORS[k], label=KIND_LEGEND[k]) for k in KIND_LEGEND if k in kinds
    ]
    handles.append(
        Patch(
            facecolor="#999999",
            hatch="////",
            edgecolor="white",
            label="split with loss (CE / flow)",
        )
    )
    handles.append(Patch(facecolor="white", edgecolor="#999999", label="masked (not attended)"))
    fig.legend(
        handles=handles,
        loc="center",
        bbox_to_anchor=area,
        ncol=1,
        fontsize=FONT + 0.5,
        frameon=False,
    )


def fig2(
    plans: Mapping[str, TaskSequence],
    groups: pd.DataFrame,
    out_path: str | Path,
) -> Figure:
    """Paper Fig. 2 from the training code: sequence layouts, attention masks, stage freezing.
    The tasks side by side across the page; under them the stage table and the legend.

    Args:
        plans: task -> its first packed sample (``example_packed_batches(...)``), drawn left to
            right in the mapping's order.
        groups: weight groups (rows) x stages (columns) of ``trained`` / ``frozen`` / ``unused``
            (``trainable_groups_by_stage()``).
        out_path: PNG written here.
    """
    if not plans:
        raise ValueError("fig2: no task sequences to draw")
    n = len(plans)
    title = wrap(
        "UniX: one packed sequence per task, its attention mask, and what each stage trains "
        "(drawn from the packing code and the stage configs)",
        int(PAGE_WIDTH * 72 / (TITLE_FONT * 0.6)),
    )
    fig = Figure(figsize=(PAGE_WIDTH, 8.2))
    outer = fig.add_gridspec(
        2, 1, height_ratios=(4.6, 1.9), hspace=0.42, left=0.07, right=0.99, bottom=0.02, top=0.8
    )
    tasks = outer[0].subgridspec(1, n, wspace=0.45)
    for i, seq in enumerate(plans.values()):
        _draw_task(fig, tasks[i], seq)
    # The stage table's row labels sit in the blank column on its left; the legend on its right.
    labels_w = max(text_inches(str(r).replace(" (", "\n(")) for r in groups.index) + 0.15
    bottom = outer[1].subgridspec(1, 3, width_ratios=(labels_w, 2.6, 7.3 - labels_w - 2.6))
    _draw_groups(fig.add_subplot(bottom[1]), groups)
    box = bottom[2].get_position(fig)
    _legend(fig, {s.kind for seq in plans.values() for s in seq.splits}, box.bounds)
    fig.suptitle(title, fontsize=TITLE_FONT, y=0.99, va="top")
    return save(fig, out_path)
