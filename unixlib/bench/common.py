"""What every benchmark shares: paired timing, random batches, a tiny model, one training step."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from unixlib.data.packing import (
    PAD_CODE,
    PackedBatch,
    SpecialTokens,
    dense_mask,
    generation_plan,
    pack,
    understanding_plan,
)
from unixlib.model.config import UniXConfig, preset
from unixlib.model.unix import UniX
from unixlib.train import precision

FIRST_ID = 5  # report ids avoid the special ids 0..4 of the tiny tokenizer


def seconds(fn: Callable[[], Any], sync: Callable[[], None]) -> float:
    sync()
    start = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - start


def paired_medians(
    baseline: Callable[[], Any],
    candidate: Callable[[], Any],
    repeats: int,
    sync: Callable[[], None] = lambda: None,
) -> tuple[float, float]:
    """Median seconds of ``baseline`` and ``candidate``, timed alternately ``repeats`` times
    (callers warm both up first); ``sync`` waits for queued device work before each clock."""
    pairs = [(seconds(baseline, sync), seconds(candidate, sync)) for _ in range(repeats)]
    return statistics.median(b for b, _ in pairs), statistics.median(c for _, c in pairs)


def median_seconds(fn: Callable[[], Any], repeats: int, sync: Callable[[], None]) -> float:
    """Median seconds of ``repeats`` timed calls of ``fn`` (warmed up by the caller)."""
    return statistics.median(seconds(fn, sync) for _ in range(repeats))


def random_ids(n: int, vocab: int, gen: torch.Generator) -> list[int]:
    """``n`` token ids drawn uniformly from the non-special range of a vocabulary."""
    return torch.randint(FIRST_ID, vocab, (n,), generator=gen).tolist()


def mixed_batch(
    cfg: UniXConfig,
    n_und: int,
    n_gen: int,
    report_len: int | Sequence[int],
    prompt_len: int = 15,
    seed: int = 0,
    packed: bool = False,
) -> dict[str, Any]:
    """A training batch of ``n_und`` understanding and ``n_gen`` generation samples (every
    fifth generation sample unconditional) with its image inputs, as ``UniX.forward`` keyword
    arguments: batch, vit_pixels, latents, timesteps, noise. ``report_len``: one length for
    every report, or one per sample (understanding first); ``packed``: one packed sequence
    instead of padded rows (same samples, same draws)."""
    gen = torch.Generator().manual_seed(seed)
    special = SpecialTokens.from_mapping(cfg.special_ids())
    vit, g = (cfg.vit_grid, cfg.vit_grid), cfg.latent_grid(cfg.image_size_gen)
    v = cfg.vocab_size
    lengths = [report_len] * (n_und + n_gen) if isinstance(report_len, int) else list(report_len)
    if len(lengths) != n_und + n_gen:
        raise ValueError(f"{len(lengths)} report lengths for {n_und + n_gen} samples")
    plans = [
        understanding_plan(
            random_ids(prompt_len, v, gen), random_ids(lengths[i], v, gen), vit, special, i
        )
        for i in range(n_und)
    ]
    plans += [
        generation_plan(random_ids(lengths[n_und + i], v, gen) if i % 5 else [], (g, g), special, i)
        for i in range(n_gen)
    ]
    side = g * cfg.latent_patch_size
    latents = torch.randn(n_gen, cfg.latent_channels, side, side, generator=gen)
    return {
        "batch": pack(plans, cfg.pad_id, packed=packed),
        "vit_pixels": torch.randn(n_und, 3, cfg.image_size_und, cfg.image_size_und, generator=gen)
        if n_und
        else None,
        "latents": latents if n_gen else None,
        "timesteps": torch.rand(n_gen, generator=gen) if n_gen else None,
        "noise": torch.randn(latents.shape, generator=gen) if n_gen else None,
    }


def attended_pairs(batch: PackedBatch) -> int:
    """(query, key) pairs the attention mask allows between real tokens (padding excluded),
    either layout (``dense_mask`` is the reference mask of a padded or packed batch)."""
    real = batch.token_kind != PAD_CODE  # (B, L)
    mask = dense_mask(batch)[:, 0] & real[:, :, None] & real[:, None, :]  # (B, L, L)
    return int(mask.sum())


def tiny_model(seed: int = 0, **overrides: Any) -> UniX:
    torch.manual_seed(seed)
    return UniX(preset("tiny", **overrides)).eval()


def training_step(
    model: UniX, inputs: dict[str, Any], mixed_precision: str = "auto"
) -> Callable[[], None]:
    """One training step on ``inputs`` (``mixed_batch``): forward (in the precision the training
    loop resolves ``mixed_precision`` to on this CPU), backward, fused AdamW on the parameters
    that require grad (as the training loop), with a live generation head."""
    torch.nn.init.normal_(model.llm2vae.weight, std=0.02)  # zero-initialised: v would be 0
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(
        params, lr=1e-4, betas=(0.9, 0.95), eps=1e-15, weight_decay=0, fused=True
    )

    def step() -> None:
        with precision.autocast(mixed_precision, torch.device("cpu")):
            loss = model(**inputs)["loss"]
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def result_row(
    name: str, base: float, cand: float, target: float | None, unit: str = "s", **settings: Any
) -> dict:
    """One benchmark's JSON row: ``baseline_<unit>``, ``candidate_<unit>`` (seconds unless
    said), their ratio, the target on the ratio, the settings, threads and device."""
    ratio = base / cand
    return {
        "name": name,
        f"baseline_{unit}": base,
        f"candidate_{unit}": cand,
        "ratio": ratio,
        "target": None if target is None else f"ratio >= {target:.3g}",
        "meets_target": None if target is None else ratio >= target,
        **settings,
        "threads": torch.get_num_threads(),
        "device": "cpu",
    }
