"""Every figure of the project; one function per figure.

Figures take results (arrays, tables, metrics), never models; each saves a PNG to the given
path and a PDF beside it (``viz.common.save``, print resolution) and returns the matplotlib
``Figure`` (shown inline when it ends a notebook cell). Statistical plots use seaborn.
"""

from unixlib.viz.architecture import fig2
from unixlib.viz.comparison import fig1_comparison
from unixlib.viz.data import (
    cleaning_examples,
    cleaning_status,
    label_agreement,
    label_distribution,
    report_lengths,
    synth_gallery,
)
from unixlib.viz.generation import image_rows
from unixlib.viz.training import loss_curves, vae_reconstructions

__all__ = [
    "cleaning_examples",
    "cleaning_status",
    "fig1_comparison",
    "fig2",
    "image_rows",
    "label_agreement",
    "label_distribution",
    "loss_curves",
    "report_lengths",
    "synth_gallery",
    "vae_reconstructions",
]
