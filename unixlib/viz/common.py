"""What every figure shares: headless rendering, saving (PNG and PDF, print resolution), and
showing the figures inline in a notebook."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

if not os.environ.get("DISPLAY") and "MPLBACKEND" not in os.environ:
    matplotlib.use("Agg")  # headless: render to files only (notebooks set their own backend)

from matplotlib.figure import Figure

DPI = 300  # print resolution of the PNG (and of the raster images inside the PDF)
INLINE_DPI = 100  # a figure shown in a notebook: sharp on screen, small in the .ipynb
FORMATS = ("png", "pdf")  # PNG for the notebooks and README, PDF (vector) for papers


def save(fig: Figure, out_path: Path) -> Figure:
    """Write ``fig`` as ``out_path`` (a ``.png``) and, beside it, the same figure as ``.pdf``
    (parent folders created); returns it, for inline display."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    for fmt in FORMATS:
        fig.savefig(out_path.with_suffix(f".{fmt}"), dpi=DPI, bbox_inches="tight", format=fmt)
    return fig


def show_inline() -> bool:
    """Let IPython display our ``Figure`` objects inline, as PNG; True when it could.

    viz builds ``matplotlib.figure.Figure`` objects without pyplot (no global state, no
    backend), and IPython only knows how to show a figure when a pyplot backend registered a
    formatter for it. So a cell that ends with a figure would print ``<Figure size ...>``;
    this registers the formatter itself, once, in whatever kernel imports viz (papermill's,
    JupyterLab's). Outside IPython it does nothing.
    """
    try:
        from IPython import get_ipython
        from IPython.core.pylabtools import print_figure
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None or not hasattr(shell, "display_formatter"):
        return False
    png = shell.display_formatter.formatters["image/png"]
    png.for_type(Figure, lambda fig: print_figure(fig, "png", bbox_inches="tight", dpi=INLINE_DPI))
    return True


show_inline()
