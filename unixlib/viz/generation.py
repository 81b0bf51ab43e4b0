"""Figures of images: titled rows of grayscale images, laid out to fit a page.

A row is a line of images with its title on the left (a prompt, a training step, a finding).
Rows longer than ``max_cols`` are wrapped into bands stacked one under the other (every band
repeats the row titles and carries its own column titles); many short rows are set in groups
side by side (a gallery of 15 findings becomes two columns of rows). The layout is chosen to
give the images the largest size that fits ``PAGE_WIDTH`` x ``MAX_HEIGHT``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from unixlib.viz.common import (
    CHAR_EM,
    FONT,
    MAX_HEIGHT,
    PAGE_WIDTH,
    TITLE_FONT,
    save,
    text_inches,
    wrap,
)

LABEL_CHARS = 16  # row titles on the left wrap at this many characters
COL_CHARS = 14  # column titles wrap at this many characters
GAP = 0.05  # inches between neighbouring images
GROUP_GAP = 0.3  # inches between groups of rows set side by side
BAND_GAP = 0.12  # inches above every band of wrapped columns but the first
LINE_H = FONT * 1.25 / 72  # inches per line of FONT-sized text
TITLE = 0.35  # inches for a one-line figure title
LABEL_PAD = 0.08  # inches between a row title on the left and its first image


@dataclass
class _Line:
    """One drawn line of images: its row title, its images, the column titles above it."""

    name: str
    images: list[np.ndarray]
    titles: list[str] | None = None
    band_start: bool = False

    def head(self, above: bool) -> float:
        """Inches above the images: band gap, column titles, and the row title if above."""
        cols = 0.0
        if self.titles:
            cols = max(wrap(t, COL_CHARS).count("\n") + 1 for t in self.titles) * LINE_H + 0.04
        return BAND_GAP * self.band_start + cols + (LINE_H + 0.03) * above


@dataclass
class _Plan:
    """Where everything goes: the groups of lines set side by side, the image size (inches),
    the width kept left of each group for row titles, and whether row titles sit above."""

    groups: list[list[_Line]]
    cell: float
    label_w: float
    above: bool
    per: int

    @property
    def group_w(self) -> float:
        return self.label_w + self.per * self.cell + (self.per - 1) * GAP

    def height(self, group: list[_Line], cell: float | None = None) -> float:
        """Inches from the top of ``group``'s first line to the bottom of its last image."""
        cell = self.cell if cell is None else cell
        heads = sum(line.head(self.above) for line in group)
        return heads + len(group) * cell + (len(group) - 1) * GAP


def _lines(
    rows: Mapping[str, Sequence[np.ndarray]], col_titles: Sequence[str] | None, per: int
) -> list[_Line]:
    """Every row cut into bands of ``per`` columns: all rows of band 0, then of band 1, ...
    The first line of each band carries that band's column titles."""
    n_cols = max(len(v) for v in rows.values())
    lines = []
    for start in range(0, n_cols, per):
        first = True
        for name, images in rows.items():
            part = list(images[start : start + per])
            if not part:
                continue
            titles = list(col_titles[start : start + per]) if col_titles and first else None
            lines.append(_Line(name, part, titles, band_start=first and start > 0))
            first = False
    return lines


def _groups(lines: list[_Line], g: int, col_titles: Sequence[str] | None) -> list[list[_Line]]:
    """``lines`` in ``g`` groups set side by side; each group's first line repeats the
    column titles so every group reads on its own."""
    size = math.ceil(len(lines) / g)
    groups = [lines[i : i + size] for i in range(0, len(lines), size)]
    for group in groups[1:]:
        if col_titles and group[0].titles is None:
            n = len(group[0].images)
            group[0] = _Line(group[0].name, group[0].images, list(col_titles[:n]))
    return groups


def _plan(
    lines: list[_Line], per: int, left_w: float, cell: float, top: float, col_titles
) -> _Plan:
    """The layout that gives the largest images on the page: row titles on the left or
    above, in 1 to 3 groups side by side (wrapped bands stay in one). Among images within
    10 % of the largest, the shortest figure wins (a grid rather than a tall strip)."""
    options = []
    wrapped = any(line.band_start for line in lines)
    longest = max(text_inches(line.name.replace("_", " ")) for line in lines)
    for above in (False, True):
        for g in range(1, min(1 if wrapped else 3, len(lines)) + 1):
            plan = _Plan(_groups(lines, g, col_titles), 0.0, 0.0 if above else left_w, above, per)
            across = PAGE_WIDTH - g * plan.group_w - (g - 1) * GROUP_GAP
            rows = max(len(grp) for grp in plan.groups)
            fixed = max(plan.height(grp) for grp in plan.groups)
            plan.cell = min(cell, across / (g * per), (MAX_HEIGHT - top - fixed) / rows)
            if not above or longest <= plan.group_w:  # a title above must fit on one line
                options.append(plan)
    best = max(p.cell for p in options)
    return min(
        (p for p in options if p.cell >= 0.9 * best),
        key=lambda p: max(p.height(grp) for grp in p.groups),
    )


def _draw_line(fig: Figure, line: _Line, plan: _Plan, x: float, top: float) -> None:
    """One line of images; ``x`` is the left edge of its first image and ``top`` the top of
    the line (band gap and titles included), in inches from the figure's top left. Top down:
    column titles, the row title when above, the images."""
    width, height = fig.get_size_inches()
    cell, bottom = plan.cell, top + line.head(plan.above) + plan.cell  # of the images
    cols_bottom = top + line.head(False) - 0.02
    name = line.name.replace("_", " ")
    if plan.above:
        fig.text(x / width, 1 - (bottom - cell - 0.03) / height, name, fontsize=FONT, va="bottom")
    for c, img in enumerate(line.images):
        left = x + c * (cell + GAP)
        ax = fig.add_axes((left / width, 1 - bottom / height, cell / width, cell / height))
        ax.set_xticks([])
        ax.set_yticks([])
        ax.imshow(img, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        if line.titles is not None and c < len(line.titles):
            text = wrap(line.titles[c], COL_CHARS)
            xy = ((left + cell / 2) / width, 1 - cols_bottom / height)
            fig.text(*xy, text, fontsize=FONT, ha="center", va="bottom")
        if c == 0 and not plan.above:
            label = wrap(name, LABEL_CHARS)
            ax.set_ylabel(label, fontsize=FONT, rotation=0, ha="right", va="center", labelpad=4)


def image_rows(
    rows: Mapping[str, Sequence[np.ndarray]],
    out_path: Path,
    title: str | None = None,
    col_titles: Sequence[str] | None = None,
    cell: float = 1.6,
    max_cols: int = 8,
) -> Figure:
    """Rows of grayscale images in [0, 1], each row titled by its key (e.g. a prompt, a step).

    Args:
        rows: row title -> images (H, W); rows may differ in length.
        out_path: where the PNG is written (and a PDF beside it).
        title: optional figure title.
        col_titles: optional title above each column of the first row (of every band).
        cell: the largest image size in inches (images shrink to fit the page).
        max_cols: rows with more images are wrapped into bands of at most this many columns,
            stacked vertically; the columns are then numbered when ``col_titles`` is not given.

    Returns:
        The matplotlib Figure (also saved to ``out_path``); one axes per image.
    """
    if not rows or any(len(v) == 0 for v in rows.values()):
        raise ValueError("image_rows: every row needs at least one image")
    checked = {}
    for name, images in rows.items():
        checked[name] = [np.asarray(img, dtype=np.float32) for img in images]
        for c, img in enumerate(checked[name]):
            if img.ndim != 2:
                raise ValueError(f"image_rows: row {name!r} image {c} has shape {img.shape}")
    n_cols = max(len(v) for v in checked.values())
    bands = math.ceil(n_cols / max_cols)
    per = math.ceil(n_cols / bands)
    if bands > 1 and col_titles is None:
        col_titles = [f"#{i + 1}" for i in range(n_cols)]
    lines = _lines(checked, col_titles, per)
    left_w = LABEL_PAD + max(text_inches(wrap(n.replace("_", " "), LABEL_CHARS)) for n in rows)
    top = TITLE if title else 0.05
    plan = _plan(lines, per, left_w, cell, top, col_titles)
    width = len(plan.groups) * plan.group_w + (len(plan.groups) - 1) * GROUP_GAP
    if title:  # wrapped to the figure's width; every extra line pushes the images down
        title = wrap(title, int(width * 72 / (TITLE_FONT * CHAR_EM)))
        top += title.count("\n") * TITLE_FONT * 1.3 / 72
    fig = Figure(figsize=(width, top + max(plan.height(g) for g in plan.groups)))
    for k, group in enumerate(plan.groups):
        x, y = plan.label_w + k * (plan.group_w + GROUP_GAP), top
        for line in group:
            _draw_line(fig, line, plan, x, y)
            y += line.head(plan.above) + plan.cell + GAP
    if title:
        fig.suptitle(title, fontsize=TITLE_FONT, y=1 - 0.06 / fig.get_figheight(), va="top")
    return save(fig, out_path)
