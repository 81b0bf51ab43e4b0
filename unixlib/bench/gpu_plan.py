"""What ``--gpu`` will run, built without a GPU: shapes, batches, kernel, FLOPs, memory estimate.

``python -m unixlib.bench --gpu --dry`` prints these plans on the CPU (no CUDA, no timing, no
weights: the model is counted on the meta device), and ``--gpu`` runs exactly them. Budget on
one H100 (< 8 minutes in all, model building included):

* ``gpu_train_step_packed`` / ``_padded`` (~4 min together): one stage-2 training step (the
  generation branch trains, 256 px, the paper profile's 32 samples per GPU, reports drawn from
  the IU length distribution scaled to 512 tokens, text dropout 0.1), bf16 autocast, AdamW,
  packed flex attention vs the padded reference; MFU and peak memory vs the estimate;
* ``gpu_sample_512px`` (~1 min): one 512 px image, 50 steps, CFG, VAE decode;
* ``gpu_decode_kv_cache`` (~1 min): greedy report decoding with the KV cache, tokens/s.

All 24 layers run when the memory estimate fits 85% of the GPU (it does on 80 GB: see
``--dry``); otherwise the plan keeps the first ``layers`` blocks that fit and says so.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from unixlib.bench import padding
from unixlib.data.packing import PackedBatch, SpecialTokens, generation_plan, pack
from unixlib.model.attention import attention_kernel
from unixlib.model.config import UniXConfig, preset
from unixlib.model.unix import parameter_counts
from unixlib.train.config import TrainConfig
from unixlib.train.memory import GB, PACK_BLOCK, batch_tokens, estimate_memory

H100_SXM_BF16_DENSE_TFLOPS = 989.4  # NVIDIA H100 SXM5 datasheet, dense bf16 (1,979 sparse)
H100_PCIE_BF16_DENSE_TFLOPS = 756.0  # H100 PCIe; the H200 SXM has the SXM5's 989
GPU_MEMORY_GB = 80.0  # one H100
FIT = 0.85  # the share of the GPU's memory a plan may fill by the estimate
FALLBACK_REPORT_RANGE = (20, 512)  # uniform report lengths when the IU CSV is absent


@dataclass
class StepPlan:
    """One training step of the benchmark: model, config, the batch in one layout."""

    model_config: UniXConfig
    train_config: TrainConfig
    batch: PackedBatch
    latents_shape: tuple[int, ...]
    report_source: str

    def describe(self, device: str = "cuda", gpu_gb: float = GPU_MEMORY_GB) -> dict[str, Any]:
        """Shapes, tokens, padding, kernel, FLOPs and the memory estimate, as JSON fields."""
        b, tokens, mc = self.batch, batch_tokens(self.batch), self.model_config
        est = estimate_memory(mc, self.train_config, 1, tokens=tokens)
        real = int(tokens.und + tokens.gen)
        return {
            "layout": tokens.layout,
            "batch_shape": list(b.shape),
            "samples": len(b.tasks),
            "tokens": real,
            "padding_fraction": tokens.pad / tokens.sequence,
            "layers": mc.num_layers,
            "image_size": mc.image_size_gen,
            "latent_tokens_per_image": mc.latent_grid(mc.image_size_gen) ** 2,
            "kernel": attention_kernel(b, torch.device(device)),
            "model_tflop_per_step": step_flops(mc, b) / 1e12,
            "memory_estimate_gib": est.total / GB,
            "activations_estimate_gib": est.activations / GB,
            "fits": est.fits(FIT * gpu_gb),
            "report_lengths": self.report_source,
        }


def report_lengths(n: int, seed: int = 0) -> tuple[list[int], str]:
    """``n`` report lengths: the IU distribution scaled to 512 tokens, or uniform when the
    CSV is absent (the GPU node may not have ``../shared/data``)."""
    rng = random.Random(seed)
    try:
        lengths = padding.iu_report_lengths().tolist()
        source = "IU X-ray reports scaled to 512 tokens"
    except FileNotFoundError:
        lo, hi = FALLBACK_REPORT_RANGE
        lengths, source = list(range(lo, hi + 1)), f"uniform {lo}..{hi} (no IU CSV here)"
    return [rng.choice(lengths) for _ in range(n)], source


def step_plan(
    packed: bool, batch_size: int = 32, layers: int | None = None, seed: int = 0
) -> StepPlan:
    """The stage-2 step of the paper profile (module docstring), ``layers`` blocks (all: None)."""
    overrides = {"image_size_gen": 256, **({"num_layers": layers} if layers else {})}
    mc = preset("paper", **overrides)
    cfg = TrainConfig(
        stage=2,
        preset="paper",
        image_size=256,
        batch_size=batch_size,
        max_report_tokens=padding.PAPER_MAX_REPORT,
        packing=packed,
    )
    lengths, source = report_lengths(batch_size, seed)
    rng, gen = np.random.default_rng(seed), torch.Generator().manual_seed(seed)
    special = SpecialTokens.from_mapping(mc.special_ids())
    grid = mc.latent_grid(mc.image_size_gen)
    plans = []
    for i, n in enumerate(lengths):
        dropped = rng.random() < cfg.text_dropout_prob
        ids = [] if dropped else torch.randint(5, mc.vocab_size, (n,), generator=gen).tolist()
        plans.append(generation_plan(ids, (grid, grid), special, i))
    batch = pack(plans, mc.pad_id, PACK_BLOCK if packed else 1, packed=packed)
    side = grid * mc.latent_patch_size
    return StepPlan(mc, cfg, batch, (batch_size, mc.latent_channels, side, side), source)


def fitting_plan(packed: bool, batch_size: int, gpu_gb: float) -> StepPlan:
    """All layers when the estimate fits ``FIT`` of ``gpu_gb``, else the most that do."""
    plan = step_plan(packed, batch_size)
    layers = plan.model_config.num_layers
    while layers > 1 and not plan.describe("cuda", gpu_gb)["fits"]:
        layers -= 1
        plan = step_plan(packed, batch_size, layers)
    return plan


def step_flops(mc: UniXConfig, batch: PackedBatch) -> float:
    """Model FLOPs of a stage-2 step (only the generation branch trains, ``freeze_und``):
    forward 2 N per token; backward 4 N more for latent tokens; attention 4 d per attended
    pair and layer forward, x3 for pairs whose query is a latent token (its backward)."""
    from unixlib.data.packing import VAE_CODE, dense_mask

    n_branch = parameter_counts(mc)["und_branch"]
    mask = dense_mask(batch)[:, 0]  # (B, L, L)
    gen_query = (batch.token_kind == VAE_CODE)[:, :, None]  # (B, L, 1)
    real = batch.token_kind != 0
    mask = mask & real[:, :, None] & real[:, None, :]
    gen_pairs, und_pairs = int((mask & gen_query).sum()), int((mask & ~gen_query).sum())
    gen_tok = int((batch.token_kind == VAE_CODE).sum())
    und_tok = int(real.sum()) - gen_tok
    d, layers = mc.hidden_size, mc.num_layers
    return float(
        2 * n_branch * und_tok
        + 6 * n_branch * gen_tok
        + 4 * layers * d * und_pairs
        + 12 * layers * d * gen_pairs
    )


def dry_rows(batch_size: int, gpu_gb: float = GPU_MEMORY_GB) -> list[dict[str, Any]]:
    """The ``--gpu --dry`` rows: each timed part's plan, without CUDA or timing."""
    rows = []
    for packed in (True, False):
        plan = fitting_plan(packed, batch_size, gpu_gb)
        name = "gpu_train_step_" + ("packed" if packed else "padded")
        rows.append({"name": name, "dry": True, **plan.describe("cuda", gpu_gb)})
    mc = preset("paper")
    rows.append(
        {
            "name": "gpu_sample_512px",
            "dry": True,
            "latent_tokens": mc.latent_grid(512) ** 2,
            "steps": mc.sample_steps,
            "cfg_scale": mc.cfg_scale,
            "report_tokens": 128,
            "rows_with_cfg": 2,
        }
    )
    rows.append(
        {
            "name": "gpu_decode_kv_cache",
            "dry": True,
            "batch": DECODE_BATCH,
            "new_tokens": DECODE_TOKENS,
            "prompt_tokens": 15,
            "vit_tokens": mc.vit_grid**2,
        }
    )
    return rows


DECODE_BATCH, DECODE_TOKENS = 8, 256
