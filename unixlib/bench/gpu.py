"""``--gpu``: the ``paper`` preset on CUDA, model FLOPs utilisation (see :mod:`unixlib.bench`)."""

from __future__ import annotations

import json
import math

import torch

from unixlib.bench.common import median_seconds, mixed_batch, random_ids
from unixlib.data.packing import (
    PAD_CODE,
    PackedBatch,
)
from unixlib.model.config import preset
from unixlib.model.unix import UniX, parameter_counts

H200_BF16_DENSE_TFLOPS = 989.0  # NVIDIA H200 SXM datasheet, dense (no sparsity)


def attended_pairs(batch: PackedBatch) -> int:
    """(query, key) pairs the attention mask allows between real tokens (padding excluded)."""
    real = batch.token_kind != PAD_CODE  # (B, L)
    mask = batch.attention_mask[:, 0] & real[:, :, None] & real[:, None, :]
    return int(mask.sum())


def gpu_train_step(size: int, batch_size: int, peak_tflops: float, repeats: int) -> dict:
    """Training step of the ``paper`` preset on ``batch_size`` generation samples at ``size`` px:
    bf16 autocast, gradient checkpointing, AdamW on every LLM parameter (both branches and the
    embeddings; vision tower and VAE frozen and, on generation batches, not run)."""
    cfg = preset("paper", image_size_gen=size)
    with torch.device("cuda"):
        model = UniX(cfg).train()
    model.language_model.gradient_checkpointing = True
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith(("language_model.", "vae2llm", "llm2vae", "time_emb")))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(
        params, lr=1e-4, betas=(0.9, 0.95), eps=1e-15, weight_decay=0, fused=True
    )
    inputs = mixed_batch(cfg, 0, batch_size, report_len=128)
    batch = inputs.pop("batch")
    on_gpu = {k: v.to("cuda") for k, v in inputs.items() if v is not None}
    on_gpu["batch"] = batch.to("cuda")

    def step() -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(**on_gpu)["loss"]
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(2):
        step()
    step_s = median_seconds(step, repeats, torch.cuda.synchronize)
    tokens, pairs = int(batch.lengths.sum()), attended_pairs(batch)
    n_active = parameter_counts(cfg)["und_branch"]
    flops = 6 * n_active * tokens + 12 * cfg.num_layers * cfg.hidden_size * pairs
    return {
        "name": f"gpu_train_step_{size}px",
        "step_s": step_s,
        "batch": batch_size,
        "padded_shape": list(batch.shape),
        "tokens": tokens,
        "tokens_per_s": tokens / step_s,
        "active_params": n_active,
        "model_tflop_per_step": flops / 1e12,
        "mfu": flops / step_s / (peak_tflops * 1e12),
        "peak_tflops": peak_tflops,
        "max_memory_gib": torch.cuda.max_memory_allocated() / 2**30,
        "preset": "paper",
        "dtype": "bf16 autocast",
        "gradient_checkpointing": True,
        "repeats": repeats,
        "device": torch.cuda.get_device_name(),
    }


def gpu_sampling(size: int, repeats: int) -> dict:
    """Seconds to sample one ``size`` px image with the paper settings (50 steps, CFG 2.0 on
    t in (0.4, 1], reused context, VAE decode included), ``paper`` preset, bf16 autocast."""
    cfg = preset("paper")
    with torch.device("cuda"):
        model = UniX(cfg).eval()
    report = random_ids(128, cfg.vocab_size, torch.Generator().manual_seed(0))

    def sample(steps: int = cfg.sample_steps) -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            model.generate_image([report], size=size, steps=steps)

    sample(2)
    seconds = median_seconds(sample, repeats, torch.cuda.synchronize)
    return {
        "name": f"gpu_sample_{size}px",
        "seconds_per_image": seconds,
        "batch": 1,
        "steps": cfg.sample_steps,
        "cfg_scale": cfg.cfg_scale,
        "report_tokens": len(report),
        "preset": "paper",
        "dtype": "bf16 autocast",
        "repeats": repeats,
        "device": torch.cuda.get_device_name(),
    }


def run_gpu(peak_tflops: float, batch_256: int, batch_512: int, repeats: int) -> list[dict]:
    """The GPU benchmarks; ``SystemExit`` with an explanation when CUDA is not available."""
    if not torch.cuda.is_available():
        raise SystemExit(
            "unixlib.bench --gpu needs a CUDA GPU, but torch.cuda.is_available() is "
            f"False (torch {torch.__version__}, CUDA build: {torch.version.cuda}); "
            "run it on a GPU node, or drop --gpu for the CPU benchmarks"
        )
    if not math.isfinite(peak_tflops) or peak_tflops <= 0:
        raise SystemExit(f"--peak-tflops must be a positive number, got {peak_tflops}")
    results = []
    for job in (
        lambda: gpu_train_step(256, batch_256, peak_tflops, repeats),
        lambda: gpu_train_step(512, batch_512, peak_tflops, repeats),
        lambda: gpu_sampling(512, repeats),
    ):
        results.append(job())
        print(json.dumps(results[-1]), flush=True)
        torch.cuda.empty_cache()
    return results
