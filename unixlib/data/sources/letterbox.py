"""The official release's understanding preprocessing: an original image letterboxed onto a
384 px canvas, as ``eval/base/worker.py`` (``UnderstandingWorker._load_image``) and
``inference/inferencer.py`` (``pil_img2rgb``) of github.com/ZrH42/UniX do it.

Their steps, reproduced with the same PIL calls:

1. open the file and convert it to RGBA (a MIMIC-CXR JPG is mode ``L``: alpha 255 everywhere);
2. ``thumbnail((384, 384), LANCZOS)``: shrink, aspect kept (PIL's default ``reducing_gap``
   2.0: an integer box reduction first, then Lanczos); an image already smaller stays as it is;
3. paste it, centred (``(384 - w) // 2``), onto a new RGBA canvas ``(255, 255, 255, 0)`` with
   itself as the mask;
4. the inferencer's RGBA -> RGB conversion drops alpha: the padding becomes **white** (its RGB
   was white; only its alpha said "transparent"); the ViT transform then finds a 384 px image
   and leaves it unchanged before normalising.

The project's own path (``images.py``) pads with black into a 512 px square cache and resizes
bilinearly to the ViT input; ``und_preprocess="release"`` in notebook 05 uses this one instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

RELEASE_CANVAS = 384  # DEFAULT_VIT_MAX_SIZE of the release's eval/base/model_utils.py


def release_letterbox(path: str | Path, size: int = RELEASE_CANVAS) -> np.ndarray:
    """(size, size) float32 in [0, 1]: the file at ``path`` as the release feeds its ViT.

    Gray output: a gray source gives three equal channels, read back exactly by PIL's ``L``
    conversion (an RGB source is reduced to ITU-R 601 luma, as the image cache does).
    """
    with Image.open(path) as source:
        image = source.convert("RGBA") if source.mode != "RGBA" else source.copy()
    image.thumbnail((size, size), Image.Resampling.LANCZOS)
    canvas = Image.new("RGBA", (size, size), (255, 255, 255, 0))
    left, top = (size - image.size[0]) // 2, (size - image.size[1]) // 2
    canvas.paste(image, (left, top), image)
    gray = canvas.convert("RGB").convert("L")
    return np.asarray(gray, dtype=np.float32) / 255.0
