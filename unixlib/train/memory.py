"""Per-GPU memory estimate of a training stage, printed before a run and checked by the dry run.

An estimate from shapes alone (the model is counted on the meta device; nothing is allocated):

* **parameters**: fp32 master weights of the whole model (frozen ones too), sharded over the
  ranks under FSDP (the VAE, and the SigLIP tower when frozen, stay whole: ``fsdp.py``);
* **gradients**: fp32, trainable parameters only, sharded under FSDP;
* **optimizer**: AdamW's two fp32 moments per trainable parameter (+ the EMA copy), sharded;
* **gathered**: under FSDP, two blocks' bf16 weights unsharded at a time (the one computing, the
  one prefetched);
* **activations**: what autograd keeps for backward, per micro-batch, from the sequence length of
  each task (:func:`sequence_lengths`): per trained token and block ``2 * (10 D + 4 I)`` bytes of
  bf16 tensors (norm in/out, q/k/v, attention and o outputs, the SwiGLU gate/up/act/product) plus
  ``4 * 2 D`` of fp32 norm upcasts; a token of a frozen branch (stages 2-3, ``freeze_und``) keeps
  only its keys and values; with activation checkpointing only each block's input (``2 D`` bf16)
  is kept plus one block recomputed in full; the SigLIP tower likewise when it trains; the logits
  of the answer tokens (bf16 output, fp32 copy and its gradient: 10 bytes x vocabulary);
* **reserve**: CUDA context, cuBLAS/attention workspaces and allocator fragmentation, a fixed
  allowance (``RESERVE_GB``).

It is an estimate (within a few GB of what PyTorch reports on large models, by the usual rules of
thumb); the point is to catch a profile that cannot fit (e.g. 32 x 1,100-token sequences per GPU
without checkpointing in stage 1) before eight GPUs are booked.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from unixlib.model.config import UniXConfig
from unixlib.train.batches import task_counts
from unixlib.train.config import TrainConfig

GB = 1024**3
RESERVE_GB = 3.0  # CUDA context (~0.5-1 GB), workspaces, fragmentation
PROMPT_TOKENS = 24  # an instruction prompt of data/prompts.py, generously


@dataclass
class MemoryEstimate:
    """Bytes per GPU by part (see the module docstring), and the inputs they came from."""

    parameters: float
    gradients: float
    optimizer: float
    gathered: float
    activations: float
    reserve: float
    world_size: int
    parallel: str
    micro_batch: int
    lengths: dict[str, int]

    @property
    def total(self) -> float:
        return (
            self.parameters
            + self.gradients
            + self.optimizer
            + self.gathered
            + self.activations
            + self.reserve
        )

    def fits(self, gpu_gb: float) -> bool:
        return self.total <= gpu_gb * GB

    def __str__(self) -> str:
        parts = ", ".join(
            f"{name} {getattr(self, name) / GB:.1f}"
            for name in (
                "parameters",
                "gradients",
                "optimizer",
                "gathered",
                "activations",
                "reserve",
            )
        )
        seq = ", ".join(f"{k} {v}" for k, v in self.lengths.items())
        return (
            f"memory per GPU (estimate): {self.total / GB:.1f} GB = {parts} GB "
            f"[{self.parallel} over {self.world_size}, micro-batch {self.micro_batch}, "
            f"tokens per sequence: {seq}]"
        )


def sequence_lengths(mc: UniXConfig, cfg: TrainConfig) -> dict[str, int]:
    """Longest tokens per sample of each task the stage trains (layout of data/packing.py)."""
    out = {}
    if cfg.task_ratio[0]:
        vit = mc.vit_grid**2
        out["und"] = 4 + vit + PROMPT_TOKENS + cfg.max_report_tokens + 1
    if cfg.task_ratio[1]:
        out["gen"] = 4 + cfg.max_report_tokens + mc.latent_grid(mc.image_size_gen) ** 2
    return out


def _counts(mc: UniXConfig, trainable: tuple[str, ...]) -> tuple[int, int, int, int]:
    """(all parameters, trainable, sharded-whole (VAE, frozen tower), one block's) on meta."""
    from unixlib.model.unix import UniX
    from unixlib.train.setup import group_of

    with torch.device("meta"):
        model = UniX(mc)
    total = train = whole = 0
    for name, p in model.named_parameters():
        total += p.numel()
        group = group_of(name)
        if group in trainable:
            train += p.numel()
        if group is None or (group == "vision" and "vision" not in trainable):
            whole += p.numel()
    block = sum(p.numel() for p in model.language_model.layers[0].parameters())
    return total, train, whole, block


def _per_token(hidden: int, inter: int) -> int:
    """Bytes one trained token keeps per block without checkpointing."""
    return 2 * (10 * hidden + 4 * inter) + 4 * 2 * hidden


def estimate_memory(
    mc: UniXConfig, cfg: TrainConfig, world_size: int = 1, parallel: str | None = None
) -> MemoryEstimate:
    """Per-GPU estimate of the stage ``cfg`` on the model ``mc`` over ``world_size`` ranks."""
    parallel = parallel or (cfg.parallel_mode(mc) if world_size > 1 else "single")
    shard = world_size if parallel == "fsdp" else 1
    total, train, whole, block = _counts(mc, cfg.trainable)
    states = 2 + (1 if cfg.ema_decay > 0 else 0)
    params = 4 * (whole + (total - whole) / shard)
    grads = 4 * train / shard
    optim = 4 * states * train / shard
    gathered = 2 * 2 * block if parallel == "fsdp" else 0.0

    lengths = sequence_lengths(mc, cfg)
    n_und, n_gen = task_counts(cfg.batch_size, cfg.task_ratio)
    d, i, layers = mc.hidden_size, mc.intermediate_size, mc.num_layers
    und_trained = (
        "und" in cfg.trainable or "vision" in cfg.trainable or "connector" in cfg.trainable
    )
    ckpt = cfg.activation_checkpointing
    per_tok = _per_token(d, i)
    kept = 2 * d if ckpt else per_tok  # per trained token and block
    frozen_kv = 2 * 2 * d  # keys and values of a token of the frozen branch
    acts = 0.0
    for n, length, latents in (
        (n_und, lengths.get("und", 0), 0),
        (n_gen, lengths.get("gen", 0), mc.latent_grid(mc.image_size_gen) ** 2 if n_gen else 0),
    ):
        if not n:
            continue
        gen_tok, und_tok = latents, length - latents
        und_cost = kept if und_trained else frozen_kv
        acts += n * layers * (gen_tok * kept + und_tok * und_cost)
        if ckpt:  # one block recomputed in full
            acts += n * (gen_tok + (und_tok if und_trained else 0)) * per_tok
    if n_und and "vision" in cfg.trainable:
        vit_tok, dv, iv = mc.vit_grid**2, mc.vit_hidden_size, mc.vit_intermediate_size
        acts += n_und * vit_tok * (mc.vit_num_layers * (2 * dv if ckpt else _per_token(dv, iv)))
    if n_und:
        acts += n_und * (cfg.max_report_tokens + 1) * mc.vocab_size * 10  # logits
    return MemoryEstimate(
        params,
        grads,
        optim,
        gathered,
        acts,
        RESERVE_GB * GB,
        world_size,
        parallel,
        cfg.batch_size,
        lengths,
    )
