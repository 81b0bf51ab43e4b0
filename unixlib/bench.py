"""Benchmarks: ``python -m unixlib.bench`` (``make bench``).

Every CPU benchmark compares a *baseline* and a *candidate* in one process on this machine:
after a warm-up, the two are timed alternately ``repeats`` times and each side's median is
reported, so load from other processes hits both alike. One JSON object per line::

    {"name": ..., "baseline_s": ..., "candidate_s": ..., "ratio": baseline_s / candidate_s,
     "target": ..., "meets_target": ..., <settings: preset, batch, tokens, steps, threads ...>}

``decode_kv_cache``               greedy report decoding, full recomputation vs KV cache
``sample_context_reuse_L{64,256}``  image sampling, context recomputed vs reused every step
``mot_vs_dense_step``             training step (forward, backward, AdamW): shared weights
                                  (``mot=False``, same active size) vs MoT; ratio < 1 expected
``stage2_frozen_und_detached``    a stage-2 training step (generation batch, understanding branch
                                  frozen): backward through the frozen branch vs detached
``train_step_vs_gemm_peak``       the FLOP rate of a tiny-preset training step (mixed 8 + 8
                                  batch, model FLOPs as below) over this CPU's fp32 rate on a
                                  1024^3 matmul: how close the step runs to the machine. The
                                  step runs as the smoke profile trains here (bf16 autocast on
                                  CPUs with bf16 instructions, train/precision.py); the fp32
                                  step's ratio is reported beside it (``fp32_ratio``)

``--gpu`` instead measures the ``paper`` preset on CUDA (random weights, bf16 autocast): a
training step on generation batches at 256 and 512 px and the sampling time of one 512 px
image. Model FLOPs utilisation (the PaLM convention, recomputation not counted)::

    MFU = (6 N T + 12 n_layers d P) / step_s / peak
    N = parameters of one MoT branch's blocks (each token passes through exactly one branch;
        embedding lookups cost no FLOPs; no lm_head on generation batches), T = real tokens,
    P = attended (query, key) pairs of the real tokens (the attention mask's True entries):
        q.k and attention-times-v cost 2 d FLOPs each per pair and layer, x3 for backward.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from unixlib.data.packing import (
    PAD_CODE,
    PackedBatch,
    SpecialTokens,
    generation_plan,
    pack,
    understanding_plan,
)
from unixlib.model.config import UniXConfig, preset
from unixlib.model.unix import UniX, parameter_counts
from unixlib.train import precision

CPU_BENCHMARKS = (
    "decode_kv_cache",
    "sample_context_reuse_L64",
    "sample_context_reuse_L256",
    "mot_vs_dense_step",
    "train_step_vs_gemm_peak",
    "stage2_frozen_und_detached",
)
H200_BF16_DENSE_TFLOPS = 989.0  # NVIDIA H200 SXM datasheet, dense (no sparsity)
FIRST_ID = 5  # report ids avoid the special ids 0..4 of the tiny tokenizer


def _seconds(fn: Callable[[], Any], sync: Callable[[], None]) -> float:
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
    pairs = [(_seconds(baseline, sync), _seconds(candidate, sync)) for _ in range(repeats)]
    return statistics.median(b for b, _ in pairs), statistics.median(c for _, c in pairs)


def median_seconds(fn: Callable[[], Any], repeats: int, sync: Callable[[], None]) -> float:
    """Median seconds of ``repeats`` timed calls of ``fn`` (warmed up by the caller)."""
    return statistics.median(_seconds(fn, sync) for _ in range(repeats))


def random_ids(n: int, vocab: int, gen: torch.Generator) -> list[int]:
    """``n`` token ids drawn uniformly from the non-special range of a vocabulary."""
    return torch.randint(FIRST_ID, vocab, (n,), generator=gen).tolist()


def mixed_batch(
    cfg: UniXConfig, n_und: int, n_gen: int, report_len: int, prompt_len: int = 15, seed: int = 0
) -> dict[str, Any]:
    """A packed training batch of ``n_und`` understanding and ``n_gen`` generation samples
    (every fifth generation sample unconditional) with its image inputs, as ``UniX.forward``
    keyword arguments: batch, vit_pixels, latents, timesteps, noise."""
    gen = torch.Generator().manual_seed(seed)
    special = SpecialTokens.from_mapping(cfg.special_ids())
    vit, g = (cfg.vit_grid, cfg.vit_grid), cfg.latent_grid(cfg.image_size_gen)
    v = cfg.vocab_size
    plans = [
        understanding_plan(
            random_ids(prompt_len, v, gen), random_ids(report_len, v, gen), vit, special, i
        )
        for i in range(n_und)
    ]
    plans += [
        generation_plan(random_ids(report_len, v, gen) if i % 5 else [], (g, g), special, i)
        for i in range(n_gen)
    ]
    side = g * cfg.latent_patch_size
    latents = torch.randn(n_gen, cfg.latent_channels, side, side, generator=gen)
    return {
        "batch": pack(plans, cfg.pad_id),
        "vit_pixels": torch.randn(n_und, 3, cfg.image_size_und, cfg.image_size_und, generator=gen)
        if n_und
        else None,
        "latents": latents if n_gen else None,
        "timesteps": torch.rand(n_gen, generator=gen) if n_gen else None,
        "noise": torch.randn(latents.shape, generator=gen) if n_gen else None,
    }


def _tiny_model(seed: int = 0, **overrides: Any) -> UniX:
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


def _result(name: str, base: float, cand: float, target: float | None, **settings: Any) -> dict:
    ratio = base / cand
    return {
        "name": name,
        "baseline_s": base,
        "candidate_s": cand,
        "ratio": ratio,
        "target": None if target is None else f"ratio >= {target:.3g}",
        "meets_target": None if target is None else ratio >= target,
        **settings,
        "threads": torch.get_num_threads(),
        "device": "cpu",
    }


def bench_decode(quick: bool, repeats: int) -> dict:
    """Greedy decoding of ``new_tokens`` tokens for a batch of 4 reports: uncached vs cached."""
    batch, new_tokens = (2, 8) if quick else (4, 256)
    model = _tiny_model(eos_id=-1)  # no token ends a report: every run decodes all new tokens
    cfg, gen = model.config, torch.Generator().manual_seed(0)
    images = torch.rand(batch, 1, cfg.image_size_und, cfg.image_size_und, generator=gen)
    prompt = random_ids(15, cfg.vocab_size, gen)

    def run(use_cache: bool, n: int = new_tokens) -> Callable[[], Any]:
        return lambda: model.generate_report(images, prompt, n, use_cache=use_cache)

    for use_cache in (False, True):
        run(use_cache, 2)()
    base, cand = paired_medians(run(False), run(True), repeats)
    decoded = len(model.generate_report(images, prompt, new_tokens)[0])
    if decoded != new_tokens:
        raise RuntimeError(f"decode_kv_cache: decoded {decoded} of {new_tokens} tokens")
    return _result(
        "decode_kv_cache",
        base,
        cand,
        3.0,
        baseline="recompute every step",
        candidate="kv cache",
        preset="tiny",
        batch=batch,
        new_tokens=new_tokens,
        prompt_tokens=len(prompt),
        repeats=repeats,
    )


def bench_sampling(report_len: int, quick: bool, repeats: int) -> dict:
    """Sampling 2 images (CFG: 4 rows) from ``report_len``-token reports: context recomputed
    vs reused; latents only (the VAE decode is the same for both)."""
    batch, steps = 2, (3 if quick else 50)
    model = _tiny_model()
    gen = torch.Generator().manual_seed(1)
    reports = [random_ids(report_len, model.config.vocab_size, gen) for _ in range(batch)]

    def run(reuse: bool, n: int = steps) -> Callable[[], Any]:
        return lambda: model.generate_image(reports, steps=n, reuse_context=reuse, decode=False)

    for reuse in (False, True):
        run(reuse, 2)()
    base, cand = paired_medians(run(False), run(True), repeats)
    cfg = model.config
    return _result(
        f"sample_context_reuse_L{report_len}",
        base,
        cand,
        1.5 if report_len >= 256 else None,
        baseline="recompute context every step",
        candidate="reuse context",
        preset="tiny",
        batch=batch,
        report_tokens=report_len,
        steps=steps,
        latent_tokens=cfg.latent_grid(cfg.image_size_gen) ** 2,
        cfg_scale=cfg.cfg_scale,
        repeats=repeats,
    )


def bench_mot_vs_dense(quick: bool, repeats: int) -> dict:
    """One training step (forward, backward, AdamW) on the same mixed batch: dense vs MoT."""
    n_und, n_gen, report_len = (2, 2, 20) if quick else (8, 8, 60)

    def stepper(mot: bool) -> Callable[[], None]:
        model = _tiny_model(mot=mot).train()
        return training_step(model, mixed_batch(model.config, n_und, n_gen, report_len))

    dense, mot = stepper(False), stepper(True)
    dense(), mot()
    base, cand = paired_medians(dense, mot, repeats)
    batch = mixed_batch(preset("tiny"), n_und, n_gen, report_len)["batch"]
    return _result(
        "mot_vs_dense_step",
        base,
        cand,
        1 / 1.3,
        baseline="shared weights (mot=False)",
        candidate="MoT",
        preset="tiny",
        batch=n_und + n_gen,
        und_samples=n_und,
        gen_samples=n_gen,
        padded_shape=list(batch.shape),
        tokens=int(batch.lengths.sum()),
        repeats=repeats,
    )


def gemm_flops_per_s(n: int, repeats: int) -> float:
    """fp32 FLOP/s of an (n x n) @ (n x n) matmul on this CPU (2 n^3 FLOPs per product)."""
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(n, n, generator=gen), torch.randn(n, n, generator=gen)
    torch.mm(a, b)
    return 2 * n**3 / median_seconds(lambda: torch.mm(a, b), max(repeats, 5), lambda: None)


def train_step_flops(cfg: UniXConfig, batch: PackedBatch, n_vit_images: int) -> float:
    """Model FLOPs of one training step (forward + backward = 3x forward, PaLM's convention):
    every real text / latent token through one MoT branch and every ViT token through the
    SigLIP tower and connector (6 FLOPs per parameter and token), attention over the attended
    pairs, and the LM head on the cross-entropy positions."""
    counts = parameter_counts(cfg)
    vit_tokens = n_vit_images * cfg.vit_grid**2
    llm_tokens = int(batch.lengths.sum()) - vit_tokens
    ce_tokens = int(batch.ce_index.numel())
    head = cfg.hidden_size * cfg.vocab_size
    return float(
        6 * counts["und_branch"] * llm_tokens
        + 6 * counts["vision"] * vit_tokens
        + 12 * cfg.num_layers * cfg.hidden_size * attended_pairs(batch)
        + 6 * head * ce_tokens
    )


def bench_train_step_vs_gemm_peak(quick: bool, repeats: int) -> dict:
    """A tiny-preset training step's model FLOP rate over the CPU's fp32 matmul rate, the step
    in the precision the smoke profile trains in here (``mixed_precision: auto``: bf16 autocast
    on CPUs with bf16 instructions, else fp32); the fp32 step's ratio is reported beside it."""
    n_und, n_gen, report_len = (2, 2, 20) if quick else (8, 8, 60)
    model = _tiny_model().train()
    inputs = mixed_batch(model.config, n_und, n_gen, report_len)
    step, step_fp32 = training_step(model, inputs), training_step(model, inputs, "no")
    step(), step_fp32()
    step_s, fp32_s = paired_medians(step, step_fp32, repeats)
    peak = gemm_flops_per_s(256 if quick else 1024, repeats)
    flops = train_step_flops(model.config, inputs["batch"], n_und)
    # baseline: the time the step's FLOPs would take at the matmul rate; ratio = step / peak rate
    return _result(
        "train_step_vs_gemm_peak",
        flops / peak,
        step_s,
        0.6,
        baseline="the step's model FLOPs at this CPU's fp32 1024^3 matmul rate",
        candidate="measured training step (forward, backward, AdamW)",
        precision=precision.describe("auto", torch.device("cpu")),
        preset="tiny",
        gflop_per_step=flops / 1e9,
        step_gflop_per_s=flops / step_s / 1e9,
        gemm_gflop_per_s=peak / 1e9,
        fp32_step_s=fp32_s,
        fp32_ratio=flops / peak / fp32_s,
        batch=n_und + n_gen,
        und_samples=n_und,
        gen_samples=n_gen,
        padded_shape=list(inputs["batch"].shape),
        tokens=int(inputs["batch"].lengths.sum()),
        repeats=repeats,
    )


def bench_frozen_und_detached(quick: bool, repeats: int) -> dict:
    """A stage-2 step (16 generation samples with 60-token reports, only ``gen`` trains):
    backward through the frozen understanding branch vs detached after every block."""
    from unixlib.train.setup import set_trainable  # the loop's freeze policy

    n_gen, report_len = (2, 20) if quick else (16, 60)

    def stepper(detach: bool) -> Callable[[], None]:
        model = _tiny_model().train()
        set_trainable(model, ("gen",))
        model.language_model.freeze_und = detach
        return training_step(model, mixed_batch(model.config, 0, n_gen, report_len))

    before, after = stepper(False), stepper(True)
    before(), after()
    base, cand = paired_medians(before, after, repeats)
    return _result(
        "stage2_frozen_und_detached",
        base,
        cand,
        None,
        baseline="backward through the frozen und branch",
        candidate="und states detached (freeze_und)",
        preset="tiny",
        batch=n_gen,
        report_tokens=report_len,
        repeats=repeats,
    )


def run_cpu(names: Sequence[str], quick: bool, repeats: int) -> list[dict]:
    """The named CPU benchmarks, in order; each result is printed as a JSON line."""
    jobs = {
        "decode_kv_cache": lambda: bench_decode(quick, repeats),
        "sample_context_reuse_L64": lambda: bench_sampling(64, quick, repeats),
        "sample_context_reuse_L256": lambda: bench_sampling(256, quick, repeats),
        "mot_vs_dense_step": lambda: bench_mot_vs_dense(quick, repeats),
        "train_step_vs_gemm_peak": lambda: bench_train_step_vs_gemm_peak(quick, repeats),
        "stage2_frozen_und_detached": lambda: bench_frozen_und_detached(quick, repeats),
    }
    results = []
    for name in names:
        results.append(jobs[name]())
        print(json.dumps(results[-1]), flush=True)
    return results


# ------------------------------------------------------------------------------------------ GPU
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


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line flags (see ``--help``)."""
    p = argparse.ArgumentParser(prog="python -m unixlib.bench", description=__doc__.split("\n")[0])
    p.add_argument(
        "--only",
        choices=CPU_BENCHMARKS,
        action="append",
        help="run only this CPU benchmark (repeatable)",
    )
    p.add_argument("--quick", action="store_true", help="tiny sizes, one repeat (for tests)")
    p.add_argument("--repeats", type=int, default=None, help="timed runs per side (default 3)")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: torch's choice; 1 is steadier on shared cores)",
    )
    p.add_argument("--gpu", action="store_true", help="paper-preset CUDA benchmarks instead")
    p.add_argument(
        "--peak-tflops",
        type=float,
        default=H200_BF16_DENSE_TFLOPS,
        help="peak dense bf16 TFLOP/s of the GPU, for MFU (default: H200, 989)",
    )
    p.add_argument("--gpu-batch-256", type=int, default=16, help="samples per 256 px step")
    p.add_argument("--gpu-batch-512", type=int, default=8, help="samples per 512 px step")
    args = p.parse_args(argv)
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    if args.repeats < 1:
        p.error(f"--repeats must be >= 1, got {args.repeats}")
    if args.threads is not None and args.threads < 1:
        p.error(f"--threads must be >= 1, got {args.threads}")
    return args


def main(argv: Sequence[str] | None = None) -> list[dict]:
    """Run the selected benchmarks and return their results (also printed, one JSON a line)."""
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.gpu:
        return run_gpu(args.peak_tflops, args.gpu_batch_256, args.gpu_batch_512, args.repeats)
    return run_cpu(args.only or CPU_BENCHMARKS, args.quick, args.repeats)


if __name__ == "__main__":
    main(sys.argv[1:])
