"""Random sample plans and model inputs for the packed-sequence tests (not collected)."""

from __future__ import annotations

import random
from typing import Any

import torch

from unixlib.data.packing import SamplePlan, SpecialTokens, generation_plan, understanding_plan
from unixlib.model.config import UniXConfig

SPECIAL = SpecialTokens(bos=1, eos=2, pad=0, boi=3, eoi=4)
TASKS = ("und", "gen", "uncond")


def random_plans(
    rng: random.Random,
    n: int,
    layout: str,
    special: SpecialTokens = SPECIAL,
    vit_grid: tuple[int, int] = (2, 2),
    vae_grid: tuple[int, int] = (2, 2),
    vocab: int = 60,
    tasks: tuple[str, ...] = TASKS,
) -> list[SamplePlan]:
    """``n`` plans of tasks drawn from ``tasks`` with random prompt and report lengths; the
    understanding plans first, then the generation ones (the trainer's batch order)."""

    def ids(k: int) -> list[int]:
        return [rng.randrange(5, vocab) for _ in range(k)]

    drawn = sorted((rng.choice(tasks) for _ in range(n)), key=lambda t: t != "und")
    plans = []
    for i, task in enumerate(drawn):
        if task == "und":
            plan = understanding_plan(
                ids(rng.randrange(0, 4)), ids(rng.randrange(1, 9)), vit_grid, special, i, layout
            )
        else:
            report = ids(rng.randrange(1, 9)) if task == "gen" else []
            plan = generation_plan(report, vae_grid, special, i, layout=layout)
        plans.append(plan)
    return plans


def model_inputs(cfg: UniXConfig, plans: list[SamplePlan], seed: int = 0) -> dict[str, Any]:
    """Image inputs of ``plans`` for ``UniX.forward``: ViT pixels, latents, times, noise."""
    gen = torch.Generator().manual_seed(seed)
    n_vit = sum(s.kind == "vit" for p in plans for s in p.splits)
    n_vae = sum(s.kind == "vae" for p in plans for s in p.splits)
    side = cfg.latent_grid(cfg.image_size_gen) * cfg.latent_patch_size
    size = cfg.image_size_und
    latents = torch.randn(n_vae, cfg.latent_channels, side, side, generator=gen)
    return {
        "vit_pixels": torch.randn(n_vit, 3, size, size, generator=gen) if n_vit else None,
        "latents": latents if n_vae else None,
        "timesteps": torch.rand(n_vae, generator=gen) if n_vae else None,
        "noise": torch.randn(latents.shape, generator=gen) if n_vae else None,
    }
