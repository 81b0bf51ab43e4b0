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
                                  batch, model FLOPs as below) over this CPU's 1024^3 matmul
                                  rate *in the step's precision*: the step as the smoke profile
                                  trains here (bf16 autocast on CPUs with bf16 instructions,
                                  train/precision.py) against a bf16 matmul; the fp32 step
                                  against the fp32 matmul beside it (``fp32_ratio``)
``padding_fraction_smoke``        padding share of the token positions of the smoke run's
                                  micro-batches (stages 1-3, ``build_source``), padded rows vs
                                  one packed sequence (bench/padding.py); not a timing
``padding_fraction_paper``        the same for the paper's shapes and per-GPU batches, IU X-ray
                                  report lengths scaled to 512 tokens, packed to the 128 block
``packed_vs_padded_step``         a training step on the same 16 smoke-shaped understanding
                                  samples: padded rows with a dense mask vs one packed sequence
``attention_kernel``              the kernel a packed / padded batch runs on the CPU and on CUDA

``--gpu`` instead measures the ``paper`` preset on CUDA (random weights, bf16 autocast; plans
and time budget in bench/gpu_plan.py): a stage-2 training step packed (flex_attention) vs
padded, with MFU and peak memory against the estimate, the sampling time of one 512 px image
and KV-cache decoding tokens/s; ``--gpu --dry`` prints the plans on the CPU. Model FLOPs
utilisation (the PaLM convention, recomputation not counted)::

    MFU = (6 N T + 12 n_layers d P) / step_s / peak
    N = parameters of one MoT branch's blocks (each token passes through exactly one branch;
        embedding lookups cost no FLOPs; no lm_head on generation batches), T = real tokens,
    P = attended (query, key) pairs of the real tokens (the attention mask's True entries):
        q.k and attention-times-v cost 2 d FLOPs each per pair and layer, x3 for backward.

In the GPU's stage-2 step the frozen understanding tokens (the reports) run forward only
(``freeze_und``): their tokens and the pairs they query count 2 N and 4 d, not 6 N and 12 d
(``gpu_plan.step_flops``). Padding never counts, so padded and packed steps do the same model
FLOPs and their MFU ratio is their speed ratio.
"""

from unixlib.bench.common import attended_pairs, mixed_batch, paired_medians
from unixlib.bench.cpu import CPU_BENCHMARKS, train_step_flops
from unixlib.bench.gpu import H100_SXM_BF16_DENSE_TFLOPS
from unixlib.bench.run import main, parse_args

__all__ = [
    "CPU_BENCHMARKS",
    "H100_SXM_BF16_DENSE_TFLOPS",
    "attended_pairs",
    "main",
    "mixed_batch",
    "paired_medians",
    "parse_args",
    "train_step_flops",
]
