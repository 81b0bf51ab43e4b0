"""The activation estimate (train/memory.py) against what autograd keeps (train/memory_probe.py),
tiny preset on the CPU, for batches of each stage in both layouts.

Stated factor: the estimate is within 2x of the measured saved tensors either way. It assumes
every kept tensor is bf16 apart from the norms' fp32 upcasts; on the CPU autocast keeps a few
more fp32 tensors (softmax statistics, the loss' fp32 logits) and the tiny preset's vocabulary
is small, so the two differ by up to about a third here. Activation checkpointing is not
probed: ``torch.utils.checkpoint`` keeps each block's input outside the saved-tensor hooks.
"""

from __future__ import annotations

import pytest
import torch

from unixlib.data.packing import SpecialTokens, generation_plan, pack, understanding_plan
from unixlib.model.config import preset
from unixlib.model.unix import UniX
from unixlib.train.config import TrainConfig
from unixlib.train.memory import activation_bytes, batch_tokens
from unixlib.train.memory_probe import prepare_for_stage, saved_activation_bytes

FACTOR = 2.0


def _inputs(stage: int, report_lengths: list[int], packed: bool) -> dict:
    cfg = preset("tiny")
    special = SpecialTokens.from_mapping(cfg.special_ids())
    gen = torch.Generator().manual_seed(0)

    def ids(n: int) -> list[int]:
        return torch.randint(5, cfg.vocab_size, (n,), generator=gen).tolist()

    g = cfg.latent_grid(cfg.image_size_gen)
    if stage == 1:
        vit = (cfg.vit_grid, cfg.vit_grid)
        plans = [
            understanding_plan(ids(7), ids(n), vit, special, i)
            for i, n in enumerate(report_lengths)
        ]
    else:
        plans = [generation_plan(ids(n), (g, g), special, i) for i, n in enumerate(report_lengths)]
    batch = pack(plans, cfg.pad_id, packed=packed) if packed else pack(plans, cfg.pad_id)
    n = len(plans)
    side = g * cfg.latent_patch_size
    if stage == 1:
        pixels = torch.randn(n, 3, cfg.image_size_und, cfg.image_size_und, generator=gen)
        return {"batch": batch, "vit_pixels": pixels}
    latents = torch.randn(n, cfg.latent_channels, side, side, generator=gen)
    return {
        "batch": batch,
        "latents": latents,
        "timesteps": torch.rand(n, generator=gen),
        "noise": torch.randn(latents.shape, generator=gen),
    }


@pytest.mark.parametrize("packed", [False, True])
@pytest.mark.parametrize(
    ("stage", "lengths"),
    [(1, [5, 40, 12, 60]), (2, [3, 30, 50]), (3, [10, 60])],
)
def test_estimate_is_within_a_factor_of_the_saved_tensors(stage, lengths, packed) -> None:
    torch.manual_seed(0)
    model = UniX(preset("tiny"))
    torch.nn.init.normal_(model.llm2vae.weight, std=0.02)
    cfg = TrainConfig(stage=stage)
    prepare_for_stage(model, cfg)
    inputs = _inputs(stage, lengths, packed)
    measured = saved_activation_bytes(model, inputs)
    estimate = activation_bytes(model.config, cfg, batch_tokens(inputs["batch"]))
    assert measured > 0
    assert 1 / FACTOR <= estimate / measured <= FACTOR, (estimate, measured)


def test_probe_counts_no_weights() -> None:
    """A frozen model keeps nothing for backward: the probe measures activations only."""
    model = UniX(preset("tiny"))
    cfg = TrainConfig(stage=2)
    prepare_for_stage(model, cfg)
    inputs = _inputs(2, [4, 9], packed=False)
    for p in model.parameters():
        p.requires_grad_(False)
    model.llm2vae.weight.requires_grad_(True)  # one trained output layer: its input is kept
    measured = saved_activation_bytes(model, inputs)
    n_latents = int(inputs["batch"].flow_mask.sum())
    hidden = model.config.hidden_size
    assert 0 < measured < 8 * n_latents * hidden * 4
