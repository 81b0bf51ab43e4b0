"""Use a trained model outside the notebooks: X-rays -> reports (describe), reports -> X-rays
(draw). The two CLI commands ``python -m unixlib describe|draw`` are thin calls into here.

Input images: PNG/JPEG (any bit depth, gray or colour) or DICOM, read by
``unixlib.data.images.load_image`` (the same path the data sources use), letterboxed to a
square as in the image cache, then resized by the model to its ViT input.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from unixlib.config.device import resolve_device
from unixlib.data.schema import LABELS
from unixlib.data.sources.images import load_image, save_png8, to_square
from unixlib.data.text.labeler import label_texts
from unixlib.data.text.tokenizer import ReportTokenizer
from unixlib.experiments.samples import generate_images, generate_reports
from unixlib.model.unix import UniX


def load_model_dir(path: Path, device: str = "auto") -> tuple[UniX, ReportTokenizer]:
    """A saved model directory (``save_pretrained``) -> (model in eval mode, its tokenizer).

    Raises FileNotFoundError naming what is missing; ValueError when the tokenizer's special
    ids are not the model's."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"model directory {path} does not exist")
    if not (path / "tokenizer.json").is_file():
        raise FileNotFoundError(
            f"{path} has no tokenizer.json: not a complete model directory (a final/ folder "
            "written before tokenizers were saved: `python -m unixlib export` makes one)"
        )
    tokenizer = ReportTokenizer.load(path)
    model = UniX.from_pretrained(path, device=resolve_device(device)).eval()
    if tokenizer.special_ids != {
        k: getattr(model.config, f"{k}_id") for k in tokenizer.special_ids
    }:
        raise ValueError(
            f"{path}: tokenizer special ids {tokenizer.special_ids} are not the model's"
        )
    return model, tokenizer


def read_images(paths: Sequence[Path], size: int) -> torch.Tensor:
    """(N, 1, size, size) float in [0, 1]; an unreadable file raises ``ImageError`` (its path
    and reason)."""
    arrays = [to_square(load_image(p), size) for p in paths]
    return torch.from_numpy(np.stack(arrays))[:, None].float()


def _findings(labels: pd.Series) -> str:
    names = [c for c in LABELS if labels[c] in (1.0, -1.0)]
    return ", ".join(n + ("?" if labels[n] == -1.0 else "") for n in names) or "none"


def describe(
    model: UniX,
    tokenizer: ReportTokenizer,
    images: Sequence[Path],
    max_new_tokens: int = 128,
    batch_size: int = 16,
) -> pd.DataFrame:
    """One row per image: ``image``, ``report``, ``findings`` (the labeler's positives, ``?``
    = uncertain) and the labeler's 14 label columns (1 positive, 0 negative, -1 uncertain,
    empty = not mentioned). Every image is read before any is described."""
    pixels = read_images(images, model.config.image_size_und)
    reports = generate_reports(model, pixels, tokenizer, max_new_tokens, batch_size=batch_size)
    labels = label_texts(reports)
    frame = pd.DataFrame({"image": [str(p) for p in images], "report": reports})
    frame["findings"] = labels.apply(_findings, axis=1).to_numpy()
    return pd.concat([frame, labels.reset_index(drop=True)], axis=1)


def _slug(text: str, limit: int = 40) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:limit].rstrip("-") or "report"


def read_reports(csv: Path, column: str = "report") -> list[str]:
    """The ``column`` of a CSV (e.g. ``describe --out``'s output): one report per row."""
    frame = pd.read_csv(csv, keep_default_na=False)
    if column not in frame.columns:
        raise ValueError(f"{csv}: no {column!r} column (columns: {', '.join(frame.columns)})")
    return [str(r) for r in frame[column]]


def draw(
    model: UniX,
    tokenizer: ReportTokenizer,
    reports: Sequence[str],
    out_dir: Path,
    steps: int | None = None,
    cfg_scale: float | None = None,
    seed: int = 0,
    size: int | None = None,
    batch_size: int = 8,
) -> pd.DataFrame:
    """Generate one image per report into ``out_dir/NNN_<words>.png`` (8-bit gray) and
    ``out_dir/images.csv`` (file, report, seed); defaults from the model config. Returns the
    table."""
    if not reports:
        raise ValueError("no reports to draw (give --report or --reports-csv)")
    size = size or model.config.image_size_gen
    model.config.latent_grid(size)  # a size the VAE and patching cannot take fails here
    images = generate_images(
        model,
        list(reports),
        tokenizer,
        size=size,
        steps=steps,
        cfg_scale=cfg_scale,
        seed=seed,
        batch_size=batch_size,
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for i, (report, image) in enumerate(zip(reports, images, strict=True)):
        path = out_dir / f"{i:03d}_{_slug(report)}.png"
        save_png8(image, path)
        files.append(path.name)
    table = pd.DataFrame({"file": files, "report": list(reports), "seed": seed, "size": size})
    table.to_csv(out_dir / "images.csv", index=False)
    return table
