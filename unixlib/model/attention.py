"""The attention of one MoT block, given q, k, v and the batch's attention description.

One kernel per (layout, device), chosen once per batch (:func:`attention_kernel`):

* ``"flex"``: packed batch on CUDA. ``flex_attention`` (compiled once per process) with a
  ``BlockMask`` built ONCE per batch from the per-token sample ids, split ids and block flags
  (:func:`packed_mask_mod`; BAGEL's design). Fully masked 128 x 128 tiles (other samples) are
  skipped, so the cost follows the samples' own lengths.
* ``"sdpa-per-sample"``: packed batch on CPU, where torch's flex_attention has no backward.
  Exact: SDPA over each sample's columns with that sample's own (1, 1, n, n) mask (built once
  per batch); the sample outputs are concatenated back into the row.
* ``"sdpa-dense"``: the padded reference layout, SDPA with the dense (B, 1, L, L) mask. KV-cache
  decoding and image sampling use it (they pass the mask tensor itself).

Every kernel implements the same rule (``data/packing.attention_masks``): causal text, full
attention inside an image block, a noisy latent block seen by no token outside it, nothing
across samples, padding attending only to itself.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from unixlib.data.packing import PackedBatch, attention_masks

FLEX, PER_SAMPLE, DENSE = "flex", "sdpa-per-sample", "sdpa-dense"
KERNELS = (FLEX, PER_SAMPLE, DENSE)
FLEX_BLOCK = 128  # flex_attention's tile: packed CUDA batches are padded to a multiple of it

_compiled_flex: Callable | None = None


def attention_kernel(batch: PackedBatch, device: torch.device | str) -> str:
    """Which kernel runs ``batch`` on ``device``: ``"flex"``, ``"sdpa-per-sample"`` or
    ``"sdpa-dense"`` (see the module docstring)."""
    return kernel_for(batch.packed, device)


def kernel_for(packed: bool, device: torch.device | str) -> str:
    """The kernel that runs a packed (or padded) batch on ``device``."""
    if not packed:
        return DENSE
    return FLEX if torch.device(device).type == "cuda" else PER_SAMPLE


def pad_multiple(packing: bool, device: torch.device | str) -> int:
    """The length multiple a training batch is padded to: flex's tile when packed on CUDA,
    else 1 (no padding)."""
    return FLEX_BLOCK if packing and torch.device(device).type == "cuda" else 1


def packed_mask_mod(doc: Tensor, split: Tensor, block: Tensor, noisy: Tensor) -> Callable:
    """flex_attention's ``mask_mod`` of a packed row from its (T,) per-token tensors.

    Args:
        doc: (T,) long sample index, -1 on padding; split: (T,) long split index in the
            sample; block: (T,) bool image-block tokens; noisy: (T,) bool latent-block tokens.
    Returns:
        ``mask_mod(b, h, q, kv) -> bool``, elementwise (works on index grids too).
    """

    def mask_mod(b: Tensor, h: Tensor, q: Tensor, kv: Tensor) -> Tensor:
        dq, dk = doc[q], doc[kv]
        sq, sk = split[q], split[kv]
        same_doc = dq == dk
        same_split = same_doc & (sq == sk)
        earlier = same_doc & (sk < sq)  # every earlier split of the sample ...
        within = same_split & (block[q] | (q >= kv))  # ... and its own: full or causal
        seen = (earlier | within) & (same_split | ~noisy[kv])  # latents seen only in-block
        return (seen & (dk >= 0)) | ((dq < 0) & (q == kv))  # padding sees only itself

    return mask_mod


def materialise_mask_mod(mask_mod: Callable, length: int) -> Tensor:
    """(length, length) bool: ``mask_mod`` evaluated on every (query, key) pair (tests)."""
    idx = torch.arange(length)
    zero = torch.zeros((), dtype=torch.long)
    return mask_mod(zero, zero, idx[:, None], idx[None, :])


def sample_masks(batch: PackedBatch) -> list[Tensor]:
    """(1, 1, n, n) bool mask of each sample of a packed batch, over its own columns."""
    masks = []
    for start, end in batch.segments:
        cols = slice(start, end)
        masks.append(
            attention_masks(
                batch.split_ids[:, cols],
                batch.token_kind[:, cols],
                batch.in_block[:, cols],
                batch.noisy[:, cols],
            )
        )
    return masks


class BatchAttention:
    """A batch's attention, built once per forward and shared by every block.

    Attributes:
        kernel: the kernel that runs (:data:`KERNELS`).
    """

    def __init__(self, batch: PackedBatch, kernel: str | None = None) -> None:
        device = batch.input_ids.device
        self.kernel = kernel or attention_kernel(batch, device)
        self.length = batch.input_ids.shape[1]
        self.mask: Tensor | None = None
        self.sizes: list[int] = []
        self.masks: list[Tensor] = []
        self.block_mask = None
        if self.kernel == DENSE:
            self.mask = batch.attention_mask
            if self.mask is None:
                raise ValueError("sdpa-dense needs a padded batch (pack(..., packed=False))")
            return
        if not batch.packed:
            raise ValueError(f"the {self.kernel} kernel needs a packed batch")
        if self.kernel == PER_SAMPLE:
            self.masks = sample_masks(batch)
            self.sizes = [end - start for start, end in batch.segments]
            tail = self.length - batch.segments[-1][1]
            if tail:
                self.sizes.append(tail)
        elif self.kernel == FLEX:
            self.block_mask = _block_mask(batch)
        else:
            raise ValueError(f"unknown attention kernel {self.kernel!r}; known: {KERNELS}")

    def __call__(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """q (B, H, L, hd), k and v (B, Hkv, L, hd) -> (B, H, L, hd)."""
        gqa = k.shape[1] != q.shape[1]
        if self.kernel == DENSE:
            return F.scaled_dot_product_attention(q, k, v, attn_mask=self.mask, enable_gqa=gqa)
        if self.kernel == FLEX:
            return _flex()(q, k, v, block_mask=self.block_mask, enable_gqa=gqa)
        return self._per_sample(q, k, v, gqa)

    def _per_sample(self, q: Tensor, k: Tensor, v: Tensor, gqa: bool) -> Tensor:
        """SDPA over each sample's columns; padding at the tail (if any) gets zeros (its own
        value: padding rows of q, k, v are zero)."""
        # split (not slicing): its backward is one concatenation, not one zero-filled copy
        # of the whole row per sample
        qs, ks, vs = (x.split(self.sizes, dim=2) for x in (q, k, v))
        outs = [
            F.scaled_dot_product_attention(qi, ki, vi, attn_mask=m, enable_gqa=gqa)
            for qi, ki, vi, m in zip(qs, ks, vs, self.masks, strict=False)
        ]  # (1, H, n_i, hd) each
        if len(self.sizes) > len(self.masks):  # the padded tail
            outs.append(q.new_zeros(q.shape[0], q.shape[1], self.sizes[-1], q.shape[3]))
        return torch.cat(outs, dim=2) if len(outs) > 1 else outs[0]


def attend(q: Tensor, k: Tensor, v: Tensor, attention: BatchAttention | Tensor) -> Tensor:
    """One layer's attention: ``attention`` is a batch's :class:`BatchAttention`, or a dense
    (B, 1, L, Lk) bool mask (KV-cache decoding and sampling; Lk >= L with a cache)."""
    if isinstance(attention, BatchAttention):
        return attention(q, k, v)
    gqa = k.shape[1] != q.shape[1]
    return F.scaled_dot_product_attention(q, k, v, attn_mask=attention, enable_gqa=gqa)


def _block_mask(batch: PackedBatch):
    """flex's BlockMask of a packed batch (row 0), on the batch's device."""
    from torch.nn.attention.flex_attention import create_block_mask

    doc, split, block, noisy = (
        x[0] for x in (batch.doc_ids, batch.split_ids, batch.in_block, batch.noisy)
    )
    length = doc.numel()
    mask_mod = packed_mask_mod(doc, split, block, noisy)
    return create_block_mask(mask_mod, None, None, length, length, device=doc.device)


def _flex() -> Callable:
    """``flex_attention``, compiled at the first call (once per process)."""
    global _compiled_flex
    if _compiled_flex is None:
        from torch.nn.attention.flex_attention import flex_attention

        _compiled_flex = torch.compile(flex_attention)
    return _compiled_flex
