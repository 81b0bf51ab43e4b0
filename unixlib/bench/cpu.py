"""The CPU benchmarks (see :mod:`unixlib.bench`): each a baseline and a candidate timed alternately in one process."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import torch

from unixlib.bench.common import (
    attended_pairs,
    median_seconds,
    mixed_batch,
    paired_medians,
    random_ids,
    result_row,
    tiny_model,
    training_step,
)
from unixlib.bench.packed import (
    bench_attention_kernel,
    bench_packed_vs_padded,
    bench_padding_paper,
    bench_padding_smoke,
)
from unixlib.bench.padding import IU_CSV as padding_csv
from unixlib.data.packing import PackedBatch
from unixlib.model.config import UniXConfig, preset
from unixlib.model.unix import parameter_counts
from unixlib.train import precision

CPU_BENCHMARKS = (
    "decode_kv_cache",
    "sample_context_reuse_L64",
    "sample_context_reuse_L256",
    "mot_vs_dense_step",
    "train_step_vs_gemm_peak",
    "stage2_frozen_und_detached",
    "padding_fraction_smoke",
    "padding_fraction_paper",
    "packed_vs_padded_step",
    "attention_kernel",
)


def bench_decode(quick: bool, repeats: int) -> dict:
    """Greedy decoding of ``new_tokens`` tokens for a batch of 4 reports: uncached vs cached."""
    batch, new_tokens = (2, 8) if quick else (4, 256)
    model = tiny_model(eos_id=-1)  # no token ends a report: every run decodes all new tokens
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
    return result_row(
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
    model = tiny_model()
    gen = torch.Generator().manual_seed(1)
    reports = [random_ids(report_len, model.config.vocab_size, gen) for _ in range(batch)]

    def run(reuse: bool, n: int = steps) -> Callable[[], Any]:
        return lambda: model.generate_image(reports, steps=n, reuse_context=reuse, decode=False)

    for reuse in (False, True):
        run(reuse, 2)()
    base, cand = paired_medians(run(False), run(True), repeats)
    cfg = model.config
    return result_row(
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
        model = tiny_model(mot=mot).train()
        return training_step(model, mixed_batch(model.config, n_und, n_gen, report_len))

    dense, mot = stepper(False), stepper(True)
    dense(), mot()
    base, cand = paired_medians(dense, mot, repeats)
    batch = mixed_batch(preset("tiny"), n_und, n_gen, report_len)["batch"]
    return result_row(
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


def gemm_flops_per_s(n: int, repeats: int, dtype: torch.dtype = torch.float32) -> float:
    """FLOP/s of an (n x n) @ (n x n) matmul in ``dtype`` on this CPU (2 n^3 FLOPs per
    product); bf16 operands run oneDNN's bf16 kernel, as autocast's matmuls do."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(dtype)
    b = torch.randn(n, n, generator=gen).to(dtype)
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
    """A tiny-preset training step's model FLOP rate over this CPU's matmul rate *in the same
    precision*: the step as the smoke profile trains here (``mixed_precision: auto``: bf16
    autocast on CPUs with bf16 instructions, else fp32) against a bf16 (resp. fp32) 1024^3
    matmul, and the fp32 step against the fp32 matmul (``fp32_ratio``). Dividing a bf16 step's
    rate by the fp32 matmul rate, as this row once did, flatters the step."""
    n_und, n_gen, report_len = (2, 2, 20) if quick else (8, 8, 60)
    model = tiny_model().train()
    inputs = mixed_batch(model.config, n_und, n_gen, report_len)
    step, step_fp32 = training_step(model, inputs), training_step(model, inputs, "no")
    step(), step_fp32()
    step_s, fp32_s = paired_medians(step, step_fp32, repeats)
    n = 256 if quick else 1024
    bf16 = precision.uses_bf16("auto", torch.device("cpu"))
    fp32_peak = gemm_flops_per_s(n, repeats)
    peak = gemm_flops_per_s(n, repeats, torch.bfloat16) if bf16 else fp32_peak
    flops = train_step_flops(model.config, inputs["batch"], n_und)
    # baseline: the time the step's FLOPs would take at its precision's matmul rate
    return result_row(
        "train_step_vs_gemm_peak",
        flops / peak,
        step_s,
        0.6,
        baseline=f"the step's model FLOPs at this CPU's {n}^3 matmul rate in the step's precision",
        candidate="measured training step (forward, backward, AdamW)",
        precision=precision.describe("auto", torch.device("cpu")),
        gemm_dtype="bfloat16" if bf16 else "float32",
        gemm_size=n,
        preset="tiny",
        gflop_per_step=flops / 1e9,
        step_gflop_per_s=flops / step_s / 1e9,
        gemm_gflop_per_s=peak / 1e9,
        fp32_step_s=fp32_s,
        fp32_gemm_gflop_per_s=fp32_peak / 1e9,
        fp32_ratio=flops / fp32_peak / fp32_s,
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
        model = tiny_model().train()
        set_trainable(model, ("gen",))
        model.language_model.freeze_und = detach
        return training_step(model, mixed_batch(model.config, 0, n_gen, report_len))

    before, after = stepper(False), stepper(True)
    before(), after()
    base, cand = paired_medians(before, after, repeats)
    return result_row(
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


def run_cpu(
    names: Sequence[str], quick: bool, repeats: int, iu_reports: str = padding_csv
) -> list[dict]:
    """The named CPU benchmarks, in order; each result is printed as a JSON line."""
    jobs = {
        "decode_kv_cache": lambda: bench_decode(quick, repeats),
        "sample_context_reuse_L64": lambda: bench_sampling(64, quick, repeats),
        "sample_context_reuse_L256": lambda: bench_sampling(256, quick, repeats),
        "mot_vs_dense_step": lambda: bench_mot_vs_dense(quick, repeats),
        "train_step_vs_gemm_peak": lambda: bench_train_step_vs_gemm_peak(quick, repeats),
        "stage2_frozen_und_detached": lambda: bench_frozen_und_detached(quick, repeats),
        "padding_fraction_smoke": lambda: bench_padding_smoke(quick),
        "padding_fraction_paper": lambda: bench_padding_paper(quick, iu_reports),
        "packed_vs_padded_step": lambda: bench_packed_vs_padded(quick, repeats),
        "attention_kernel": bench_attention_kernel,
    }
    results = []
    for name in names:
        results.append(jobs[name]())
        print(json.dumps(results[-1]), flush=True)
    return results
