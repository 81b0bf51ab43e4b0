"""Batched report and image generation from a trained UniX, for the notebooks' tables/figures.

Thin wrappers over ``UniX.generate_report`` / ``UniX.generate_image`` that take and return
text and arrays (the notebooks and ``viz`` never touch token ids or tensors).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from unixlib.config.progress import bar
from unixlib.data.schema import LABELS
from unixlib.data.text.labeler import label_texts
from unixlib.data.text.prompts import EVAL_PROMPT
from unixlib.data.text.tokenizer import ReportTokenizer
from unixlib.model.unix import UniX


@torch.no_grad()
def generate_reports(
    model: UniX,
    images: torch.Tensor,
    tokenizer: ReportTokenizer,
    max_new_tokens: int,
    prompt: str | Sequence[str] = EVAL_PROMPT,
    batch_size: int = 16,
) -> list[str]:
    """Greedy reports for (N, 1, H, W) images in [0, 1] (resized to the model's ViT input).

    ``prompt``: one instruction for every image, or one per image (the paper's understanding
    test set prompts each image with its own, ``data/sources/understanding_test.py``).
    """
    model.eval()
    device = next(model.parameters()).device
    prompt_ids = understanding_prompt_ids(model, tokenizer, prompt, len(images))
    out: list[str] = []
    starts = range(0, len(images), batch_size)
    for start in bar(starts, desc="generate reports", unit="batch"):
        chunk = images[start : start + batch_size].to(device)
        ids = model.generate_report(chunk, prompt_ids[start : start + batch_size], max_new_tokens)
        out += [tokenizer.decode(r) for r in ids]
    return out


def understanding_prompt_ids(
    model: UniX, tokenizer: ReportTokenizer, prompt: str | Sequence[str], n: int
) -> list[list[int]]:
    """The instruction ids of each of ``n`` images: ``prompt`` for all, or ``prompt[i]`` for
    image i (each distinct text encoded once, as the model's sequence layout expects)."""
    prompts = [prompt] * n if isinstance(prompt, str) else list(prompt)
    if len(prompts) != n:
        raise ValueError(f"{len(prompts)} prompts for {n} images")
    encode = _encoder(model, tokenizer)
    ids = {text: encode(text) for text in dict.fromkeys(prompts)}
    return [ids[text] for text in prompts]


def _encoder(model: UniX, tokenizer: ReportTokenizer) -> Callable[[str], list[int]]:
    """Text -> ids as the model's sequence layout expects: the official layout encodes as the
    official inference code does (``ReportTokenizer.encode_official``)."""
    if model.config.sequence_layout == "official":
        return tokenizer.encode_official
    return tokenizer.encode


@torch.no_grad()
def generate_images(
    model: UniX,
    reports: Sequence[str],
    tokenizer: ReportTokenizer,
    size: int | None = None,
    steps: int | None = None,
    cfg_scale: float | None = None,
    seed: int = 0,
    batch_size: int = 16,
    max_report_tokens: int = 256,
    release_pixels: bool = False,
) -> np.ndarray:
    """(N, size, size) float images in [0, 1], one per report ("" = unconditional).

    The b-th batch of ``batch_size`` reports starts from noise seeded by ``seed + b``.
    ``max_report_tokens``: each report's ids are cut to this many; 0 keeps them whole (the
    release does not truncate its prompts, ``release-eval``).
    ``release_pixels``: the images as the release saves them instead (``inference/
    inferencer.py``, ``decode_image``): the decoder's three channels, 8-bit by truncation
    (``(x * 255).clip(0, 255).astype(uint8)``), as (N, 3, size, size) uint8.
    """
    if max_report_tokens < 0:
        raise ValueError(f"max_report_tokens must be >= 0 (0: no cut), got {max_report_tokens}")
    model.eval()
    encode = _encoder(model, tokenizer)
    cut = max_report_tokens or None  # ids[:None] keeps every id
    ids = [encode(r)[:cut] if r else [] for r in reports]
    out = []
    starts = range(0, len(ids), batch_size)
    for b, start in enumerate(bar(starts, desc="generate images", unit="batch")):
        images = model.generate_image(
            ids[start : start + batch_size],
            size=size,
            steps=steps,
            cfg_scale=cfg_scale,
            seed=seed + b,
            rgb=release_pixels,
        )
        if release_pixels:  # (n, 3, H, W): the release's 8-bit cast truncates
            out.append((images.float().cpu().numpy() * 255).clip(0, 255).astype(np.uint8))
        else:
            out.append(images[:, 0].float().cpu().numpy())
    return np.concatenate(out) if release_pixels else np.concatenate(out).clip(0, 1)


def report_table(references: Sequence[str], generated: Sequence[str]) -> pd.DataFrame:
    """Reference vs generated report per row, with the labeler's positive findings of each and
    whether the 14 labels agree (uncertain counted as positive)."""
    ref_lab, gen_lab = label_texts(references), label_texts(generated)

    def positives(row: pd.Series) -> str:
        names = [c for c in LABELS if row[c] in (1.0, -1.0)]
        return ", ".join(n + ("?" if row[n] == -1.0 else "") for n in names) or "-"

    agree = ((ref_lab.isin([1.0, -1.0])) == (gen_lab.isin([1.0, -1.0]))).all(axis=1)
    return pd.DataFrame(
        {
            "reference": list(references),
            "generated": list(generated),
            "reference findings": ref_lab.apply(positives, axis=1),
            "generated findings": gen_lab.apply(positives, axis=1),
            "labels agree": agree.to_numpy(),
        }
    )


def label_agreement(references: Sequence[str], generated: Sequence[str]) -> pd.DataFrame:
    """Per-class share of rows where the labeler finds the class (pos./uncertain) in both or in
    neither text: a quick check of round trips, not the paper's F1 (that is notebook 05)."""
    ref_lab = label_texts(references).isin([1.0, -1.0])
    gen_lab = label_texts(generated).isin([1.0, -1.0])
    return pd.DataFrame(
        {
            "class": list(LABELS),
            "reference positives": ref_lab.sum().to_numpy(),
            "generated positives": gen_lab.sum().to_numpy(),
            "agreement": (ref_lab == gen_lab).mean().to_numpy(),
        }
    )
