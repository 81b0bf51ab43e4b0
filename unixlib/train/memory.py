"""Per-GPU memory estimate of a training stage, printed before a run and checked by the dry run.

An estimate from shapes alone (the model is counted on the meta device; nothing is allocated):

* **parameters**: fp32 master weights of the whole model (frozen ones too), sharded over the
  ranks under FSDP (the VAE, and the SigLIP tower when frozen, stay whole: ``fsdp.py``);
* **gradients**: fp32, trainable parameters only, sharded under FSDP;
* **optimizer**: AdamW's two fp32 moments per trainable parameter (+ the EMA copy), sharded;
* **gathered**: under FSDP, two blocks' bf16 weights unsharded at a time (the one computing, the
  one prefetched);
* **activations**: what autograd keeps for backward, per micro-batch, from its tokens (below;
  :func:`activation_bytes`): per trained token and block ``2 * (10 D + 4 I)`` bytes of
  bf16 tensors (norm in/out, q/k/v, attention and o outputs, the SwiGLU gate/up/act/product) plus
  ``4 * 2 D`` of fp32 norm upcasts; a token of a frozen branch (stages 2-3, ``freeze_und``) keeps
  only its keys and values; with activation checkpointing only each block's input (``2 D`` bf16)
  is kept plus one block recomputed in full; the SigLIP tower likewise when it trains; the logits
  of the answer tokens (bf16 output, fp32 copy and its gradient: 10 bytes x vocabulary);
  padding tokens hold only their attention inputs and output (q, k, v, rotated q and k, the
  attention output: ``2 * 6 D`` bytes per block; the MLPs see real tokens only); a padded batch
  also keeps its (B, 1, L, L) boolean mask;
* **tokens**: the largest micro-batch (:class:`MicroBatchTokens`). Padded (``packing`` off):
  every row as long as the longest sample, every report at ``max_report_tokens``. Packed
  (``packing`` on, the default): one sequence of the real tokens of its samples, padded to a
  multiple of ``PACK_BLOCK`` (flex_attention's block on CUDA); with ``max_tokens`` the token
  budget (one forward's real tokens; a micro-batch is split into sequences of at most that
  many) bounds the largest packed sequence whatever the batch size. From shapes alone the
  packed worst case (every report at its cap) saves only the padding between task lengths;
  :func:`batch_tokens` gives the tokens of a real batch, whose reports are mostly shorter;
* **reserve**: CUDA context, cuBLAS/attention workspaces and allocator fragmentation, a fixed
  allowance (``RESERVE_GB``).

It is an estimate (within a few GB of what PyTorch reports on large models, by the usual rules of
thumb; the activation term is within 2x of what autograd keeps for the tiny preset on the CPU,
``memory_probe.py``, and ``python -m unixlib.bench --gpu`` sets the total beside a GPU's measured
peak); the point is to catch a profile that cannot fit (e.g. 32 x 1,100-token sequences per GPU
without checkpointing in stage 1) before eight GPUs are booked.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from unixlib.data.packing import PAD_CODE, VAE_CODE, VIT_CODE, PackedBatch
from unixlib.model.attention import FLEX_BLOCK
from unixlib.model.config import UniXConfig
from unixlib.train.batches import task_counts
from unixlib.train.config import TrainConfig

GB = 1024**3
RESERVE_GB = 3.0  # CUDA context (~0.5-1 GB), workspaces, fragmentation
PROMPT_TOKENS = 24  # an instruction prompt of data/prompts.py, generously
PACK_BLOCK = FLEX_BLOCK  # a packed sequence is padded to a multiple of this on CUDA


@dataclass(frozen=True)
class MicroBatchTokens:
    """Tokens of one micro-batch, by what autograd keeps of them (see the module docstring).

    ``und``/``gen``: LLM tokens of each branch (understanding: text and ViT; generation:
    latents); ``vit``: SigLIP tokens; ``pad``: padding tokens; ``ce``: answer tokens with
    logits; ``mask_bytes``: the dense attention mask a padded batch carries (0 when packed)."""

    und: float
    gen: float
    vit: float
    pad: float
    ce: float
    mask_bytes: float
    layout: str  # "padded B x L" or "packed T"

    @property
    def sequence(self) -> float:
        """All positions of the micro-batch, padding included."""
        return self.und + self.gen + self.pad


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
    tokens: MicroBatchTokens | None = None

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
        layout = f", {self.tokens.layout}" if self.tokens is not None else ""
        return (
            f"memory per GPU (estimate): {self.total / GB:.1f} GB = {parts} GB "
            f"[{self.parallel} over {self.world_size}, micro-batch {self.micro_batch}, "
            f"tokens per sequence: {seq}{layout}]"
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


def shape_tokens(mc: UniXConfig, cfg: TrainConfig, block: int = PACK_BLOCK) -> MicroBatchTokens:
    """Tokens of the largest micro-batch of ``cfg`` from shapes alone (every report at
    ``max_report_tokens``): padded rows, or one packed sequence padded to ``block`` (its whole
    ``max_tokens`` budget when one is set)."""
    lengths = sequence_lengths(mc, cfg)
    n_und, n_gen = task_counts(cfg.batch_size, cfg.task_ratio)
    n_und, n_gen = (n_und, n_gen) if lengths.get("und") else (0, n_gen)
    latents = mc.latent_grid(mc.image_size_gen) ** 2
    l_und, l_gen = lengths.get("und", 0), lengths.get("gen", 0)
    real = n_und * l_und + n_gen * l_gen
    budget = max(cfg.max_tokens, l_und if n_und else 0, l_gen if n_gen else 0)
    scale = min(1.0, budget / real) if cfg.packing and cfg.max_tokens else 1.0
    und = scale * (n_und * l_und + n_gen * (l_gen - latents))
    gen, vit = scale * n_gen * latents, scale * n_und * mc.vit_grid**2
    ce = scale * n_und * (cfg.max_report_tokens + 1)
    if cfg.packing:
        total = -(-round(scale * real) // block) * block
        return MicroBatchTokens(und, gen, vit, total - scale * real, ce, 0.0, f"packed {total}")
    rows, longest = n_und + n_gen, max(l_und if n_und else 0, l_gen if n_gen else 0)
    pad = rows * longest - real
    return MicroBatchTokens(
        und, gen, vit, pad, ce, float(rows * longest**2), f"padded {rows} x {longest}"
    )


def batch_tokens(batch: PackedBatch) -> MicroBatchTokens:
    """The tokens of a real batch, either layout (``batch.attention_mask`` None when packed)."""
    kind = batch.token_kind
    n_vit, n_gen = int((kind == VIT_CODE).sum()), int((kind == VAE_CODE).sum())
    n_pad = int((kind == PAD_CODE).sum())
    mask = batch.attention_mask
    b, length = batch.shape
    layout = f"packed {length}" if mask is None else f"padded {b} x {length}"
    return MicroBatchTokens(
        float(kind.numel() - n_gen - n_pad),
        float(n_gen),
        float(n_vit),
        float(n_pad),
        float(batch.ce_index.numel()),
        0.0 if mask is None else float(mask.numel()),
        layout,
    )


def activation_bytes(mc: UniXConfig, cfg: TrainConfig, tokens: MicroBatchTokens) -> float:
    """What autograd keeps for one micro-batch of ``tokens`` (the module docstring's rules):
    the trained branches' tokens, the frozen branch's keys and values, padding's attention
    tensors, the SigLIP tower when it trains, the answer logits and a padded batch's mask."""
    d, i, layers = mc.hidden_size, mc.intermediate_size, mc.num_layers
    und_trained = bool({"und", "vision", "connector"} & set(cfg.trainable))
    ckpt = cfg.activation_checkpointing
    per_tok = _per_token(d, i)
    kept = 2 * d if ckpt else per_tok  # per trained token and block
    frozen_kv = 2 * 2 * d  # keys and values of a token of the frozen branch
    pad_cost = 2 * 6 * d  # q, k, v, rotated q and k, attention output (bf16)
    trained = tokens.gen + (tokens.und if und_trained else 0.0)
    acts = layers * (trained * kept + (0.0 if und_trained else tokens.und * frozen_kv))
    acts += (0 if ckpt else layers) * tokens.pad * pad_cost
    if ckpt:  # one block recomputed in full
        acts += trained * per_tok + tokens.pad * pad_cost
    if tokens.vit and "vision" in cfg.trainable:
        dv, iv = mc.vit_hidden_size, mc.vit_intermediate_size
        acts += tokens.vit * mc.vit_num_layers * (2 * dv if ckpt else _per_token(dv, iv))
    return acts + tokens.ce * mc.vocab_size * 10 + tokens.mask_bytes  # logits, mask


def estimate_memory(
    mc: UniXConfig,
    cfg: TrainConfig,
    world_size: int = 1,
    parallel: str | None = None,
    tokens: MicroBatchTokens | None = None,
) -> MemoryEstimate:
    """Per-GPU estimate of the stage ``cfg`` on the model ``mc`` over ``world_size`` ranks;
    ``tokens``: the micro-batch (default :func:`shape_tokens`, the largest one)."""
    parallel = parallel or (cfg.parallel_mode(mc) if world_size > 1 else "single")
    shard = world_size if parallel == "fsdp" else 1
    total, train, whole, block = _counts(mc, cfg.trainable)
    states = 2 + (1 if cfg.ema_decay > 0 else 0)
    tokens = tokens or shape_tokens(mc, cfg)
    return MemoryEstimate(
        parameters=4 * (whole + (total - whole) / shard),
        gradients=4 * train / shard,
        optimizer=4 * states * train / shard,
        gathered=2 * 2 * block if parallel == "fsdp" else 0.0,
        activations=activation_bytes(mc, cfg, tokens),
        reserve=RESERVE_GB * GB,
        world_size=world_size,
        parallel=parallel,
        micro_batch=cfg.batch_size,
        lengths=sequence_lengths(mc, cfg),
        tokens=tokens,
    )
