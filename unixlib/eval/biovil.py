"""BioViL-T image-text alignment score (the paper's Table 3 "align", from CheXGenBench), from
local weights.

Our own implementation (networks in :mod:`unixlib.eval.biovil_nets`), not hi-ml-multimodal:
hi-ml-multimodal 0.2.2 (the UniX release's pin; requires huggingface-hub, matplotlib, Pillow,
pydicom, scikit-image, SimpleITK, timm, torch, torchvision, transformers) needs torchvision,
for which pip resolves torchvision 0.29.1 and with it torch 2.14.1 and the CUDA 13 wheels, so it
cannot sit beside torch 2.13; it also downloads its weights at run time (fixed Hugging Face URLs
and ``from_pretrained("microsoft/BiomedVLP-BioViL-T")``).

**Weights.** ``directory`` is a local copy of microsoft/BiomedVLP-BioViL-T: ``config.json``
(CXR-BERT: a BERT config plus ``projection_size``), the text weights (``pytorch_model.bin`` or
``model.safetensors``), ``vocab.txt`` (``tokenizer_config.json`` for ``do_lower_case``) and the
image weights ``biovil_t_image_model_proj_size_128.pt`` (or ``image_weights``). Loading is strict
except for the parts the score does not use: the masked-LM head (``cls.predictions.*``), the
prior-image pooler (``encoder.vit_pooler.*``) and old transformers' ``position_ids`` buffer.

**Protocol** (CheXGenBench ``metrics/img_text_alignment_scores.py`` over hi-ml 0.2.2's
inference engines; the UniX release runs the same script):

- image: the 8-bit image (ours rounded to 8 bits, as a PNG holds it) is stretched to 0-255
  (``(x - min) / max * 255``, then truncated to uint8: hi-ml's ``remap_to_uint8``), resized so
  its shorter side is 512 (PIL bilinear), centre-cropped to 448 (torchvision's rounding), scaled
  to [0, 1] and repeated to 3 channels (no mean / std); its projected embedding is L2-normalised;
- text: the generation prompt with trailing ``!``, ``?`` and ``.`` removed, [CLS] ... [SEP]
  with no truncation (a text longer than the model's 512 positions is an error, as in hi-ml,
  as is a special token other than [MASK] inside it); its [CLS] projection is L2-normalised;
- score: the cosine of the two; CheXGenBench rounds each score to 3 decimals, then their mean
  to 3 decimals (:func:`chexgenbench_mean`).

:func:`check_biovil` validates the files without running (dry run).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.nn import functional as F
from transformers import BertConfig, BertModel, BertTokenizer

from unixlib.eval.biovil_nets import BioViLTImageNet, ProjectionHead
from unixlib.eval.encoder_nets import ImageBatch

IMAGE_WEIGHTS = "biovil_t_image_model_proj_size_128.pt"
TEXT_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
RESIZE, CROP = 512, 448  # hi-ml's transform for BioViL-T: Resize(512), CenterCrop(448)
_UNUSED = ("cls.predictions.", "encoder.vit_pooler.")  # MLM head; prior-image pooler
_IGNORABLE = ("embeddings.position_ids", "embeddings.token_type_ids")
_EXPECTED = (
    "a local copy of microsoft/BiomedVLP-BioViL-T (config.json, pytorch_model.bin, vocab.txt, "
    f"{IMAGE_WEIGHTS})"
)


def _files(directory: Path, image_weights: Path | None) -> tuple[Path, Path]:
    """(text weights, image weights), or a FileNotFoundError naming what is missing."""
    for name in ("config.json", "vocab.txt"):
        if not (directory / name).is_file():
            raise FileNotFoundError(f"no {name} in {directory}; expected {_EXPECTED}")
    text = next((directory / n for n in TEXT_WEIGHTS if (directory / n).is_file()), None)
    if text is None:
        raise FileNotFoundError(f"no text weights {TEXT_WEIGHTS} in {directory}")
    image = image_weights or directory / IMAGE_WEIGHTS
    if not image.is_file():
        raise FileNotFoundError(f"BioViL-T image weights not found: {image}; expected {_EXPECTED}")
    return text, image


def _load_state(path: Path) -> dict[str, Tensor]:
    """A state dict from safetensors or a ``torch.save`` file (weights only)."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(path)
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling / header errors of several types
        raise ValueError(f"{path} is not a readable state dict: {err}") from err


def _split(state: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    """Keys under ``prefix`` with it removed."""
    return {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}


def _check(module: torch.nn.Module, state: dict[str, Tensor], source: str) -> None:
    """Names and shapes must match exactly (module may live on the meta device)."""
    expected = module.state_dict()
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    bad = sorted(k for k in set(expected) & set(state) if state[k].shape != expected[k].shape)
    if missing or unexpected or bad:
        raise ValueError(
            f"{source} does not match BioViL-T: missing {missing}, unexpected {unexpected}, "
            f"wrong shape {bad}"
        )


def _text_config(directory: Path) -> tuple[BertConfig, int]:
    """CXR-BERT's config.json as a BertConfig, and its projection size."""
    cfg = json.loads((directory / "config.json").read_text())
    projection = int(cfg.pop("projection_size", 128))
    for key in ("architectures", "auto_map", "model_type", "transformers_version"):
        cfg.pop(key, None)
    return BertConfig(**cfg), projection


def _build(directory: Path, image_weights: Path | None, meta: bool) -> dict:
    """The three networks with their checked weights (on the meta device when only checking)."""
    text_path, image_path = _files(directory, image_weights)
    config, projection = _text_config(directory)
    text_state = {k: v for k, v in _load_state(text_path).items() if not k.endswith(_IGNORABLE)}
    unknown = [
        k for k in text_state if not k.startswith(("bert.", "cls_projection_head.", *_UNUSED))
    ]
    if unknown:
        raise ValueError(f"{text_path}: keys outside CXR-BERT: {unknown}")
    image_state = _load_state(image_path)
    image_state = {k: v for k, v in image_state.items() if not k.startswith(_UNUSED)}
    with torch.device("meta" if meta else "cpu"):
        try:
            image = BioViLTImageNet.from_state(image_state)
        except KeyError as err:
            raise ValueError(f"{image_path} lacks {err}: not a BioViL-T image checkpoint") from err
        bert = BertModel(config, add_pooling_layer=False)
        head = ProjectionHead(config.hidden_size, projection)
    parts = {
        "image": (image, image_state, image_path),
        "bert": (bert, _split(text_state, "bert."), text_path),
        "head": (head, _split(text_state, "cls_projection_head."), text_path),
    }
    for module, state, source in parts.values():
        _check(module, state, str(source))
    return parts


def _remap_to_uint8(u8: np.ndarray) -> np.ndarray:
    """hi-ml's ``remap_to_uint8``: stretch to 0-255, truncate (a flat image becomes 0)."""
    x = u8.astype(np.float64) - u8.min()
    top = x.max()
    return (x / top * 255 if top > 0 else x).astype(np.uint8)


def preprocess_image(image: np.ndarray) -> Tensor:
    """(H, W) in [0, 1] -> (3, 448, 448) in [0, 1], as hi-ml's load_image + transform.

    An 8-bit RGB image ``(3, H, W)`` uint8 (a generation as the release saves it) is read as
    hi-ml reads that PNG: stretched over all three channels, then PIL's ``L`` (luma)."""
    if image.dtype == np.uint8 and image.ndim == 3:
        rgb = _remap_to_uint8(image.transpose(1, 2, 0))  # (H, W, 3)
        pil = Image.fromarray(rgb[..., 0] if rgb.shape[-1] == 1 else rgb).convert("L")
        return _resize_crop(pil)
    u8 = np.clip(np.rint(np.asarray(image, dtype=np.float64) * 255), 0, 255).astype(np.uint8)
    return _resize_crop(Image.fromarray(_remap_to_uint8(u8)))  # 2-D uint8: mode "L"


def _resize_crop(pil: Image.Image) -> Tensor:
    """hi-ml's transform of a gray PIL image: shorter side 512 (bilinear), centre crop 448,
    [0, 1], three channels."""
    w, h = pil.size
    short, long = min(w, h), max(w, h)
    new_long = int(RESIZE * long / short)  # torchvision Resize(int): the shorter side -> 512
    size = (RESIZE, new_long) if w <= h else (new_long, RESIZE)
    pil = pil.resize(size, Image.Resampling.BILINEAR) if size != (w, h) else pil
    top, left = round((size[1] - CROP) / 2.0), round((size[0] - CROP) / 2.0)  # CenterCrop
    x = torch.from_numpy(np.asarray(pil)[top : top + CROP, left : left + CROP].astype(np.float32))
    return (x / 255.0).expand(3, -1, -1)


class BioViLT:
    """BioViL-T's image and text embeddings, and their alignment score (module docstring)."""

    def __init__(
        self,
        directory: str | Path,
        image_weights: str | Path | None = None,
        device: str | torch.device | None = None,
        batch_size: int = 16,
    ) -> None:
        directory = Path(directory)
        parts = _build(directory, Path(image_weights) if image_weights else None, meta=False)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        for name, (module, state, _) in parts.items():
            module.load_state_dict(state, strict=True)
            setattr(self, name, module.to(self.device).eval())
        cfg_file = directory / "tokenizer_config.json"
        lower = (
            json.loads(cfg_file.read_text()).get("do_lower_case", True)
            if cfg_file.is_file()
            else True
        )
        self.tokenizer = BertTokenizer(vocab=str(directory / "vocab.txt"), do_lower_case=lower)
        self.max_tokens = int(self.bert.config.max_position_embeddings)
        self.batch_size = batch_size

    @torch.no_grad()
    def image_embed(self, images: ImageBatch) -> np.ndarray:
        """(N, 1, H, W) or (N, H, W) in [0, 1], or (N, 3, H, W) 8-bit RGB (:func:`preprocess_image`)
        -> (N, 128) L2-normalised embeddings."""
        if isinstance(images, np.ndarray) and images.dtype == np.uint8 and images.ndim == 4:
            arrays = images  # 8-bit RGB as the release saves it, read as hi-ml reads the PNG
        else:
            arrays = np.asarray(torch.as_tensor(images, dtype=torch.float32).cpu())
            arrays = arrays[:, 0] if arrays.ndim == 4 else arrays
        out = []
        for i in range(0, len(arrays), self.batch_size):
            x = torch.stack([preprocess_image(a) for a in arrays[i : i + self.batch_size]])
            out.append(F.normalize(self.image(x.to(self.device)), dim=-1).cpu())  # (n, 128)
        return torch.cat(out).numpy() if out else np.zeros((0, 128), np.float32)

    def _tokens(self, texts: Sequence[str]) -> list[list[int]]:
        """Ids per text, with hi-ml's checks (special tokens in the text, length)."""
        specials = [t for t in self.tokenizer.all_special_tokens if t != self.tokenizer.mask_token]
        ids = []
        for i, text in enumerate(texts):
            if any(s in text for s in specials):
                raise ValueError(f"text {i} contains a special token {specials}: {text[:80]!r}")
            ids.append(self.tokenizer(text.rstrip("!?."))["input_ids"])
            if len(ids[-1]) > self.max_tokens:
                raise ValueError(
                    f"text {i} has {len(ids[-1])} tokens, more than BioViL-T's "
                    f"{self.max_tokens} positions (hi-ml does not truncate either)"
                )
        return ids

    @torch.no_grad()
    def text_embed(self, texts: Sequence[str]) -> np.ndarray:
        """N texts -> (N, 128) L2-normalised [CLS] projections."""
        ids, out = self._tokens(texts), []
        for i in range(0, len(ids), self.batch_size):
            chunk = ids[i : i + self.batch_size]
            width = max(len(c) for c in chunk)
            input_ids = torch.zeros(len(chunk), width, dtype=torch.long)  # [PAD] = 0
            mask = torch.zeros_like(input_ids)
            for row, c in enumerate(chunk):
                input_ids[row, : len(c)], mask[row, : len(c)] = torch.tensor(c), 1
            hidden = self.bert(
                input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device)
            )
            out.append(F.normalize(self.head(hidden.last_hidden_state[:, 0]), dim=-1).cpu())
        return torch.cat(out).numpy() if out else np.zeros((0, 128), np.float32)

    def alignment(self, images: ImageBatch, texts: Sequence[str]) -> np.ndarray:
        """(N,) cosine between image i and text i (its generation prompt)."""
        if len(images) != len(texts):
            raise ValueError(f"{len(images)} images but {len(texts)} texts")
        return (self.image_embed(images) * self.text_embed(texts)).sum(axis=1)


def chexgenbench_mean(scores: Sequence[float]) -> float:
    """CheXGenBench's reported number: each score rounded to 3 decimals, the mean to 3."""
    if len(scores) == 0:
        raise ValueError("chexgenbench_mean: no scores")
    return float(np.round(np.mean([round(float(s), 3) for s in scores]), 3))


def check_biovil(directory: str | Path, image_weights: str | Path | None = None) -> str:
    """Validate a BioViL-T setup without running it; a one-line description, or a clear error
    (files; text and image checkpoints' names and shapes against config.json)."""
    directory = Path(directory)
    parts = _build(directory, Path(image_weights) if image_weights else None, meta=True)
    config = parts["bert"][0].config
    return (
        f"BioViL-T: {directory} (CXR-BERT {config.num_hidden_layers} layers; image weights "
        f"{parts['image'][2].name}; images {RESIZE} px -> crop {CROP}, cosine of 128-d projections)"
    )
