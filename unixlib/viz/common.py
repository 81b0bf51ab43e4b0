"""What every figure shares: headless rendering, saving (PNG and PDF, print resolution),
showing the figures inline in a notebook, and the page they are drawn for (width, height,
smallest text, label wrapping)."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import matplotlib

if not os.environ.get("DISPLAY") and "MPLBACKEND" not in os.environ:
    matplotlib.use("Agg")  # headless: render to files only (notebooks set their own backend)

from matplotlib.figure import Figure

DPI = 300  # print resolution of the PNG (and of the raster images inside the PDF)
INLINE_DPI = 100  # a figure shown in a notebook: sharp on screen, small in the .ipynb
FORMATS = ("png", "pdf")  # PNG for the notebooks and README, PDF (vector) for papers

# The page every figure is drawn for: a text width of a paper or a notebook at 100 %. Figures
# are drawn at most PAGE_WIDTH wide so that text set in points keeps its size on the page
# (2,250 px at DPI; the saved, tightly cropped file stays under 2,400 px = 8 in).
PAGE_WIDTH = 7.5  # inches
MAX_HEIGHT = 10.0  # inches (3,000 px): taller figures become grids
FONT = 7.5  # pt: tick labels, legends and annotations (>= 7 pt once on the page)
TITLE_FONT = 9.5  # pt: panel titles and suptitles
CHAR_EM = 0.6  # average glyph width in em (DejaVu Sans ~0.55): planning text widths
MONO_FONT = 7.0  # pt: report text in a monospaced font (60 characters in 3.5 in)
MONO_EM = 0.602  # glyph advance of DejaVu Sans Mono, in em


def wrap(text: str, width: int) -> str:
    """``text`` on lines of at most ``width`` characters, words kept whole (never truncated:
    a word longer than ``width`` gets a line of its own); line breaks already in it stay."""
    return "\n".join(
        textwrap.fill(line, width, break_long_words=False, break_on_hyphens=False)
        for line in str(text).split("\n")
    )


def text_inches(text: str, fontsize: float = FONT) -> float:
    """Approximate width in inches of the longest line of ``text`` at ``fontsize`` points
    (no renderer needed, so layouts can be planned before drawing)."""
    longest = max((len(line) for line in str(text).split("\n")), default=0)
    return longest * fontsize * CHAR_EM / 72


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
