"""A pretrained image encoder (RadDino) behind the reference encoders' ``image_features``.

microsoft/rad-dino is a ``Dinov2Model``; its features are the ``pooler_output`` (the
layer-normed CLS token). Images follow the folder's ``preprocessor_config.json`` (RadDino's
processor resizes to 518 px), or the paper's 299 px when asked. Loaded offline only; exported
by :mod:`unixlib.eval.encoders`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from unixlib.eval.encoder_nets import ImageBatch, as_image_batch

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # DINOv2's defaults
_RESAMPLE = {2: "bilinear", 3: "bicubic"}  # PIL codes of HF processors -> F.interpolate modes
_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")


class PretrainedImageEncoder:
    """A Hugging Face vision backbone whose ``pooler_output`` serves as image features.

    Grayscale images are resized (then centre-cropped, as the model's processor does),
    repeated to 3 channels and normalised with the processor's mean / std.
    """

    def __init__(
        self,
        name: str,
        model: nn.Module,
        resize: int,
        crop: int,
        mean: Sequence[float],
        std: Sequence[float],
        mode: str = "bicubic",
        device: str | torch.device | None = None,
        batch_size: int = 32,
    ) -> None:
        self.name, self.resize, self.crop, self.mode = name, resize, crop, mode
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device).eval()
        self.mean = torch.tensor(mean, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self.batch_size = batch_size

    def _pixels(self, images: ImageBatch) -> Tensor:
        """(n, 1, H, W) or (n, H, W) in [0, 1] -> (n, 3, C, C) normalised, on the device."""
        x = torch.as_tensor(images, dtype=torch.float32).to(self.device)  # resize there
        x = as_image_batch(x, self.resize, self.mode)  # (n, 1, R, R)
        top = (self.resize - self.crop) // 2
        x = x[..., top : top + self.crop, top : top + self.crop]  # (n, 1, C, C)
        return (x.expand(-1, 3, -1, -1) - self.mean) / self.std  # (n, 3, C, C)

    @torch.no_grad()
    def image_features(self, images: ImageBatch) -> np.ndarray:
        """(N, 1, H, W) in [0, 1] -> (N, hidden) float32 pooled (CLS) features."""
        outs = []
        for i in range(0, len(images), self.batch_size):
            x = self._pixels(images[i : i + self.batch_size])  # (n, 3, C, C)
            outs.append(self.model(pixel_values=x).pooler_output.float().cpu())  # (n, hidden)
        hidden = getattr(self.model.config, "hidden_size", 0)
        return torch.cat(outs).numpy() if outs else np.zeros((0, hidden), np.float32)


def _side(entry: Any) -> int | None:
    """A processor's size entry (int, or dict with height / shortest_edge) as one side."""
    if isinstance(entry, dict):
        entry = entry.get("height", entry.get("shortest_edge"))
    return int(entry) if entry else None


def _processor_geometry(directory: Path, image_size: int) -> dict[str, Any]:
    """resize / crop / mean / std / mode from ``preprocessor_config.json`` when present, else
    the model config's ``image_size`` with DINOv2's ImageNet statistics."""
    path = directory / "preprocessor_config.json"
    p = json.loads(path.read_text()) if path.is_file() else {}
    resize = _side(p.get("size")) or image_size
    crop = _side(p.get("crop_size")) if p.get("do_center_crop") else None
    return {
        "resize": resize,
        "crop": min(crop or resize, resize),
        "mean": p.get("image_mean", IMAGENET_MEAN),
        "std": p.get("image_std", IMAGENET_STD),
        "mode": _RESAMPLE.get(p.get("resample", 3), "bilinear"),
    }


def load_raddino(
    directory: Path,
    image_size: int | None = None,
    device: str | torch.device | None = None,
    batch_size: int = 32,
) -> PretrainedImageEncoder:
    """RadDino (microsoft/rad-dino, a ``Dinov2Model``) from a local folder, offline.

    Args:
        directory: ``config.json`` + weights (``model.safetensors``), and ideally the
            ``preprocessor_config.json`` that sets the input size (518 px for RadDino).
        image_size: resize straight to this side instead (e.g. 299, the paper's FD size).
        device: default cuda when available.
    """
    from transformers import AutoModel  # deferred: transformers is slow to import

    directory = Path(directory)
    expected = "a local copy of microsoft/rad-dino: config.json + model.safetensors"
    if not (directory / "config.json").is_file():
        raise FileNotFoundError(f"no config.json in {directory}; expected {expected}")
    if not any((directory / f).is_file() for f in _WEIGHT_FILES):
        raise FileNotFoundError(
            f"no weights ({', '.join(_WEIGHT_FILES)}) in {directory}; expected {expected}"
        )
    model = AutoModel.from_pretrained(directory, local_files_only=True)
    geometry = _processor_geometry(directory, int(model.config.image_size))
    if image_size is not None:
        geometry |= {"resize": image_size, "crop": image_size}
    name = f"RadDino ({directory.name}, CLS features at {geometry['crop']} px)"
    return PretrainedImageEncoder(name, model, device=device, batch_size=batch_size, **geometry)
