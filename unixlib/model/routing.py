"""Routing: where each branch's tokens sit in the padded (batch, length) layout.

The MoT stack keeps its hidden state *routed* (understanding rows first, then generation rows);
attention needs the padded layout. :func:`to_padded` / :func:`from_padded` move between the two
with one copy each way, each being the other's backward (BAGEL's packed-index idea).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass
class Routing:
    """Where the routed hidden rows live in the padded (batch, length) layout.

    Attributes:
        index: (N,) long, flat position ``b * length + l`` of each routed row; the first
            ``n_und`` rows are understanding tokens, the rest generation tokens.
        n_und: number of understanding rows.
        batch, length: the padded layout the attention runs on.
    """

    index: Tensor
    n_und: int
    batch: int
    length: int
    # True when ``index`` is exactly arange(batch * length): scatter/gather are skipped.
    identity: bool = field(init=False)
    # (B * L - N,) long: the padded positions no routed row fills (set to zero for attention).
    pad_index: Tensor = field(init=False)

    def __post_init__(self) -> None:
        n = self.index.numel()
        if not 0 <= self.n_und <= n:
            raise ValueError(f"n_und={self.n_und} outside 0..{n}")
        full = self.batch * self.length
        self.identity = n == full and bool(
            torch.equal(self.index, torch.arange(full, device=self.index.device))
        )
        if self.identity:
            self.pad_index = self.index[:0]
        else:
            unfilled = torch.ones(full, dtype=torch.bool, device=self.index.device)
            unfilled[self.index] = False
            self.pad_index = unfilled.nonzero().squeeze(1)

    def rows_of(self, flat_index: Tensor) -> Tensor:
        """(K,) rows of the routed state holding the flat padded positions ``flat_index`` (K,)
        (``b * length + l``; every one must be a routed token)."""
        where = torch.full(
            (self.batch * self.length,), -1, dtype=torch.long, device=self.index.device
        )
        where[self.index] = torch.arange(self.index.numel(), device=where.device)
        return where[flat_index]

    @classmethod
    def dense(cls, batch: int, length: int, branch: str, device: torch.device) -> Routing:
        """Every position of a (batch, length) layout, all in one branch (``"und"``/``"gen"``)."""
        index = torch.arange(batch * length, device=device)
        return cls(index, batch * length if branch == "und" else 0, batch, length)


def _scatter_rows(routing: Routing, indices: tuple[Tensor, ...], parts: tuple[Tensor, ...]):
    """Rows ``parts[i]`` placed at flat positions ``indices[i]`` of a (B * L, C) zero layout."""
    out = parts[0].new_empty(routing.batch * routing.length, parts[0].shape[1])
    for index, part in zip(indices, parts, strict=True):
        out.index_copy_(0, index, part)
    return out.index_fill_(0, routing.pad_index, 0)


class _ToPadded(torch.autograd.Function):
    """Routed parts -> padded layout; the backward is a gather of each part's rows.

    (Autograd's backward of ``index_copy`` would clear and copy the whole padded gradient once
    per part.)
    """

    @staticmethod
    def forward(ctx, routing: Routing, indices: tuple[Tensor, ...], *parts: Tensor) -> Tensor:
        ctx.indices = indices
        return _scatter_rows(routing, indices, parts)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, ...]:
        needs = ctx.needs_input_grad[2:]
        return (
            None,
            None,
            *(
                grad.index_select(0, i) if need else None
                for i, need in zip(ctx.indices, needs, strict=True)
            ),
        )


class _FromPadded(torch.autograd.Function):
    """Padded layout -> routed parts; the backward scatters the parts' gradients back."""

    @staticmethod
    def forward(ctx, routing: Routing, indices: tuple[Tensor, ...], padded: Tensor):
        ctx.routing, ctx.indices = routing, indices
        return tuple(padded.index_select(0, i) for i in indices)

    @staticmethod
    def backward(ctx, *grads: Tensor) -> tuple[Tensor | None, ...]:
        return None, None, _scatter_rows(ctx.routing, ctx.indices, grads)


def to_padded(parts: list[Tensor], indices: list[Tensor], routing: Routing) -> Tensor:
    """Routed parts ((n_i, C) rows at flat positions ``indices[i]``) -> (B * L, C), 0 at pads."""
    return _ToPadded.apply(routing, tuple(indices), *parts)


def from_padded(padded: Tensor, indices: list[Tensor], routing: Routing) -> list[Tensor]:
    """(B * L, C) -> one (n_i, C) tensor of the rows at ``indices[i]`` per part."""
    return list(_FromPadded.apply(routing, tuple(indices), padded))
