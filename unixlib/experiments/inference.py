"""Use a trained model outside the notebooks: X-rays -> reports (describe), reports -> X-rays
(draw). The two CLI commands ``python -m unixlib describe|draw`` are thin calls into here.

Input images: PNG/JPEG (any bit depth, gray or colour, alpha dropped) or DICOM, read by
``unixlib.data.sources.images.load_image`` (the same path the data sources use), letterboxed to
a square as in the image cache, then resized by the model to its ViT input.

Batches survive bad inputs: an image that cannot be read (empty, truncated, not an image, a
decompression bomb, a broken DICOM, a missing path) or a report that cannot be drawn
(``report_inputs``) is recorded in a :class:`~unixlib.experiments.rejects.Rejects` with its
reason and the others are used; without one, the first bad input raises, as before.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from unixlib.config.device import resolve_device
from unixlib.data.schema import LABELS
from unixlib.data.sources.dicom import DicomError
from unixlib.data.sources.images import ImageError, load_image, save_png8, to_square
from unixlib.data.text.labeler import label_texts
from unixlib.data.text.tokenizer import ReportTokenizer
from unixlib.experiments.rejects import STAGE_CSV, STAGE_IMAGE, STAGE_REPORT, Rejects
from unixlib.experiments.report_inputs import ReportInput, drawing_problem
from unixlib.experiments.samples import _encoder as report_encoder
from unixlib.experiments.samples import generate_images, generate_reports
from unixlib.model.unix import UniX
from unixlib.train.config import TrainConfig

# Reports are cut to this many tokens before drawing, as training cut them (its default).
MAX_REPORT_TOKENS = TrainConfig.max_report_tokens


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


# Images read and described at a time: memory stays bounded however many files a folder holds.
READ_CHUNK = 256


def read_images(
    paths: Sequence[Path], size: int, rejects: Rejects | None = None, first: int = 1
) -> tuple[torch.Tensor, list[int]]:
    """(N, 1, size, size) float in [0, 1] of the readable files of ``paths``, and their
    positions in ``paths``. An unreadable file is recorded in ``rejects`` (id: the path; ref:
    ``IMAGE k``, ``k`` counted from ``first``); without ``rejects`` it raises ``ImageError`` /
    ``DicomError`` (its path and reason)."""
    rejects = Rejects(fail_fast=True) if rejects is None else rejects
    arrays, kept = [], []
    for k, path in enumerate(paths):
        try:
            arrays.append(to_square(load_image(path), size))
        except (ImageError, DicomError) as err:
            rejects.add(str(path), f"IMAGE {first + k}", STAGE_IMAGE, err.reason, error=err)
            continue
        kept.append(k)
    if not arrays:
        return torch.empty(0, 1, size, size), kept
    return torch.from_numpy(np.stack(arrays))[:, None].float(), kept


def _findings(labels: pd.Series) -> str:
    names = [c for c in LABELS if labels[c] in (1.0, -1.0)]
    return ", ".join(n + ("?" if labels[n] == -1.0 else "") for n in names) or "none"


def describe(
    model: UniX,
    tokenizer: ReportTokenizer,
    images: Sequence[Path],
    max_new_tokens: int = 128,
    batch_size: int = 16,
    rejects: Rejects | None = None,
) -> pd.DataFrame:
    """One row per readable image, in input order: ``image``, ``report``, ``findings`` (the
    labeler's positives, ``?`` = uncertain) and the labeler's 14 label columns (1 positive, 0
    negative, -1 uncertain, empty = not mentioned). Images are read :data:`READ_CHUNK` at a
    time; an unreadable one goes to ``rejects`` (:func:`read_images`; without ``rejects`` the
    first one raises)."""
    described: list[str] = []
    reports: list[str] = []
    for start in range(0, len(images), READ_CHUNK):
        chunk = images[start : start + READ_CHUNK]
        pixels, kept = read_images(chunk, model.config.image_size_und, rejects, first=start + 1)
        if kept:
            described += [str(chunk[k]) for k in kept]
            reports += generate_reports(
                model, pixels, tokenizer, max_new_tokens, batch_size=batch_size
            )
    labels = label_texts(reports)
    frame = pd.DataFrame({"image": described, "report": reports})
    frame["findings"] = [_findings(row) for _, row in labels.iterrows()]
    return pd.concat([frame, labels.reset_index(drop=True)], axis=1)


def _slug(text: str, limit: int = 40) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:limit].rstrip("-") or "report"


def draw(
    model: UniX,
    tokenizer: ReportTokenizer,
    reports: Sequence[str | ReportInput],
    out_dir: Path,
    steps: int | None = None,
    cfg_scale: float | None = None,
    seed: int = 0,
    size: int | None = None,
    batch_size: int = 8,
    max_report_tokens: int | None = None,
    rejects: Rejects | None = None,
) -> pd.DataFrame:
    """Generate one image per drawable report (``report_inputs.drawing_problem``) into
    ``out_dir/NNN_<words>.png`` (8-bit gray; NNN = the report's position among ``reports``, so
    a rejected report leaves a gap) and ``out_dir/images.csv``; defaults from the model config.

    A report is cut to its first ``max_report_tokens`` tokens (default
    :data:`MAX_REPORT_TOKENS`; the table's ``tokens`` column is its full length, ``truncated``
    says it was cut). A report that cannot be drawn goes to
    ``rejects`` (id: its NNN); without ``rejects`` the first one raises ``InputRejected``.
    Returns the table: ``file, ref, report, tokens, truncated, seed, size``.
    """
    items = [
        r if isinstance(r, ReportInput) else ReportInput(f"report {i + 1}", r)
        for i, r in enumerate(reports)
    ]
    if not items:
        raise ValueError("no reports to draw (give --report or --reports-csv)")
    rejects = Rejects(fail_fast=True) if rejects is None else rejects
    max_report_tokens = max_report_tokens or MAX_REPORT_TOKENS
    size = size or model.config.image_size_gen
    model.config.latent_grid(size)  # a size the VAE and patching cannot take fails here
    kept = _drawable(items, report_encoder(model, tokenizer), rejects)
    texts = [item.text for _, item, _ in kept]
    kw = dict(size=size, steps=steps, cfg_scale=cfg_scale, seed=seed, batch_size=batch_size)
    images = (
        generate_images(model, texts, tokenizer, max_report_tokens=max_report_tokens, **kw)
        if kept
        else []
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for (i, item, _), image in zip(kept, images, strict=True):
        path = out_dir / f"{i:03d}_{_slug(item.text)}.png"
        save_png8(image, path)
        files.append(path.name)
    tokens = [n for _, _, n in kept]
    table = pd.DataFrame(
        {
            "file": files,
            "ref": [item.ref for _, item, _ in kept],
            "report": texts,
            "tokens": tokens,
            "truncated": [n > max_report_tokens for n in tokens],
            "seed": seed,
            "size": size,
        }
    )
    table.to_csv(out_dir / "images.csv", index=False)
    return table


def _drawable(
    items: Sequence[ReportInput], encode: Callable[[str], list[int]], rejects: Rejects
) -> list[tuple[int, ReportInput, int]]:
    """(position, report, its length in tokens) of each report that can be drawn; each other
    one goes to ``rejects`` under its position ``NNN``."""
    kept = []
    for i, item in enumerate(items):
        stage = STAGE_CSV if item.malformed else STAGE_REPORT
        reason = item.malformed or drawing_problem(item.text)
        if reason is not None:
            rejects.add(f"{i:03d}", item.ref, stage, reason)
        else:
            kept.append((i, item, len(encode(item.text))))
    return kept
