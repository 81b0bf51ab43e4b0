"""What every figure shares: headless rendering and saving (PNG and PDF, print resolution)."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

if not os.environ.get("DISPLAY") and "MPLBACKEND" not in os.environ:
    matplotlib.use("Agg")  # headless: render to files only (notebooks set their own backend)

from matplotlib.figure import Figure

DPI = 300  # print resolution of the PNG (and of the raster images inside the PDF)
FORMATS = ("png", "pdf")  # PNG for the notebooks and README, PDF (vector) for papers


def save(fig: Figure, out_path: Path) -> Figure:
    """Write ``fig`` as ``out_path`` (a ``.png``) and, beside it, the same figure as ``.pdf``
    (parent folders created); returns it, for inline display."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    for fmt in FORMATS:
        fig.savefig(out_path.with_suffix(f".{fmt}"), dpi=DPI, bbox_inches="tight", format=fmt)
    return fig
