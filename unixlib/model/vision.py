"""Understanding-side vision: SigLIP tower, MLP connector and the ViT preprocessing.

The paper's tower is SigLIP-L/16 at 384 px (24 x 24 = 576 tokens of width 1024), taken from
Janus-Pro; its patch tokens (no pooling) go through a 2-layer MLP connector into the LLM
width. Here the tower is transformers' ``SiglipVisionModel``: built from a config dict (tiny
presets train from scratch) or loaded from a local directory (never from the hub).

Preprocessing follows the release: pad to square with white, resize, repeat the gray channel
to RGB and normalise every channel with the CXR statistics mean 0.555895 / std 0.336385.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn
from transformers import SiglipVisionConfig, SiglipVisionModel

__all__ = [
    "VIT_MEAN",
    "VIT_STD",
    "Connector",
    "build_vision_tower",
    "load_vision_tower",
    "preprocess_for_vit",
    "vit_features",
]

VIT_MEAN = 0.555895  # release: pixel mean of the CXR training images, all three channels
VIT_STD = 0.336385


def build_vision_tower(cfg: dict[str, Any] | SiglipVisionConfig) -> SiglipVisionModel:
    """A randomly initialised ``SiglipVisionModel``.

    A dict is passed to ``SiglipVisionConfig``; unless it says otherwise the attention-pooling
    head is left out (``vision_use_head=False``): UniX uses the patch tokens only, and a head
    that receives no gradient would only be dead weight (and trip DDP's unused-parameter check).
    Note: Janus-Pro's timm SigLIP uses exact GELU; give ``hidden_act="gelu"`` to match it.
    """
    if isinstance(cfg, dict):
        cfg = SiglipVisionConfig(**{"vision_use_head": False, **cfg})
    return SiglipVisionModel(cfg)


def load_vision_tower(path: str | os.PathLike) -> SiglipVisionModel:
    """Load a ``SiglipVisionModel`` from a local directory (``local_files_only``)."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"no SigLIP vision tower at {path} (expected a config.json and weights there; "
            "models are never downloaded at run time)"
        )
    return SiglipVisionModel.from_pretrained(path, local_files_only=True)


class Connector(nn.Sequential):
    """ViT width -> LLM width: Linear - GELU(tanh) - Linear; state-dict names ``0`` and ``2``.

    The release uses the tanh GELU here although Janus-Pro's aligner (whose weights initialise
    it) used exact GELU (PAPER.md "Known quirks"); we follow the release.
    """

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__(
            nn.Linear(in_dim, out_dim), nn.GELU(approximate="tanh"), nn.Linear(out_dim, out_dim)
        )


def preprocess_for_vit(
    images: Tensor, size: int, mean: float = VIT_MEAN, std: float = VIT_STD
) -> Tensor:
    """(B, 1, H, W) gray images in [0, 1] -> (B, 3, size, size) normalised ViT input.

    The shorter side is padded symmetrically with white (1.0) to a square (so nothing is
    stretched), resized bilinearly (antialiased), repeated to three channels and normalised
    as ``(x - mean) / std``.
    """
    if images.dim() != 4 or images.shape[1] != 1:
        raise ValueError(f"expected gray images (B, 1, H, W), got {tuple(images.shape)}")
    lo, hi = images.min().item(), images.max().item()
    if lo < -1e-4 or hi > 1 + 1e-4:
        raise ValueError(f"images must be in [0, 1], got values in [{lo:.3f}, {hi:.3f}]")
    h, w = images.shape[-2:]
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    square = F.pad(images, (left, side - w - left, top, side - h - top), value=1.0)
    if side != size:
        square = F.interpolate(
            square, size=(size, size), mode="bilinear", align_corners=False, antialias=True
        )
    return ((square - mean) / std).expand(-1, 3, -1, -1).contiguous()


def vit_features(tower: SiglipVisionModel, pixels: Tensor) -> Tensor:
    """(B, 3, S, S) preprocessed pixels -> (B, N, Dv) patch tokens (last hidden state)."""
    dtype = next(tower.parameters()).dtype
    return tower(pixel_values=pixels.to(dtype)).last_hidden_state
