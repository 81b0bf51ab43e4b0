"""Encoder outputs of fixed image sets, computed once per run directory.

Notebooks 05 and 06 read the same real images through the same reference encoders (the real
test images' features and classifier probabilities, the train images' features of the
retrieval baseline), and every ablation arm compares with them. Those outputs depend only on
the encoder and on the pixels, so they are cached in ``<run_dir>/eval/feature_cache/``, one
``.npy`` per (what, encoder, images):

* the encoder is named by a digest of its class, its settings and every weight
  (:func:`encoder_digest`): retrained reference encoders, another RadDino folder or another
  ``raddino_resize`` give another key;
* the images by a digest of the pixel tensor itself (shape, dtype, bytes): another split,
  another ``n_test``, another resolution or a changed image file give another key.

A hit loads exactly the array a miss computed (float32 ``.npy``), so tables are the same with
and without the cache. Writes are atomic (a temporary file renamed), so an interrupted run
never leaves a truncated entry.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

CACHE_SUBDIR = Path("eval") / "feature_cache"
KINDS = ("features", "probs", "embed", "reference_features")
PLAIN = (int, float, str, tuple, torch.device, type(None))


def _update_with_module(h: hashlib._Hash, module: nn.Module) -> None:
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(str((tuple(t.shape), str(t.dtype))).encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())


def encoder_digest(encoder: object) -> str:
    """sha256 of what an encoder's outputs depend on: its class, its plain settings (sizes,
    resize, normalisation: every attribute that is a number, string, tuple, device or
    dataclass config) and the weights of every module it holds. Dicts and other objects are
    left out (a counter or a log kept on the encoder must not change its key)."""
    h = hashlib.sha256(type(encoder).__qualname__.encode())
    for key, value in sorted(vars(encoder).items()):
        if isinstance(value, nn.Module):
            h.update(key.encode())
            _update_with_module(h, value)
        elif isinstance(value, torch.Tensor):
            h.update(key.encode() + value.detach().cpu().numpy().tobytes())
        elif isinstance(value, PLAIN) or hasattr(value, "__dataclass_fields__"):  # + config
            h.update(f"{key}={value!r}".encode())
    return h.hexdigest()


def images_digest(images: np.ndarray | torch.Tensor) -> str:
    """sha256 of an image batch's shape, dtype and pixels."""
    x = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    x = np.ascontiguousarray(x)
    h = hashlib.sha256(f"{x.shape}{x.dtype}".encode())
    h.update(x.tobytes())
    return h.hexdigest()


class FeatureCache:
    """``<directory>/<kind>-<key>.npy`` per (kind, encoder, images); ``directory`` None: no
    cache (everything computed). ``hits`` and ``misses`` count the lookups."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.hits = self.misses = 0
        self._digests: dict[int, tuple[object, str]] = {}

    def _encoder_key(self, encoder: object) -> str:
        kept = self._digests.get(id(encoder))
        if kept is None or kept[0] is not encoder:  # once per encoder object (weights fixed)
            kept = (encoder, encoder_digest(encoder))
            self._digests[id(encoder)] = kept
        return kept[1]

    def get(
        self,
        kind: str,
        encoder: object,
        compute: Callable[[np.ndarray | torch.Tensor], np.ndarray],
        images: np.ndarray | torch.Tensor,
    ) -> np.ndarray:
        """``compute(images)`` (``encoder``'s ``kind`` output), from the cache when an
        entry for this encoder and these pixels exists, else computed and stored."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        if self.directory is None:
            self.misses += 1
            return compute(images)
        text = f"{kind}:{self._encoder_key(encoder)}:{images_digest(images)}"
        key = hashlib.sha256(text.encode())
        path = self.directory / f"{kind}-{key.hexdigest()[:32]}.npy"
        if path.is_file():
            self.hits += 1
            return np.load(path)
        self.misses += 1
        out = compute(images)
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            np.save(f, out)
        os.replace(tmp, path)
        return out
