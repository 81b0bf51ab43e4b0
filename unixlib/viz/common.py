"""What every figure shares: headless rendering and saving."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

if not os.environ.get("DISPLAY") and "MPLBACKEND" not in os.environ:
    matplotlib.use("Agg")  # headless: render to files only (notebooks set their own backend)

from matplotlib.figure import Figure

DPI = 120


def save(fig: Figure, out_path: Path) -> Figure:
    """Write ``fig`` as PNG (parent folders created) and return it, for inline display."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=DPI, bbox_inches="tight")
    return fig
