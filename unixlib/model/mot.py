"""Mixture-of-Transformers (MoT) decoder: per-modality weights, one shared attention.

Every block holds two full weight sets, ``und`` (text and ViT tokens) and ``gen`` (noisy VAE
latent tokens): input norm, q/k/v (with bias), per-head q/k RMSNorm, o, post-attention norm and
SwiGLU MLP; the stack ends in one final norm per branch. A single softmax attention runs over
each sample's sequence, so text, ViT and latent tokens meet in the same attention: that
shared attention *is* UniX's cross-modal self-attention (its kernel, per batch layout and
device, lives in ``attention.py``). ``mot=False`` keeps only ``und``
and uses it for every token (the shared-weight ablation).

Routing (BAGEL's packed-index idea): the hidden state of a batch is kept **routed**, as one
(N, D) tensor of the real tokens with all understanding tokens first and all generation tokens
after them; ``Routing.index`` says where each routed row sits in the flat (B * L) layout of
the batch (one sample per padded row, or all samples packed into one row, B = 1). Inside the stack the state is held as one tensor per branch (``h[:n_und]``,
``h[n_und:]``), so a branch's modules run on a contiguous block without any gather or concat;
only q/k/v go to that layout for attention and the attention output comes back
(:func:`to_padded` / :func:`from_padded`: one copy each way per block, whose backward is the
other direction). With ``mot=False`` and no padding (a packed CPU batch) the layout is the
identity and even those are skipped.

CPU speed (the smoke profile trains on two shared cores, where every extra elementwise kernel
costs a thread barrier): one RoPE call rotates the q and k heads together, and RMSNorm has a
hand-written backward (:class:`RMSNorm`); the forward values are bitwise those of the plain
formulation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from unixlib.model.attention import BatchAttention, attend
from unixlib.model.config import UniXConfig
from unixlib.model.norm import RMSNorm
from unixlib.model.rope import rotate_heads
from unixlib.model.routing import Routing, from_padded, to_padded


class KVCache:
    """Keys and values of earlier positions, per layer: (B, Hkv, capacity, hd) each.

    Buffers are allocated at the first write (dtype/device of the keys written); ``length``
    columns are filled. A forward that does not *commit* writes its keys after ``length`` and
    attends to them, but leaves ``length`` unchanged, so the next call overwrites them: that is
    how an image's denoising steps reuse the report context's keys and values.
    """

    def __init__(self, num_layers: int, capacity: int) -> None:
        self.keys: list[Tensor | None] = [None] * num_layers
        self.values: list[Tensor | None] = [None] * num_layers
        self.capacity = capacity
        self.length = 0

    def rows(self, n: int) -> KVCache:
        """A view of the first ``n`` rows: the same buffers (no copy), the same length."""
        view = KVCache(len(self.keys), self.capacity)
        view.keys = [k[:n] if k is not None else None for k in self.keys]
        view.values = [v[:n] if v is not None else None for v in self.values]
        view.length = self.length
        return view

    def update(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Write ``k``, ``v`` (B, Hkv, Lq, hd) after ``length``; return all keys/values so far."""
        end = self.length + k.shape[2]
        if end > self.capacity:
            raise ValueError(f"KV cache overflow: {end} columns > capacity {self.capacity}")
        if self.keys[layer] is None:
            shape = (k.shape[0], k.shape[1], self.capacity, k.shape[3])
            self.keys[layer] = k.new_zeros(shape)
            self.values[layer] = v.new_zeros(shape)
        keys, values = self.keys[layer], self.values[layer]
        keys[:, :, self.length : end] = k
        values[:, :, self.length : end] = v
        return keys[:, :, :end], values[:, :, :end]


class SwiGLU(nn.Module):
    """``down(silu(gate(x)) * up(x))``, no biases (Llama / Janus-Pro)."""

    def __init__(self, hidden: int, intermediate: int) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(hidden, intermediate, bias=False)
        self.up_proj = nn.Linear(hidden, intermediate, bias=False)
        self.down_proj = nn.Linear(intermediate, hidden, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class BranchWeights(nn.Module):
    """One modality's per-token modules of a block (the ``und`` or ``gen`` weight set)."""

    def __init__(self, cfg: UniXConfig) -> None:
        super().__init__()
        d, hd = cfg.hidden_size, cfg.head_dim
        self.num_heads, self.num_kv_heads, self.head_dim = cfg.num_heads, cfg.num_kv_heads, hd
        self.input_norm = RMSNorm(d, eps=cfg.rms_norm_eps)
        self.q_proj = nn.Linear(d, cfg.num_heads * hd, bias=cfg.qkv_bias)
        self.k_proj = nn.Linear(d, cfg.num_kv_heads * hd, bias=cfg.qkv_bias)
        self.v_proj = nn.Linear(d, cfg.num_kv_heads * hd, bias=cfg.qkv_bias)
        self.q_norm = RMSNorm(hd, eps=cfg.rms_norm_eps) if cfg.qk_norm else nn.Identity()
        self.k_norm = RMSNorm(hd, eps=cfg.rms_norm_eps) if cfg.qk_norm else nn.Identity()
        self.o_proj = nn.Linear(cfg.num_heads * hd, d, bias=False)
        self.post_norm = RMSNorm(d, eps=cfg.rms_norm_eps)
        self.mlp = SwiGLU(d, cfg.intermediate_size)

    def project_qkv(self, h: Tensor) -> Tensor:
        """(n, D) hidden -> (n, (H + 2 Hkv) * hd): normed q and k (before RoPE), then v."""
        x = self.input_norm(h)
        n = x.shape[0]
        q = self.q_norm(self.q_proj(x).view(n, self.num_heads, self.head_dim))
        k = self.k_norm(self.k_proj(x).view(n, self.num_kv_heads, self.head_dim))
        return torch.cat([q.flatten(1), k.flatten(1), self.v_proj(x)], dim=-1)

    def finish(self, h: Tensor, attn: Tensor) -> Tensor:
        """Residual output projection and MLP: (n, D), (n, H * hd) -> (n, D)."""
        h = h + self.o_proj(attn)
        return h + self.mlp(self.post_norm(h))


class MoTDecoderLayer(nn.Module):
    """One block: ``und`` (and, when ``cfg.mot``, ``gen``) weights around one attention."""

    def __init__(self, cfg: UniXConfig, layer_idx: int) -> None:
        super().__init__()
        self.layer_idx = layer_idx
        self.num_heads, self.num_kv_heads, self.head_dim = (
            cfg.num_heads,
            cfg.num_kv_heads,
            cfg.head_dim,
        )
        self.und = BranchWeights(cfg)
        self.gen = BranchWeights(cfg) if cfg.mot else None

    def branches(self, routing: Routing) -> list[tuple[BranchWeights, Tensor]]:
        """(weights, flat index) of each non-empty routed part; one part when ``mot=False``."""
        und, gen = routing.index[: routing.n_und], routing.index[routing.n_und :]
        if self.gen is None or gen.numel() == 0:
            return [(self.und, routing.index)]
        if und.numel() == 0:
            return [(self.gen, routing.index)]
        return [(self.und, und), (self.gen, gen)]

    def forward(
        self,
        parts: list[Tensor],
        routing: Routing,
        cos: Tensor,
        sin: Tensor,
        attention: BatchAttention | Tensor,
        cache: KVCache | None = None,
    ) -> list[Tensor]:
        """One block on the routed hidden state, kept as one tensor per branch (no concat).

        Args:
            parts: routed hidden state split as :meth:`branches` (each (n_part, D)).
            cos, sin: RoPE tables of the batch layout, (B, L, hd) each.
            attention: the batch's :class:`BatchAttention` (model/attention.py: the kernel and
                its masks), or a dense (B, 1, L, Lk) bool mask, True = may attend; Lk = L, or
                the cache's length + L when ``cache`` is given (cached columns first).
            cache: keys/values of earlier positions; this block's new ones are written to it.
        Returns:
            the new hidden state, same parts and shapes.
        """
        b, length = routing.batch, routing.length
        hq, hkv, hd = self.num_heads, self.num_kv_heads, self.head_dim
        weights, indices = zip(*self.branches(routing), strict=True)
        direct = routing.identity and len(weights) == 1  # no scatter/gather needed
        qkvs = [w.project_qkv(h) for w, h in zip(weights, parts, strict=True)]
        # (B*L, (H + 2Hkv) hd) in the batch layout; padding rows are 0 (q = k = v = 0)
        qkv = qkvs[0] if direct else to_padded(qkvs, indices, routing)
        qk, v = qkv.view(b, length, -1).split([(hq + hkv) * hd, hkv * hd], dim=-1)
        # RoPE on the q and k heads at once: (B, L, H + Hkv, hd)
        qk = rotate_heads(qk.reshape(b, length, hq + hkv, hd), cos, sin)
        q, k = (x.transpose(1, 2) for x in qk.split([hq, hkv], dim=2))  # (B, H|Hkv, L, hd)
        v = v.reshape(b, length, hkv, hd).transpose(1, 2)  # (B, Hkv, L, hd)
        if cache is not None:
            k, v = cache.update(self.layer_idx, k, v)  # (B, Hkv, Lk, hd)
        out = attend(q, k, v, attention)  # (B, H, L, hd)
        out = out.transpose(1, 2).reshape(b * length, hq * hd)
        outs = [out] if direct else from_padded(out, indices, routing)
        return [w.finish(h, o) for w, h, o in zip(weights, parts, outs, strict=True)]


class MoTLanguageModel(nn.Module):
    """Token embeddings, the MoT blocks and the final norm of each branch.

    State-dict names: ``embed_tokens``, ``layers.{i}.und.*``, ``layers.{i}.gen.*`` (MoT only),
    ``norm_und``, ``norm_gen`` (MoT only).
    """

    def __init__(self, cfg: UniXConfig) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(MoTDecoderLayer(cfg, i) for i in range(cfg.num_layers))
        self.norm_und = RMSNorm(cfg.hidden_size, eps=cfg.rms_norm_eps)
        self.norm_gen = RMSNorm(cfg.hidden_size, eps=cfg.rms_norm_eps) if cfg.mot else None
        # Recompute each block in backward (saves activation memory for the paper preset).
        self.gradient_checkpointing = False
        # Set by training when nothing upstream of the understanding states trains (stages 2-3):
        # their hidden states are detached after every block, so backward stops there instead of
        # running through the frozen branch (BAGEL's freeze_und). The generation tokens' gradients
        # are unchanged: und states depend on frozen weights and inputs only (no und token
        # attends to a generation token).
        self.freeze_und = False

    @torch.no_grad()
    def init_gen_from_und(self) -> None:
        """Copy every understanding weight onto its generation twin (MoT initialisation)."""
        if self.norm_gen is None:
            raise ValueError("init_gen_from_und: this model has no generation branch (mot=False)")
        for layer in self.layers:
            layer.gen.load_state_dict(layer.und.state_dict())
        self.norm_gen.load_state_dict(self.norm_und.state_dict())

    def forward(
        self,
        h: Tensor,
        routing: Routing,
        cos: Tensor,
        sin: Tensor,
        attention: BatchAttention | Tensor,
        cache: KVCache | None = None,
        commit: bool = True,
        capture_layer: int | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """Run every block, then the final norms.

        Args:
            h: (N, D) routed input embeddings.
            routing, cos, sin, attention, cache: as :meth:`MoTDecoderLayer.forward`.
            commit: advance ``cache.length`` by L afterwards (False: the keys written this time
                are overwritten by the next call).
            capture_layer: 0-based block whose output (before any final norm) is also returned.
        Returns:
            ((N, D) normed output, (N, D) captured hidden state or None).
        """
        n = routing.n_und
        split = self.norm_gen is not None and 0 < n < h.shape[0]
        parts = [h[:n], h[n:]] if split else [h]
        captured = None
        for i, layer in enumerate(self.layers):
            if self.gradient_checkpointing and self.training and cache is None:
                parts = checkpoint(layer, parts, routing, cos, sin, attention, use_reentrant=False)
            else:
                parts = layer(parts, routing, cos, sin, attention, cache)
            if self.freeze_und and split:
                parts = [parts[0].detach(), parts[1]]
            if i == capture_layer:
                captured = torch.cat(parts) if split else parts[0]
        if cache is not None and commit:
            cache.length += routing.length
        if split:
            return torch.cat([self.norm_und(parts[0]), self.norm_gen(parts[1])]), captured
        only_gen = self.norm_gen is not None and n == 0
        return (self.norm_gen if only_gen else self.norm_und)(parts[0]), captured
