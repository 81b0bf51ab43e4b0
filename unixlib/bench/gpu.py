"""``--gpu``: the ``paper`` preset on CUDA (see :mod:`unixlib.bench.gpu_plan` for the plans and
the time budget, :mod:`unixlib.bench` for the MFU convention). ``--dry`` prints the plans."""

from __future__ import annotations

import json
import math
from typing import Any

import torch

from unixlib.bench.common import median_seconds, random_ids
from unixlib.bench.gpu_plan import (
    DECODE_BATCH,
    DECODE_TOKENS,
    GPU_MEMORY_GB,
    H100_SXM_BF16_DENSE_TFLOPS,
    StepPlan,
    dry_rows,
    fitting_plan,
)
from unixlib.model.config import preset
from unixlib.model.unix import UniX
from unixlib.train.memory_probe import prepare_for_stage

__all__ = ["H100_SXM_BF16_DENSE_TFLOPS", "run_gpu"]


def gpu_train_step(name: str, plan: StepPlan, peak_tflops: float, repeats: int) -> dict[str, Any]:
    """One stage-2 step of ``plan`` (bf16 autocast, fused AdamW on the generation branch):
    seconds, MFU, and ``torch.cuda.max_memory_allocated`` beside the plan's estimate."""
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    with torch.device("cuda"):
        model = UniX(plan.model_config)
    prepare_for_stage(model, plan.train_config)
    torch.nn.init.normal_(model.llm2vae.weight, std=0.02)  # zero-initialised: v would be 0
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.95), eps=1e-15, fused=True)
    gen = torch.Generator().manual_seed(0)
    latents = torch.randn(plan.latents_shape, generator=gen)
    inputs = {
        "batch": plan.batch.to("cuda"),
        "latents": latents.cuda(),
        "timesteps": torch.rand(latents.shape[0], generator=gen).cuda(),
        "noise": torch.randn(latents.shape, generator=gen).cuda(),
    }

    def step() -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(**inputs)["loss"]
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(2):  # compile (flex_attention) and allocator warm-up
        step()
    step_s = median_seconds(step, repeats, torch.cuda.synchronize)
    row = plan.describe("cuda", torch.cuda.get_device_properties(0).total_memory / 2**30)
    flops = row["model_tflop_per_step"] * 1e12
    return {
        "name": name,
        **row,
        "step_s": step_s,
        "tokens_per_s": row["tokens"] / step_s,
        "mfu": flops / step_s / (peak_tflops * 1e12),
        "peak_tflops": peak_tflops,
        "max_memory_allocated_gib": torch.cuda.max_memory_allocated() / 2**30,
        "dtype": "bf16 autocast",
        "repeats": repeats,
        "device": torch.cuda.get_device_name(),
    }


def gpu_sampling(size: int, repeats: int) -> dict[str, Any]:
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
        "dtype": "bf16 autocast",
        "repeats": repeats,
        "device": torch.cuda.get_device_name(),
    }


def gpu_decode(repeats: int) -> dict[str, Any]:
    """Greedy decoding of ``DECODE_TOKENS`` tokens for ``DECODE_BATCH`` images with the KV
    cache (no eos: every row decodes them all), bf16 autocast."""
    cfg = preset("paper", eos_id=-1)
    with torch.device("cuda"):
        model = UniX(cfg).eval()
    gen = torch.Generator().manual_seed(0)
    size = cfg.image_size_und
    images = torch.rand(DECODE_BATCH, 1, size, size, generator=gen).cuda()
    prompt = random_ids(15, cfg.vocab_size, gen)

    def decode(n: int = DECODE_TOKENS) -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            model.generate_report(images, prompt, n, use_cache=True)

    decode(4)
    seconds = median_seconds(decode, repeats, torch.cuda.synchronize)
    return {
        "name": "gpu_decode_kv_cache",
        "seconds": seconds,
        "tokens_per_s": DECODE_BATCH * DECODE_TOKENS / seconds,
        "batch": DECODE_BATCH,
        "new_tokens": DECODE_TOKENS,
        "dtype": "bf16 autocast",
        "repeats": repeats,
        "device": torch.cuda.get_device_name(),
    }


def run_gpu(peak_tflops: float, batch: int, repeats: int, dry: bool = False) -> list[dict]:
    """The GPU benchmarks (``dry``: their plans on the CPU); ``SystemExit`` with an
    explanation when CUDA is not available or the peak is not a positive number."""
    if not math.isfinite(peak_tflops) or peak_tflops <= 0:
        raise SystemExit(f"--peak-tflops must be a positive number, got {peak_tflops}")
    if dry:
        results = dry_rows(batch)
        for row in results:
            print(json.dumps(row), flush=True)
        return results
    if not torch.cuda.is_available():
        raise SystemExit(
            "unixlib.bench --gpu needs a CUDA GPU, but torch.cuda.is_available() is "
            f"False (torch {torch.__version__}, CUDA build: {torch.version.cuda}); "
            "run it on a GPU node, add --dry to print its plan, or drop --gpu for the CPU "
            "benchmarks"
        )
    gib = torch.cuda.get_device_properties(0).total_memory / 2**30 or GPU_MEMORY_GB
    results = []
    for job in (
        lambda: gpu_train_step(
            "gpu_train_step_packed", fitting_plan(True, batch, gib), peak_tflops, repeats
        ),
        lambda: gpu_train_step(
            "gpu_train_step_padded", fitting_plan(False, batch, gib), peak_tflops, repeats
        ),
        lambda: gpu_sampling(512, repeats),
        lambda: gpu_decode(repeats),
    ):
        results.append(job())
        print(json.dumps(results[-1]), flush=True)
        torch.cuda.empty_cache()
    packed, padded = results[0], results[1]
    results.append(
        {
            "name": "gpu_train_step_packed_vs_padded",
            "ratio": padded["step_s"] / packed["step_s"],
            "same_layers": packed["layers"] == padded["layers"],
            "device": packed["device"],
        }
    )
    print(json.dumps(results[-1]), flush=True)
    return results
