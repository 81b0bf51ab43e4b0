"""Rotary position embedding (RoPE), rotate-half convention of Llama / Qwen2 / DeepSeek-LLM.

Positions are explicit per token (``position_ids``), not the column index, because a whole
image block shares one position (PAPER.md) and a KV-cached decoder writes new tokens at
columns unrelated to their positions.

``x * cos + rotate_half(x) * sin`` with ``rotate_half(x) = [-x2, x1]`` is computed as
``x * cos + [x2, x1] * [-sin1, sin2]``: the same products (a sign moves from one factor to the
other), so bitwise the same result, but the sign flip touches the small (B, L, hd) table
instead of every head of q and k.
"""

from __future__ import annotations

import torch
from torch import Tensor


def rope_cos_sin(
    position_ids: Tensor, head_dim: int, theta: float, dtype: torch.dtype = torch.float32
) -> tuple[Tensor, Tensor]:
    """Cos and sin tables for ``position_ids`` (B, L) long -> two (B, L, head_dim) tensors.

    Frequencies ``theta ** (-2i / head_dim)`` for i < head_dim / 2, each used for the pair
    (i, i + head_dim / 2), computed in float32 whatever ``dtype`` the result is cast to.
    """
    inv_freq = theta ** (
        -torch.arange(0, head_dim, 2, device=position_ids.device, dtype=torch.float32) / head_dim
    )  # (hd/2,)
    angles = position_ids.to(torch.float32)[..., None] * inv_freq  # (B, L, hd/2)
    angles = torch.cat([angles, angles], dim=-1)  # (B, L, hd)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def _swap_halves(x: Tensor) -> Tensor:
    half = x.shape[-1] // 2
    return torch.cat([x[..., half:], x[..., :half]], dim=-1)


class _Rotate(torch.autograd.Function):
    """``x * cos + swap_halves(x) * signed_sin``, differentiable in ``x`` only.

    Its backward, ``g * cos + swap_halves(g * signed_sin)``, is one more rotation; autograd's
    own would materialise a zero-padded gradient for every half-slice of ``x``.
    """

    @staticmethod
    def forward(ctx, x: Tensor, cos: Tensor, signed_sin: Tensor) -> Tensor:
        ctx.save_for_backward(cos, signed_sin)
        return x * cos + _swap_halves(x) * signed_sin

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, ...]:
        cos, signed_sin = ctx.saved_tensors
        return grad * cos + _swap_halves(grad) * _swap_halves(signed_sin), None, None


def _rotate(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """``x * cos + rotate_half(x) * sin`` for tables broadcastable to ``x`` (..., hd)."""
    half = x.shape[-1] // 2
    signed_sin = torch.cat([-sin[..., :half], sin[..., half:]], dim=-1).to(x.dtype)
    return _Rotate.apply(x, cos.to(x.dtype), signed_sin)


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate ``x`` (B, H, L, hd) by the tables (B, L, hd); returns the same shape and dtype."""
    return _rotate(x, cos[:, None], sin[:, None])


def rotate_heads(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate ``x`` (B, L, heads, hd) by the tables (B, L, hd): all heads (e.g. q and k) at once."""
    return _rotate(x, cos[:, :, None], sin[:, :, None])
