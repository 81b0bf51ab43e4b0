"""The paper's evaluators as notebooks 05 and 06 use them, and the protocol choices around them.

| measure | with local weights (the ``paper`` / ``release-eval`` protocol) | without |
|---|---|---|
| report labels (Table 2) | CheXbert (``chexbert_checkpoint``, ``chexbert_bert_dir``) | rule labeler |
| RadGraph F1, partial (NLG table) | ``radgraph_model`` (+ ``radgraph_bert_dir``) | "n/a" |
| FD / KD / PRDC features (Tables 3-4) | RadDino (``raddino_dir``), every image through | reference CNN |
|  | ``raddino_resize`` = 299 px first (CheXGenBench) | |
| alignment (Table 3) | BioViL-T (``biovil_dir``), CheXGenBench's score | reference |
|  | | contrastive model |

Each is built from ``unixlib.eval`` (its conventions are in that module's docstring) and
checked without running by the dry run (``experiments/dryrun.py``). Around them:

* real images for the image features are read at the generated images' size
  (:func:`feature_image_size`), so that neither passes a smaller bottleneck on the way to the
  encoder (the real test images used to be read at ``encoder_image_size``, 256 px in the paper
  profile, while the generated ones arrived at 512);
* ``sample_dtype``: reports and images are sampled under bf16 autocast by default, as the
  release does (``torch.autocast(..., dtype=torch.bfloat16)`` in ``inference/inferencer.py``;
  the release also casts the weights to bf16, we keep fp32 weights under autocast);
* ``und_preprocess="release"``: Table 2's images letterboxed from the original files as the
  release feeds them (:mod:`unixlib.data.sources.letterbox`);
* ``generated_pixels``: ours average the decoder's RGB output to gray (``"grey"``); the release
  saves the three channels as an 8-bit PNG, truncating (``"release"``), which CheXGenBench
  reads as RGB for RadDino and hi-ml as luma for BioViL-T. With ``"release"`` the generated
  sets are kept that way (:class:`ImageSets`) and scored as those tools read them; tables,
  figures, the saved arrays and our reference encoders see their luma (PIL's ``L``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from unixlib.data.sources.letterbox import RELEASE_CANVAS, release_letterbox
from unixlib.eval.encoders import PretrainedImageEncoder
from unixlib.train import precision

if TYPE_CHECKING:
    from unixlib.eval.biovil import BioViLT
    from unixlib.eval.radgraph import RadGraphAnnotator
    from unixlib.experiments.evaluation import EvalSettings

SAMPLE_DTYPES = {"bf16": "bf16", "fp32": "no", "auto": "auto"}  # -> train.precision's modes
GENERATED_PIXELS = ("grey", "release")
UND_PREPROCESS = ("cache", "release")
REFERENCE_ALIGNMENT = "reference contrastive model (ours, trained on the train split)"


def evaluator_device() -> str:
    """Where the pretrained evaluators run: the GPU when there is one."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def sample_autocast(dtype: str, where: object) -> contextlib.AbstractContextManager:
    """The precision reports and images are sampled in: ``bf16`` (the release's autocast),
    ``fp32``, or ``auto`` (bf16 where the hardware computes it natively, ``train.precision``);
    ``where``: a device, or the model whose weights' device it is (CPU without weights)."""
    if dtype not in SAMPLE_DTYPES:
        raise ValueError(f"sample_dtype must be one of {sorted(SAMPLE_DTYPES)}, got {dtype!r}")
    return precision.autocast(SAMPLE_DTYPES[dtype], _device(where))


def _device(where: object) -> torch.device:
    if isinstance(where, (str, torch.device)):
        return torch.device(where)
    weights = getattr(where, "parameters", None)
    first = next(weights(), None) if callable(weights) else None
    return first.device if first is not None else torch.device("cpu")


class ImageSets(dict):
    """set name -> (N, H, W) gray images in [0, 1] (what every table and figure uses), and in
    ``rgb`` the same sets as the release saves them, (N, 3, H, W) uint8, when they were
    sampled that way (``generated_pixels="release"``; empty otherwise)."""

    def __init__(self) -> None:
        super().__init__()
        self.rgb: dict[str, np.ndarray] = {}

    def add(self, name: str, images: np.ndarray) -> None:
        """Keep ``images``: gray floats as they are; 8-bit (N, C, H, W) as the release's
        images, with their luma as the gray set."""
        if images.dtype == np.uint8:
            self.rgb[name] = images
            images = luma(images)
        self[name] = images


def luma(rgb: np.ndarray) -> np.ndarray:
    """(N, 3, H, W) uint8 -> (N, H, W) float32 in [0, 1]: PIL's ``L`` conversion (ITU-R 601-2,
    its integer arithmetic), what reading the saved PNG as gray gives; (N, 1, H, W) as is."""
    if rgb.shape[1] == 1:
        return rgb[:, 0].astype(np.float32) / 255.0
    r, g, b = (rgb[:, i].astype(np.uint32) for i in range(3))
    y = (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16
    return y.astype(np.float32) / 255.0


def radgraph_annotator(s: EvalSettings) -> RadGraphAnnotator | None:
    """The RadGraph annotator when the settings name its local files, else None."""
    if not s.radgraph_model:
        return None
    from unixlib.eval.radgraph import RadGraphAnnotator

    return RadGraphAnnotator(s.radgraph_model, s.radgraph_bert_dir, device=evaluator_device())


def radgraph_f1(
    annotator: RadGraphAnnotator, references: Sequence[str], methods: Mapping[str, Sequence[str]]
) -> dict[str, np.ndarray]:
    """method -> (N,) RadGraph F1 (partial, the paper's level) of each report against its
    reference; each distinct text is annotated once, an empty (stripped) text scores 0 as in the
    release (``eval/calculate_und_metrics.py`` strips both texts)."""
    from unixlib.eval.radgraph_f1 import radgraph_scores

    texts = [t.strip() for t in references] + [t.strip() for m in methods.values() for t in m]
    todo = list(dict.fromkeys(t for t in texts if t))
    graphs = dict(zip(todo, annotator(todo), strict=True))
    refs = [graphs.get(t.strip()) for t in references]
    out = {}
    for name, reports in methods.items():
        hyps = [graphs.get(t.strip()) for t in reports]
        out[name] = radgraph_scores(hyps, refs, level="partial")["per_report"][:, 0]
    return out


def biovil(s: EvalSettings) -> BioViLT | None:
    """BioViL-T when the settings name its local folder, else None."""
    if not s.biovil_dir:
        return None
    from unixlib.eval.biovil import BioViLT

    return BioViLT(s.biovil_dir, device=evaluator_device())


def biovil_alignment(
    model: BioViLT, sets: Mapping[str, np.ndarray | torch.Tensor], prompts: Sequence[str]
) -> dict[str, np.ndarray]:
    """set -> (N,) CheXGenBench's per-image alignment: the BioViL-T cosine of image i with row
    i's generation prompt, rounded to 3 decimals as it rounds each score (its reported number,
    ``eval.biovil.chexgenbench_mean``, is their mean rounded again; the tables show the mean
    with its interval)."""
    text = model.text_embed(list(prompts))  # (N, 128), once for every set
    return {
        name: np.round((model.image_embed(images) * text).sum(axis=1, dtype=np.float64), 3)
        for name, images in sets.items()
    }


def feature_image_size(s: EvalSettings, features: object, generated: Mapping[str, int]) -> int:
    """Side (px) at which real images are read for the image features: ``real_image_size``
    when set; for a pretrained encoder (RadDino) the largest generated size, so real images
    pass no smaller bottleneck than generated ones; else the reference encoders' own size
    (they resize every image to it anyway)."""
    if s.real_image_size:
        return s.real_image_size
    if isinstance(features, PretrainedImageEncoder) and generated:
        return max(generated.values())
    return s.encoder.image_size


def release_und_images(und: pd.DataFrame) -> torch.Tensor:
    """(N, 1, 384, 384) images of Table 2's rows, letterboxed from their original files as the
    release does (``source_image``, written by notebook 01 from ``test_data.json``)."""
    if "source_image" not in und.columns:
        raise ValueError(
            "und_preprocess='release' needs the original images: Table 2's rows have no "
            "source_image (prepare the data with understanding_test, the release's "
            "test_data.json, in notebook 01)"
        )
    missing = [p for p in und["source_image"] if not Path(p).is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} original images not found, e.g. {missing[:3]}")
    arrays = [release_letterbox(p, RELEASE_CANVAS) for p in und["source_image"]]
    return torch.from_numpy(np.stack(arrays))[:, None]
