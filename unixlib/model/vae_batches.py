"""Running the frozen VAE over sets of images: encode them to latents, or reconstruct them.

Used to cache the training split's latents (``train.vae_train.cache_latents``) and to measure
what the VAE keeps (``eval.vae_quality``). Images are gray ``(N, 1, H, W)`` in [0, 1]; the VAE
sees them in [-1, 1].
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from unixlib.config.progress import bar
from unixlib.model.vae import VAEWrapper


def as_image_batch(images: np.ndarray | Tensor, size: int | None = None) -> Tensor:
    """Check and convert images to a float32 CPU tensor ``(N, 1, H, W)`` in [0, 1]."""
    x = torch.as_tensor(images).detach().to("cpu", torch.float32)
    if x.dim() != 4 or x.shape[1] != 1 or x.shape[0] == 0:
        raise ValueError(f"expected images (N >= 1, 1, H, W), got shape {tuple(x.shape)}")
    if size is not None and tuple(x.shape[-2:]) != (size, size):
        raise ValueError(f"expected {size}x{size} images, got {tuple(x.shape[-2:])}")
    if not torch.isfinite(x).all() or x.min() < 0 or x.max() > 1:
        raise ValueError("image values must be finite and in [0, 1] (divide 8-bit data by 255)")
    return x


def _device_of(vae: VAEWrapper) -> torch.device:
    return next(vae.autoencoder.parameters()).device


def encode_dataset(
    vae: VAEWrapper,
    images: np.ndarray | Tensor,
    batch_size: int = 64,
    generator: torch.Generator | None = None,
    desc: str = "encode latents",
) -> Tensor:
    """Normalised latents ``(N, C, H/f, W/f)`` (float32, CPU) of images ``(N, 1, H, W)`` in [0, 1].

    No gradients; batched on the VAE's device. ``generator`` only matters when the VAE samples
    its posterior (``sample_posterior=True``).
    """
    x = as_image_batch(images)
    device = _device_of(vae)
    chunks = []
    with torch.no_grad():
        for batch in bar(x.split(batch_size), desc=desc, unit="batch"):
            chunks.append(vae.encode(batch.to(device) * 2 - 1, generator=generator).float().cpu())
    return torch.cat(chunks)


def reconstruct(vae: VAEWrapper, images: np.ndarray | Tensor, batch_size: int = 64) -> Tensor:
    """Encode and decode ``(N, 1, H, W)`` images in [0, 1]; returns the same shape, clamped."""
    device = _device_of(vae)
    latents = encode_dataset(vae, images, batch_size, desc="reconstruct: encode")
    chunks = []
    with torch.no_grad():
        for z in bar(latents.split(batch_size), desc="reconstruct: decode", unit="batch"):
            pixels = vae.decode(z.to(device)).float().cpu()  # (B, 1, H, W) in ~[-1, 1]
            chunks.append(((pixels + 1) / 2).clamp(0, 1))
    return torch.cat(chunks)
