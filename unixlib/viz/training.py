"""Figures of the training stages (notebooks 02-04): loss curves and VAE reconstructions.

Each function takes results (arrays, metric tables), never a model; builds a matplotlib
``Figure`` without touching pyplot's global state; saves a PNG to ``out_path`` and returns the
figure (a notebook shows it inline by leaving it as a cell's value).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from unixlib.viz.common import save
from unixlib.viz.generation import image_rows

__all__ = ["loss_curves", "vae_reconstructions"]


def vae_reconstructions(
    originals: np.ndarray,
    recons: np.ndarray,
    out_path: str | Path,
    psnr: float | None = None,
) -> Figure:
    """Originals (top row) above their VAE reconstructions (bottom row), gray in [0, 1].

    Args:
        originals, recons: ``(N, H, W)`` arrays in [0, 1] (or torch tensors), same shape.
        out_path: PNG written here.
        psnr: shown in the title when given (dB, e.g. ``eval.vae_quality.reconstruction_metrics(...)["psnr"]``).
    """
    originals, recons = np.asarray(originals), np.asarray(recons)
    if originals.ndim != 3 or originals.shape != recons.shape or len(originals) == 0:
        raise ValueError(
            f"expected two (N >= 1, H, W) arrays of one shape, got {originals.shape} and "
            f"{recons.shape}"
        )
    title = "VAE reconstructions"
    if psnr is not None:
        title += f" (held-out PSNR {psnr:.1f} dB)"
    rows = {"original": list(originals), "reconstruction": list(recons)}
    # each original above its reconstruction; more than 8 pairs wrap into bands
    return image_rows(rows, Path(out_path), title=title, cell=1.4)


def _series(
    metrics: Mapping[str, Sequence[tuple[int, float]]] | pd.DataFrame,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Metric name -> (steps, values); a DataFrame needs a ``step`` column, the rest are terms."""
    if isinstance(metrics, pd.DataFrame):
        if "step" not in metrics.columns:
            raise ValueError(f"metrics table needs a 'step' column, has {list(metrics.columns)}")
        terms = [c for c in metrics.columns if c != "step"]
        return {
            str(c): (metrics["step"].to_numpy(float), metrics[c].to_numpy(float)) for c in terms
        }
    out = {}
    for name, points in metrics.items():
        pairs = np.asarray(points, dtype=float).reshape(-1, 2)  # (n, 2) = (step, value)
        out[name] = (pairs[:, 0], pairs[:, 1])
    return out


def loss_curves(
    metrics: Mapping[str, Sequence[tuple[int, float]]] | pd.DataFrame,
    out_path: str | Path,
    title: str,
) -> Figure:
    """One line per loss term against the training step; log-scale y when all values are > 0.

    Args:
        metrics: ``{term: [(step, value), ...]}``, or a table with a ``step`` column and one
            column per term (e.g. ``pd.read_json(run / "metrics.jsonl", lines=True)``, minus
            columns that are not losses, such as ``lr``).
        out_path: PNG written here.
        title: the figure title (say which stage and profile).
    """
    series = {k: v for k, v in _series(metrics).items() if np.isfinite(v[1]).any()}
    if not series:
        raise ValueError("no loss term with a finite value to plot")
    fig = Figure(figsize=(6.4, 3.6))
    ax = fig.subplots()
    for name, (steps, values) in series.items():
        ax.plot(steps, values, label=name, linewidth=1.2, marker="." if len(steps) < 20 else None)
    if all((v[np.isfinite(v)] > 0).all() for _, v in series.values()):
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return save(fig, out_path)
