"""Figures of generated images: grids with row titles and optional column titles."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from unixlib.viz.common import save


def image_rows(
    rows: Mapping[str, Sequence[np.ndarray]],
    out_path: Path,
    title: str | None = None,
    col_titles: Sequence[str] | None = None,
    cell: float = 1.6,
) -> Figure:
    """Rows of grayscale images in [0, 1], each row titled by its key (e.g. a prompt, a step).

    Args:
        rows: row title -> images (H, W); rows may differ in length.
        col_titles: optional title above each column of the first row.
    """
    if not rows or any(len(v) == 0 for v in rows.values()):
        raise ValueError("image_rows: every row needs at least one image")
    n_rows, n_cols = len(rows), max(len(v) for v in rows.values())
    fig = Figure(figsize=(cell * n_cols, (cell + 0.2) * n_rows + (0.4 if title else 0)))
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for r, (name, images) in enumerate(rows.items()):
        for c in range(n_cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(images):
                ax.axis("off")
                continue
            img = np.asarray(images[c], dtype=np.float32)
            if img.ndim != 2:
                raise ValueError(f"image_rows: row {name!r} image {c} has shape {img.shape}")
            ax.imshow(img, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
            if r == 0 and col_titles is not None and c < len(col_titles):
                ax.set_title(col_titles[c], fontsize=8)
        axes[r, 0].set_ylabel(
            name.replace("_", " "), fontsize=8, rotation=0, ha="right", va="center"
        )
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save(fig, out_path)
