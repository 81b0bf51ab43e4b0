"""Rotary position embedding (RoPE), rotate-half convention of Llama / Qwen2 / DeepSeek-LLM.

Positions are explicit per token (``position_ids``), not the column index, because a whole
image block shares one position (PAPER.md) and a KV-cached decoder writes new tokens at
columns unrelated to their positions.
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


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate ``x`` (B, H, L, hd) by the tables (B, L, hd); returns the same shape and dtype."""
    cos, sin = cos[:, None].to(x.dtype), sin[:, None].to(x.dtype)  # (B, 1, L, hd)
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)  # rotate_half
    return x * cos + rotated * sin
