"""Obtain the VAE of stage 2 (notebook 03) when no pretrained one exists: train a small one.

The paper uses the pretrained latent-diffusion kl-f16 autoencoder (loaded with
:func:`unixlib.model.vae_files.load_vae`). Profiles on SynthCXR have no such checkpoint, so
notebook 03 trains a tiny gray diffusers ``AutoencoderKL`` here, derives the latent
normalisation ``scale * (z - shift)`` from its own training latents (so the flow sees
zero-mean, unit-variance data, the role of the paper's 0.238092 / -0.201906), saves both, and
then encodes the dataset once (:func:`encode_dataset` + ``vae_files.save_latent_cache``).

Pixel convention: every function here takes images ``(N, 1, H, W)`` float in [0, 1] (what the
manifest's 8-bit PNGs hold) and maps them to [-1, 1] for the autoencoder, as
:class:`~unixlib.model.vae.VAEWrapper` expects.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from unixlib.config.device import resolve_device
from unixlib.config.progress import bar
from unixlib.data.sources.images import load_image
from unixlib.model.vae import VAEWrapper, build_autoencoder, latent_stats, vae_loss
from unixlib.model.vae import tiny_autoencoder_config as default_autoencoder_config
from unixlib.model.vae_batches import as_image_batch, encode_dataset
from unixlib.model.vae_files import LATENT_NORM_FILE, write_latent_norm
from unixlib.train.schedules import cosine_with_warmup

__all__ = [
    "VAETrainConfig",
    "VAETrainResult",
    "cache_latents",
    "load_image_stack",
    "train_vae",
]

METRICS_FILE = "metrics.jsonl"
TRAIN_CONFIG_FILE = "vae_train_config.json"


@dataclass
class VAETrainConfig:
    """How the small VAE is trained.

    The defaults are the smoke recipe: with the narrow autoencoder ``block_out_channels``
    ``[8, 16, 32, 64]``, no mid-block attention, on 3,000 SynthCXR images at 64 px, they took
    72 CPU-seconds on one thread (an estimated 40-50 s wall on two free cores) and reached
    25.9 dB PSNR on 300 held-out images: lungs, heart, mediastinum and large opacities are
    clear; thin devices and ribs are not (they need longer training).
    """

    image_size: int = 64  # side of the square training images (px); a multiple of downsample
    latent_channels: int = 4  # C of the latent grid (tiny preset: 4; paper kl-f16: 16)
    downsample: int = 8  # pixels per latent cell and side: 64 px -> an 8x8 grid of tokens
    steps: int = 480  # optimiser steps; PSNR still rises past this (600 x 16 images: ~27-28 dB)
    batch_size: int = 8  # images per step: on CPU, more small steps beat fewer large ones
    lr: float = 3e-3  # AdamW peak rate: a ~1M-parameter conv net with GroupNorm tolerates it
    warmup_steps: int = 20  # linear warm-up from 0, avoiding the large first updates of Adam
    min_lr_ratio: float = 0.1  # cosine decay to lr * this; a short run profits from annealing
    # Weight of KL(q(z|x) || N(0, I)), summed over a sample's latent elements. Small enough not
    # to blur reconstructions, large enough to keep latents bounded and the posterior smooth;
    # their scale is fixed afterwards by latent_stats anyway.
    kl_weight: float = 1e-5
    reconstruction: str = "l1"  # "l1" (as LDM's autoencoders) blurs edges less than "mse"
    grad_clip: float = 1.0  # max global grad norm; guards against a rare exploding batch
    stats_images: int = 1024  # training images encoded to estimate scale/shift (a sample suffices)
    seed: int = 0  # initial weights, batch order and posterior noise all derive from it
    log_every: int = 10  # steps between metrics.jsonl rows (the last step is always logged)
    device: str = "cpu"  # "cpu", "cuda", or "auto" (cuda when available)

    def __post_init__(self) -> None:
        positive = ("image_size", "latent_channels", "downsample", "steps", "batch_size")
        for name in (*positive, "log_every", "stats_images"):
            if getattr(self, name) < 1:
                raise ValueError(f"VAETrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.image_size % self.downsample:
            raise ValueError(
                f"image_size {self.image_size} is not a multiple of downsample {self.downsample}"
            )
        if self.lr <= 0 or self.kl_weight < 0 or not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(
                f"need lr > 0, kl_weight >= 0, 0 <= min_lr_ratio <= 1; got lr={self.lr}, "
                f"kl_weight={self.kl_weight}, min_lr_ratio={self.min_lr_ratio}"
            )
        if self.device not in ("cpu", "cuda", "auto"):
            raise ValueError(f"device must be 'cpu', 'cuda' or 'auto', got {self.device!r}")


@dataclass
class VAETrainResult:
    """What :func:`train_vae` produced; the files are under ``out_dir``."""

    vae: VAEWrapper  # frozen, normalised with (scale, shift); on the training device
    out_dir: Path
    scale: float
    shift: float
    metrics: list[dict[str, float]] = field(default_factory=list)  # the metrics.jsonl rows
    seconds: float = 0.0  # wall time of the optimisation loop (not the statistics or saving)


def load_image_stack(paths: Sequence[str | os.PathLike], size: int | None = None) -> np.ndarray:
    """Load gray images into one float32 array ``(N, 1, H, W)`` in [0, 1].

    Args:
        paths: image files (the manifest's ``image_path`` joined to its data directory).
        size: when given, every image must be ``size x size`` (the cache is already square).
    Raises:
        ``unixlib.data.sources.images.ImageError`` for an unreadable file; ValueError naming the first
        file whose shape differs from the first image's (or from ``size``).
    """
    if not paths:
        raise ValueError("no image paths given")
    images = []
    for path in paths:
        img = load_image(path)
        expected = (size, size) if size is not None else images[0].shape if images else img.shape
        if img.shape != expected:
            raise ValueError(f"{path}: image shape {img.shape} differs from expected {expected}")
        images.append(img)
    return np.stack(images)[:, None]


def _check_autoencoder_config(config: dict[str, Any], cfg: VAETrainConfig) -> None:
    levels = len(config.get("block_out_channels", ()))
    found = (config.get("in_channels"), config.get("out_channels"), config.get("latent_channels"))
    if found != (1, 1, cfg.latent_channels) or 2 ** (levels - 1) != cfg.downsample:
        raise ValueError(
            f"autoencoder config (in, out, latent channels)={found}, downsample 2**{levels - 1} "
            f"does not match the gray VAE of VAETrainConfig (1, 1, {cfg.latent_channels}), "
            f"downsample {cfg.downsample}"
        )


def train_vae(
    images: np.ndarray | Tensor,
    cfg: VAETrainConfig,
    out_dir: str | os.PathLike,
    autoencoder_config: dict[str, Any] | None = None,
) -> VAETrainResult:
    """Train a gray ``AutoencoderKL`` on ``images``, normalise its latents and save it.

    Args:
        images: training images ``(N, 1, image_size, image_size)`` float in [0, 1].
        cfg: the training recipe.
        out_dir: receives ``config.json`` + ``diffusion_pytorch_model.safetensors``
            (diffusers ``save_pretrained``), ``latent_norm.json`` (scale, shift, downsample,
            latent_channels), ``metrics.jsonl`` (step, loss, rec, kl, lr) and
            ``vae_train_config.json``; :func:`~unixlib.model.vae_files.load_vae` reads it back.
        autoencoder_config: ``AutoencoderKL`` arguments; default
            ``tiny_autoencoder_config(cfg.latent_channels, cfg.downsample)``.
    Returns:
        the trained, frozen VAE with its (scale, shift), the logged metrics and the wall time.
    Deterministic on CPU: the same images, config and seed give identical weights.
    """
    x = as_image_batch(images, cfg.image_size)
    config = autoencoder_config
    if config is None:
        config = default_autoencoder_config(cfg.latent_channels, cfg.downsample)
    _check_autoencoder_config(config, cfg)
    device = resolve_device(cfg.device)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / LATENT_NORM_FILE).unlink(missing_ok=True)  # a stale norm must not outlive its weights

    with torch.random.fork_rng(devices=[]):  # seed the initial weights without touching the
        torch.manual_seed(cfg.seed)  # caller's global RNG
        autoencoder = build_autoencoder(config)
    autoencoder = autoencoder.to(device).train()
    generator = torch.Generator().manual_seed(cfg.seed)  # batch order and posterior noise
    optimizer = torch.optim.AdamW(autoencoder.parameters(), lr=cfg.lr, weight_decay=0.0)
    scheduler = cosine_with_warmup(optimizer, cfg.warmup_steps, cfg.steps, cfg.min_lr_ratio)

    metrics: list[dict[str, float]] = []
    order = torch.empty(0, dtype=torch.long)
    start = time.perf_counter()
    with open(out / METRICS_FILE, "w") as log:
        for step in bar(range(1, cfg.steps + 1), desc="VAE training", unit="step"):
            while len(order) < cfg.batch_size:  # a new epoch; the short tail is carried over
                order = torch.cat([order, torch.randperm(len(x), generator=generator)])
            idx, order = order[: cfg.batch_size], order[cfg.batch_size :]
            target = (x[idx] * 2 - 1).to(device)  # (B, 1, H, W) in [-1, 1]
            posterior = autoencoder.encode(target).latent_dist
            recon = autoencoder.decode(posterior.sample(generator)).sample  # (B, 1, H, W)
            loss, parts = vae_loss(recon, target, posterior, cfg.kl_weight, cfg.reconstruction)
            if not math.isfinite(parts["loss"]):
                raise FloatingPointError(f"VAE loss is {parts['loss']} at step {step}; lower lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(autoencoder.parameters(), cfg.grad_clip)
            row = {"step": step, **parts, "lr": scheduler.get_last_lr()[0]}
            optimizer.step()
            scheduler.step()
            if step % cfg.log_every == 0 or step == cfg.steps:
                metrics.append(row)
                log.write(json.dumps(row) + "\n")
                log.flush()
    seconds = time.perf_counter() - start

    raw = VAEWrapper(autoencoder, scale=1.0, shift=0.0)  # un-normalised z, posterior mean
    stats_idx = torch.randperm(len(x), generator=generator)[: cfg.stats_images]
    scale, shift = latent_stats(encode_dataset(raw, x[stats_idx], batch_size=64))

    vae = VAEWrapper(autoencoder, scale=scale, shift=shift)  # sets scaling/shift_factor
    autoencoder.save_pretrained(out, safe_serialization=True)
    (out / TRAIN_CONFIG_FILE).write_text(json.dumps(asdict(cfg), indent=2) + "\n")
    write_latent_norm(out, scale, shift, cfg.downsample, cfg.latent_channels)
    return VAETrainResult(vae, out, scale, shift, metrics, seconds)


def cache_latents(
    vae: VAEWrapper, dataset, path: str | os.PathLike, batch_size: int = 64, reuse: bool = False
) -> Tensor:
    """Encode every image of a ``ReportImageDataset`` (at its resolution) once and save the
    latents with the dataset's row ids, in dataset order (what the training loop indexes).

    ``reuse=True`` loads an existing cache instead when it holds exactly the dataset's rows at
    this resolution (notebook 04 reuses notebook 03's cache when both train at the same size).
    """
    from unixlib.model.vae_files import load_latent_cache, save_latent_cache

    ids = dataset.rows["id"].tolist()
    grid = dataset.image_size // vae.downsample
    if reuse and Path(path).is_file():
        latents, cached_ids = load_latent_cache(path)
        if cached_ids == ids and tuple(latents.shape[-2:]) == (grid, grid):
            print(f"reusing the latent cache {path}")
            return latents
    latents = encode_dataset(vae, dataset.images(), batch_size=batch_size)
    save_latent_cache(latents, ids, path)
    return latents
