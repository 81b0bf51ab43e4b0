"""How good the stage-2 VAE is: reconstruction error and how much of each finding it keeps.

Measures of :mod:`unixlib.train.vae_train`'s autoencoder (notebook 03). They live in ``eval``
(which may import ``train``; ``train`` never imports ``eval``).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from unixlib.eval.finding_contrast import finding_contrast
from unixlib.model.vae import VAEWrapper
from unixlib.model.vae_batches import as_image_batch, reconstruct


def reconstruction_metrics(
    vae: VAEWrapper, images: np.ndarray | Tensor, batch_size: int = 64
) -> dict[str, float]:
    """Reconstruction quality on (held-out) images ``(N, 1, H, W)`` in [0, 1].

    Returns ``{"mse", "psnr", "psnr_per_image", "n"}``: ``mse`` is the mean squared error in
    [0, 1] pixel units over every pixel; ``psnr = 10 log10(1 / mse)`` (dB, peak 1);
    ``psnr_per_image`` is the mean of the images' own PSNRs (less dominated by hard images).
    """
    x = as_image_batch(images)
    err = (reconstruct(vae, x, batch_size) - x).double().pow(2).mean(dim=(1, 2, 3))  # (N,)
    mse = err.mean().item()
    per_image = (10 * torch.log10(1 / err.clamp_min(1e-12))).mean().item()
    return {
        "mse": mse,
        "psnr": 10 * math.log10(1 / max(mse, 1e-12)),
        "psnr_per_image": per_image,
        "n": float(len(x)),
    }


def finding_retention(
    vae: VAEWrapper, references: dict[str, np.ndarray], normal: str = "normal"
) -> pd.DataFrame:
    """How much of each finding survives the autoencoder (a good PSNR can hide a lost one).

    ``references``: title -> ``(H, W)`` renderings of one patient with and without findings
    (``fig4.synthetic_prompts``). Each is reconstructed, and
    :func:`~unixlib.eval.finding_contrast.finding_contrast` compares the reconstructions with the
    references: ``ratio`` 1 = the finding's whole difference from ``normal`` is kept, 0 = none.
    """
    titles = list(references)
    recon = reconstruct(vae, np.stack([references[t] for t in titles])[:, None])  # (N, 1, H, W)
    reconstructed = {t: recon[i : i + 1, 0].numpy() for i, t in enumerate(titles)}  # (1, H, W)
    return finding_contrast(reconstructed, references, normal)
