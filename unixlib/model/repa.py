"""REPA: align the generation tokens' hidden states with a frozen image encoder's patches.

REPA (Yu et al., "Representation Alignment for Generation", sihyun-yu/REPA) adds
``-cos(proj(h), y)`` between an intermediate hidden state ``h`` of the denoiser (here: the
noisy latent tokens after block ``d``) and the patch features ``y`` of a frozen encoder of the
clean image. UniX uses RadDino patch features, weight 0.5, in stage 2.

The two token grids differ (e.g. 16 x 16 latent tokens vs 37 x 37 RadDino patches). We resize
the target **in 2-D** to the latent grid, so each latent token is compared with the encoder
features of the same image region. The release instead interpolates the flattened sequences
in 1-D, which mixes rows; ``official_1d_interp=True`` reproduces that. The release also divides
the (already batch-averaged) loss by the batch size once more; we do not (a batch-size
dependent loss weight is a bug, not a recipe), so our loss equals the release's times B.

The RadDino target's input: we resize the image straight to the encoder's size (bilinear,
antialiased, in float) and normalise. The release (``modeling/unix/repa_utils.py``,
``preprocess_image`` and ``extract_features``) resizes bicubically (no antialiasing) to
``224 * (res // 256)`` px, casts ``x * 255`` to uint8 (truncating; a bicubic overshoot below 0
or above 255 wraps around, as numpy casts it), and hands that 8-bit image to RadDino's own
image processor (PIL bicubic to its shortest edge, 518, centre crop, rescale, normalise);
``official_preprocess=True`` (``UniXConfig.repa_official_preprocess``) reproduces that.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn
from transformers import AutoImageProcessor, AutoModel, SiglipVisionModel

from unixlib.model.vision import preprocess_for_vit

__all__ = [
    "FrozenTarget",
    "REPAProjector",
    "RadDinoTarget",
    "SiglipTarget",
    "match_grid_2d",
    "official_pixels",
    "repa_loss",
]


class REPAProjector(nn.Sequential):
    """Linear(D, Dp) - SiLU - Linear(Dp, Dp) - SiLU - Linear(Dp, Dt); names ``0``, ``2``, ``4``."""

    def __init__(self, hidden: int, proj_hidden: int, out_dim: int) -> None:
        super().__init__(
            nn.Linear(hidden, proj_hidden),
            nn.SiLU(),
            nn.Linear(proj_hidden, proj_hidden),
            nn.SiLU(),
            nn.Linear(proj_hidden, out_dim),
        )


def match_grid_2d(features: Tensor, grid: tuple[int, int], out_grid: tuple[int, int]) -> Tensor:
    """Resize row-major patch features (B, H*W, D) on an (H, W) grid to (B, h*w, D).

    Shrinking uses area averaging (each output token is the mean of the patches it covers);
    growing uses bilinear interpolation.
    """
    b, m, d = features.shape
    (gh, gw), (oh, ow) = grid, out_grid
    if m != gh * gw:
        raise ValueError(f"{m} tokens do not fill a {gh}x{gw} grid")
    if (gh, gw) == (oh, ow):
        return features
    x = features.transpose(1, 2).reshape(b, d, gh, gw)  # (B, D, H, W)
    if oh <= gh and ow <= gw:
        x = F.interpolate(x, size=(oh, ow), mode="area")
    else:
        x = F.interpolate(x, size=(oh, ow), mode="bilinear", align_corners=False)
    return x.reshape(b, d, oh * ow).transpose(1, 2)  # (B, h*w, D)


def repa_loss(
    pred: Tensor,
    pred_grid: tuple[int, int],
    target: Tensor,
    target_grid: tuple[int, int],
    official_1d_interp: bool = False,
) -> Tensor:
    """Negative cosine between projected tokens and target features, mean over tokens and batch.

    Args:
        pred: (B, N, Dt) projected generation-token states, N = h * w (row-major).
        pred_grid: (h, w).
        target: (B, M, Dt) frozen encoder patch features, M = H * W.
        target_grid: (H, W).
        official_1d_interp: the release's matching: normalise, then linearly interpolate the
            flattened ``pred`` sequence to length M (ignores the 2-D layout).
    Returns:
        scalar in [-1, 1]; -1 when every token points the same way as its target.
    """
    if pred.dim() != 3 or target.dim() != 3 or pred.shape[0] != target.shape[0]:
        raise ValueError(f"pred {tuple(pred.shape)} / target {tuple(target.shape)}: need (B, ., D)")
    if pred.shape[-1] != target.shape[-1]:
        raise ValueError(f"feature widths differ: pred {pred.shape[-1]}, target {target.shape[-1]}")
    if pred.shape[1] != pred_grid[0] * pred_grid[1]:
        raise ValueError(f"{pred.shape[1]} pred tokens do not fill a {pred_grid} grid")
    if official_1d_interp:
        pred_n = F.normalize(pred, dim=-1)
        if pred.shape[1] != target.shape[1]:
            pred_n = F.interpolate(
                pred_n.transpose(1, 2), size=target.shape[1], mode="linear", align_corners=False
            ).transpose(1, 2)  # (B, M, Dt)
        cos = (pred_n * F.normalize(target, dim=-1)).sum(-1)  # (B, M)
        return -cos.mean()
    target = match_grid_2d(target.to(pred.dtype), target_grid, pred_grid)  # (B, N, Dt)
    cos = F.cosine_similarity(pred, target, dim=-1)  # (B, N)
    return -cos.mean()


class FrozenTarget(nn.Module):
    """Base of the REPA target encoders: holds a frozen encoder (no grads, always eval).

    Subclasses map (B, 1, H, W) images in [0, 1] to ((B, M, Dt) patch features, (H', W') grid).
    """

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> FrozenTarget:
        """Frozen: the encoder stays in eval mode."""
        super().train(mode)
        self.encoder.eval()
        return self


class SiglipTarget(FrozenTarget):
    """Patch features of a frozen SigLIP tower (e.g. the stage-1 tower) as the REPA target.

    ``size`` defaults to the tower's ``image_size``; another size interpolates its position
    table (transformers' ``interpolate_pos_encoding``).
    """

    def __init__(self, tower: SiglipVisionModel, size: int | None = None) -> None:
        super().__init__(tower)
        self.size = int(size or tower.config.image_size)
        patch = int(tower.config.patch_size)
        if self.size % patch:
            raise ValueError(f"size {self.size} is not a multiple of the patch size {patch}")
        self.grid = self.size // patch

    @torch.no_grad()
    def forward(self, images: Tensor) -> tuple[Tensor, tuple[int, int]]:
        """(B, 1, H, W) in [0, 1] -> ((B, grid^2, Dv) last hidden state, (grid, grid))."""
        pixels = preprocess_for_vit(images, self.size)
        resized = self.size != int(self.encoder.config.image_size)
        out = self.encoder(pixel_values=pixels, interpolate_pos_encoding=resized)
        return out.last_hidden_state, (self.grid, self.grid)


class RadDinoTarget(FrozenTarget):
    """Patch features (CLS and register tokens dropped) of a DINOv2-family model (RAD-DINO).

    Use :meth:`from_local`; images are resized to ``size``, repeated to 3 channels and
    normalised with the model's own ``image_mean`` / ``image_std``; with ``processor`` (the
    release's quirk, module docstring) they go through :func:`official_pixels` instead.
    """

    def __init__(
        self,
        model: nn.Module,
        size: int,
        mean: list[float],
        std: list[float],
        processor: Any = None,
    ) -> None:
        super().__init__(model)
        self.processor = processor
        patch = int(model.config.patch_size)
        if size % patch:
            raise ValueError(f"size {size} is not a multiple of the patch size {patch}")
        self.size, self.grid = size, size // patch
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    @classmethod
    def from_local(
        cls,
        path: str | os.PathLike,
        size: int | None = None,
        mean: list[float] | None = None,
        std: list[float] | None = None,
        official_preprocess: bool = False,
    ) -> RadDinoTarget:
        """Load from a local directory (``local_files_only``; nothing is downloaded).

        ``size``/``mean``/``std`` default to ``preprocessor_config.json`` in that directory
        (``crop_size``, ``image_mean``, ``image_std``); ``size`` falls back to the model's
        ``image_size``. Raises ``FileNotFoundError`` for a missing directory and
        ``ValueError`` when the normalisation is neither given nor in the directory.
        ``official_preprocess``: feed the encoder as the release does (:func:`official_pixels`,
        with the directory's own image processor).
        """
        path = Path(path)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"no RAD-DINO / DINOv2 model at {path} (config.json missing)")
        model = AutoModel.from_pretrained(path, local_files_only=True)
        proc_file = path / "preprocessor_config.json"
        proc = json.loads(proc_file.read_text()) if proc_file.is_file() else {}
        mean = mean or proc.get("image_mean")
        std = std or proc.get("image_std")
        if mean is None or std is None:
            raise ValueError(f"{proc_file}: no image_mean/image_std; pass mean= and std=")
        if size is None:
            crop = proc.get("crop_size")
            size = crop.get("height") if isinstance(crop, dict) else crop
            size = int(size or model.config.image_size)
        processor = None
        if official_preprocess:
            processor = AutoImageProcessor.from_pretrained(path, local_files_only=True)
        return cls(model, size, list(mean), list(std), processor)

    @torch.no_grad()
    def forward(self, images: Tensor) -> tuple[Tensor, tuple[int, int]]:
        """(B, 1, H, W) in [0, 1] -> ((B, grid^2, Dt) patch tokens, (grid, grid))."""
        if images.dim() != 4 or images.shape[1] != 1:
            raise ValueError(f"expected gray images (B, 1, H, W), got {tuple(images.shape)}")
        if self.processor is not None:
            x = official_pixels(images, self.processor).to(images.device)  # (B, 3, S, S)
        else:
            x = F.interpolate(
                images,
                size=(self.size, self.size),
                mode="bilinear",
                align_corners=False,
                antialias=True,
            )
            x = (x.expand(-1, self.mean.shape[1], -1, -1) - self.mean) / self.std
        hidden = self.encoder(pixel_values=x).last_hidden_state  # (B, prefix + g*g, Dt)
        return hidden[:, -self.grid * self.grid :], (self.grid, self.grid)


def official_pixels(images: Tensor, processor: Any) -> Tensor:
    """(B, 1, H, W) images in [0, 1] -> (B, 3, S, S) RadDino input, as the release makes it.

    Bicubic (no antialiasing) to ``224 * (H // 256)`` px, ``(x * 255).astype(uint8)`` (numpy's
    cast: truncation, and wrap-around of overshoot), then ``processor`` (RadDino's image
    processor) on the 8-bit RGB images; the release's images are 3-channel, ours gray, so
    its three channels are the gray one repeated (``Image.convert("RGB")``).
    """
    side = 224 * (images.shape[-1] // 256)
    if side == 0:
        raise ValueError(
            f"the release's REPA preprocessing resizes to 224 * (res // 256) px: {images.shape[-1]}"
            " px images give 0 (it runs at 256 px; use repa_official_preprocess=False)"
        )
    x = F.interpolate(images.float(), size=(side, side), mode="bicubic")  # (B, 1, s, s)
    u8 = (x[:, 0].cpu().numpy() * 255).astype(np.uint8)  # (B, s, s): the release's cast
    rgb = [Image.fromarray(a).convert("RGB") for a in u8]
    return processor(images=rgb, return_tensors="pt")["pixel_values"]
