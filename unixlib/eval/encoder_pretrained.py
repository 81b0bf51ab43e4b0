"""A pretrained image encoder (RadDino) behind the reference encoders' ``image_features``.

microsoft/rad-dino is a ``Dinov2Model``; its features are the ``pooler_output`` (the
layer-normed CLS token). Loaded offline only; exported by :mod:`unixlib.eval.encoders`.

**The paper's protocol** (CheXGenBench, ``metrics/fid.py``, as copied into the UniX release's
``eval/gen_metrics``): every image, real or generated, is opened as 8-bit RGB and resized to
299 x 299 (torchvision ``Resize((299, 299))`` on PIL: bilinear, antialiased, aspect ratio *not*
kept), then handed as uint8 to RadDino's own image processor, which resizes it again (bicubic,
shortest edge 518), centre-crops 518, scales by 1/255 and normalises with the processor's
mean / std (0.5307 / 0.2583 for RadDino). So "299 px" is a bottleneck both image sets pass
through; the encoder sees 518 px. (The script's ``(ToTensor(x) * 255).to(uint8)`` round trip
returns every 8-bit value unchanged in float32, so it needs no emulation.) ``resize_first=299``
reproduces this with PIL on each image: images in [0, 1] are first rounded to 8 bits (what
saving a PNG does), so real and generated images take exactly the same path whatever size they
arrive at. ``resize_first=None`` skips the bottleneck (the processor alone).

Images may also come as the release saves its generations: 8-bit RGB, ``(N, 3, H, W)`` uint8
(its decoder's three channels, not a gray average; ``experiments/evaluators.py``). They take the
same path in RGB, as CheXGenBench's ``.convert("RGB")`` of those PNGs does; a uint8 array is
used as it is (no second quantisation).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from unixlib.eval.encoder_nets import ImageBatch, as_image_batch

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # DINOv2's defaults
CHEXGENBENCH_SIZE = 299  # CheXGenBench resizes every image to 299 x 299 before the processor
_RESAMPLE = {2: "bilinear", 3: "bicubic"}  # PIL codes of HF processors -> F.interpolate modes
_PIL_MODES = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}
_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
_EXPECTED = "a local copy of microsoft/rad-dino: config.json + model.safetensors"


def _to_uint8(image: np.ndarray) -> np.ndarray:
    """(H, W) in [0, 1] -> (H, W) uint8, rounded (as an 8-bit PNG of it holds)."""
    return np.clip(np.rint(np.asarray(image, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


class PretrainedImageEncoder:
    """A Hugging Face vision backbone whose ``pooler_output`` serves as image features.

    Grayscale images are (optionally) squeezed through ``resize_first`` px, resized (then
    centre-cropped, as the model's processor does), repeated to 3 channels and normalised with
    the processor's mean / std.
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
        resize_first: int | None = None,
    ) -> None:
        self.name, self.resize, self.crop, self.mode = name, resize, crop, mode
        self.resize_first = resize_first
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device).eval()
        self.mean = torch.tensor(mean, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self.batch_size = batch_size

    def _pil_pixels(self, images: ImageBatch) -> Tensor:
        """CheXGenBench's path, per image with PIL: 8-bit -> bilinear to resize_first square ->
        the processor's resize (PIL, its resample) -> centre crop -> (n, 1 or 3, C, C) in
        [0, 1] (3 for RGB uint8 input, module docstring)."""
        if isinstance(images, np.ndarray) and images.dtype == np.uint8 and images.ndim == 4:
            arrays = images.transpose(0, 2, 3, 1)  # (n, H, W, 3): 8-bit RGB, used as it is
            arrays = arrays[..., 0] if arrays.shape[-1] == 1 else arrays
        else:
            arrays = np.asarray(torch.as_tensor(images, dtype=torch.float32).cpu())
            arrays = _to_uint8(arrays[:, 0] if arrays.ndim == 4 else arrays)  # (n, H, W)
        if arrays.ndim not in (3, 4):
            raise ValueError(f"expected (N, 1, H, W) or (N, H, W) images, got {arrays.shape}")
        first, side = self.resize_first, self.resize
        top = (self.resize - self.crop) // 2
        out = []
        for image in arrays:
            pil = Image.fromarray(image)  # uint8: mode "L" (H, W) or "RGB" (H, W, 3)
            pil = pil.resize((first, first), Image.Resampling.BILINEAR)  # type: ignore[arg-type]
            pil = pil.resize((side, side), _PIL_MODES[self.mode])
            u8 = np.asarray(pil)[top : top + self.crop, top : top + self.crop]
            out.append(torch.from_numpy(u8.astype(np.float32) / 255.0))
        x = torch.stack(out)  # (n, C, C) or (n, C, C, 3)
        x = x[:, None] if x.ndim == 3 else x.permute(0, 3, 1, 2)
        return x.to(self.device)  # (n, 1 or 3, C, C)

    def _pixels(self, images: ImageBatch) -> Tensor:
        """(n, 1, H, W) or (n, H, W) in [0, 1] -> (n, 3, C, C) normalised, on the device."""
        if self.resize_first:
            x = self._pil_pixels(images)  # (n, 1 or 3, C, C)
        else:
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


def _require_files(directory: Path) -> None:
    """FileNotFoundError naming what a RadDino folder needs."""
    if not (directory / "config.json").is_file():
        raise FileNotFoundError(f"no config.json in {directory}; expected {_EXPECTED}")
    if not any((directory / f).is_file() for f in _WEIGHT_FILES):
        raise FileNotFoundError(
            f"no weights ({', '.join(_WEIGHT_FILES)}) in {directory}; expected {_EXPECTED}"
        )


def load_raddino(
    directory: Path,
    resize_first: int | None = CHEXGENBENCH_SIZE,
    image_size: int | None = None,
    device: str | torch.device | None = None,
    batch_size: int = 32,
) -> PretrainedImageEncoder:
    """RadDino (microsoft/rad-dino, a ``Dinov2Model``) from a local folder, offline.

    Args:
        directory: ``config.json`` + weights (``model.safetensors``), and the
            ``preprocessor_config.json`` that sets the input geometry (518 px for RadDino).
        resize_first: every image goes through this square size first (CheXGenBench: 299);
            None skips it.
        image_size: the model's input side instead of the processor's (not the protocol).
        device: default cuda when available.
    """
    from transformers import AutoModel  # deferred: transformers is slow to import

    directory = Path(directory)
    _require_files(directory)
    model, info = AutoModel.from_pretrained(
        directory, local_files_only=True, output_loading_info=True
    )
    if info["missing_keys"] or info["mismatched_keys"]:  # from_pretrained would only warn
        raise ValueError(
            f"{directory}: weights do not match config.json: missing {info['missing_keys']}, "
            f"mismatched {info['mismatched_keys']}"
        )
    geometry = _processor_geometry(directory, int(model.config.image_size))
    if image_size is not None:
        geometry |= {"resize": image_size, "crop": image_size}
    first = f"{resize_first} px -> " if resize_first else ""
    name = f"RadDino ({directory.name}, CLS features; images {first}{geometry['crop']} px)"
    return PretrainedImageEncoder(
        name, model, device=device, batch_size=batch_size, resize_first=resize_first, **geometry
    )


def check_raddino(directory: str | Path, resize_first: int | None = CHEXGENBENCH_SIZE) -> str:
    """Validate a RadDino folder without loading its weights; a one-line description, or a
    clear error (files; a DINOv2 config; the processor file the protocol relies on)."""
    directory = Path(directory)
    _require_files(directory)
    config = json.loads((directory / "config.json").read_text())
    if config.get("model_type") != "dinov2":
        raise ValueError(
            f"{directory / 'config.json'}: model_type {config.get('model_type')!r}, expected "
            "'dinov2' (microsoft/rad-dino)"
        )
    if not (directory / "preprocessor_config.json").is_file():
        raise FileNotFoundError(
            f"no preprocessor_config.json in {directory}: RadDino's own mean / std and 518 px "
            "input come from it (copy it with the weights)"
        )
    g = _processor_geometry(directory, int(config.get("image_size", 518)))
    first = f"{resize_first} x {resize_first} (bilinear) -> " if resize_first else ""
    return (
        f"RadDino: {directory} (images {first}{g['resize']} px {g['mode']}, crop {g['crop']}, "
        f"mean {g['mean'][0]:.4f} std {g['std'][0]:.4f}; CLS features)"
    )
