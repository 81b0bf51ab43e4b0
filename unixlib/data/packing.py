"""Packing: sample plans (``plans.py``) -> one :class:`PackedBatch`, in one of two layouts.

* **padded** (the reference): one sample per row of a right-padded (B, L) batch, with the dense
  (B, 1, L, L) boolean attention mask of :func:`attention_masks`. KV-cache decoding and image
  sampling run on it (batched inference).
* **packed** (training, BAGEL's design): the real tokens of every sample laid out one after
  another in ONE row (1, T), T = the sum of the samples' lengths rounded up to
  ``pad_to_multiple_of`` (the tail is padding that attends only to itself). No T x T mask is
  built: per-token sample ids (``doc_ids``), split ids and block flags describe the attention,
  and ``model/attention.py`` turns them into a block mask (flex attention, CUDA) or per-sample
  masks (CPU). :func:`dense_mask` gives the reference mask of either layout (for tests).

In both layouts positions restart at 0 per sample, and flat indices address ``b * L + l``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields

import torch
from torch import Tensor

from unixlib.data.plans import (  # noqa: F401  (re-exported: the plans' old home)
    IGNORE_INDEX,
    KIND_CODES,
    KINDS,
    LAYOUTS,
    PAD_CODE,
    TEXT,
    TEXT_CODE,
    VAE,
    VAE_CODE,
    VIT,
    VIT_CODE,
    SamplePlan,
    SpecialTokens,
    Split,
    generation_plan,
    text_dropout,
    understanding_plan,
)


@dataclass
class PackedBatch:
    """Plans packed into a (B, L) batch: one sample per row (padded) or all in one row (packed).

    Flat indices address ``b * L + l``. Image tensors given with a batch follow the order of
    its image splits: sample by sample, split by split.

    Attributes:
        input_ids: (B, L) long; text ids, ``pad`` at image slots and padding.
        position_ids: (B, L) long RoPE positions, restarting per sample (one per image block;
            0 on padding).
        attention_mask: (B, 1, L, L) bool, True where query (dim 2) may attend key (dim 3);
            None in the packed layout (see :func:`dense_mask`).
        token_kind: (B, L) long, PAD_CODE / TEXT_CODE / VIT_CODE / VAE_CODE.
        und_index: (Nu,) long, flat indices of text and ViT tokens (understanding branch).
        gen_index: (Ng,) long, flat indices of latent tokens (generation branch).
        text_index, vit_index, vae_index: (.,) long flat indices per kind, ascending.
        vit_grids, vae_grids: (rows, cols) of each image split, in order.
        vit_rows, vae_rows: (n_images,) long, batch row of each image (0 when packed).
        vae_loss: (n_vae_images,) bool, which latent blocks carry the flow loss.
        label_ids: (B, L) long, the target predicted at each position (IGNORE_INDEX if none).
        ce_mask: (B, L) bool, positions whose next token is a CE target.
        ce_index: (Nce,) long flat positions of ``ce_mask``; ce_targets: (Nce,) their targets.
        flow_mask: (B, L) bool, latent tokens with flow loss.
        lengths: (B,) long, real tokens per row; sample_ids: (S,) long and tasks: one per
            sample (S = B when padded).
        doc_ids: (B, L) long, the token's sample index in the batch, -1 on padding.
        split_ids: (B, L) long, the token's split index within its sample, -1 on padding.
        in_block: (B, L) bool, tokens of image blocks (wrap tokens included): full attention.
        noisy: (B, L) bool, tokens of latent blocks (wrap included): seen only by their block.
        segments: [start, end) columns of each sample: in row 0 when packed, in its own row
            (``(0, length)``) when padded.
    """

    input_ids: Tensor
    position_ids: Tensor
    attention_mask: Tensor | None
    token_kind: Tensor
    und_index: Tensor
    gen_index: Tensor
    text_index: Tensor
    vit_index: Tensor
    vae_index: Tensor
    vit_grids: list[tuple[int, int]]
    vae_grids: list[tuple[int, int]]
    vit_rows: Tensor
    vae_rows: Tensor
    vae_loss: Tensor
    label_ids: Tensor
    ce_mask: Tensor
    ce_index: Tensor
    ce_targets: Tensor
    flow_mask: Tensor
    lengths: Tensor
    sample_ids: Tensor
    tasks: list[str]
    doc_ids: Tensor
    split_ids: Tensor
    in_block: Tensor
    noisy: Tensor
    segments: list[tuple[int, int]]

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.input_ids.shape)

    @property
    def packed(self) -> bool:
        """True for the packed layout (all samples in one row, no dense mask)."""
        return self.attention_mask is None

    def to(self, device: torch.device | str) -> PackedBatch:
        """A copy with every tensor on ``device``."""
        moved = {
            f.name: (v.to(device) if isinstance(v := getattr(self, f.name), Tensor) else v)
            for f in fields(self)
        }
        return PackedBatch(**moved)


def pack(
    plans: Sequence[SamplePlan], pad_id: int, pad_to_multiple_of: int = 1, packed: bool = False
) -> PackedBatch:
    """Pack sample plans into a :class:`PackedBatch`: one per row (``packed=False``), or all
    one after another in one row (``packed=True``); the length is rounded up to
    ``pad_to_multiple_of`` either way.

    Raises ``ValueError`` when a loss text split has no token before it to predict from, or
    when that token is a latent token (logits come from the understanding branch only).
    """
    if not plans:
        raise ValueError("pack: no plans")
    if not isinstance(pad_to_multiple_of, int) or pad_to_multiple_of < 1:
        raise ValueError(f"pad_to_multiple_of must be a positive int, got {pad_to_multiple_of!r}")
    lengths = [p.length for p in plans]
    length = sum(lengths) if packed else max(lengths)
    length = -(-length // pad_to_multiple_of) * pad_to_multiple_of
    rows = _Rows.empty(1 if packed else len(plans), length, pad_id)
    col = 0
    for i, plan in enumerate(plans):
        row, start = (0, col) if packed else (i, 0)
        _lay_out(rows, row, start, i, plan)
        rows.segments.append((start, start + plan.length))
        col += plan.length
    return _packed(rows, plans, packed)


@dataclass
class _Rows:
    """What :func:`pack` fills in, sample by sample: per-token (B, L) tensors and lists."""

    input_ids: Tensor  # long, pad_id where no text token
    position_ids: Tensor  # long
    kind: Tensor  # long token kind codes (PAD_CODE on padding)
    doc_id: Tensor  # long index of the token's sample in the batch, -1 on padding
    split_id: Tensor  # long index of the token's split in its sample, -1 on padding
    block: Tensor  # bool, tokens of image blocks (wrap tokens included)
    noisy: Tensor  # bool, tokens of vae blocks (wrap included)
    label_ids: Tensor  # long CE target at each position, IGNORE_INDEX if none
    flow_mask: Tensor  # bool, latent tokens with flow loss
    vit_grids: list[tuple[int, int]] = field(default_factory=list)
    vae_grids: list[tuple[int, int]] = field(default_factory=list)
    vit_rows: list[int] = field(default_factory=list)
    vae_rows: list[int] = field(default_factory=list)
    vae_loss: list[bool] = field(default_factory=list)
    segments: list[tuple[int, int]] = field(default_factory=list)

    @classmethod
    def empty(cls, b: int, length: int, pad_id: int) -> _Rows:
        """All padding: (b, length) tensors, no images."""
        return cls(
            input_ids=torch.full((b, length), pad_id, dtype=torch.long),
            position_ids=torch.zeros(b, length, dtype=torch.long),
            kind=torch.zeros(b, length, dtype=torch.long),  # PAD_CODE
            doc_id=torch.full((b, length), -1, dtype=torch.long),
            split_id=torch.full((b, length), -1, dtype=torch.long),
            block=torch.zeros(b, length, dtype=torch.bool),
            noisy=torch.zeros(b, length, dtype=torch.bool),
            label_ids=torch.full((b, length), IGNORE_INDEX, dtype=torch.long),
            flow_mask=torch.zeros(b, length, dtype=torch.bool),
        )


def _lay_out(rows: _Rows, row: int, start: int, doc: int, plan: SamplePlan) -> None:
    """Write ``plan`` (sample ``doc`` of the batch) into row ``row`` from column ``start``."""
    col, pos = start, 0  # next column; next RoPE position
    rows.doc_id[row, start : start + plan.length] = doc
    for s_idx, split in enumerate(plan.splits):
        end = col + split.n_tokens
        rows.kind[row, col:end] = KIND_CODES[split.kind]
        rows.split_id[row, col:end] = s_idx
        if split.kind == TEXT:
            rows.input_ids[row, col:end] = torch.tensor(split.token_ids)
            rows.position_ids[row, col:end] = torch.arange(pos, pos + split.n_tokens)
            pos += split.n_tokens
            if split.loss:
                if col == start or rows.noisy[row, col - 1]:
                    raise ValueError(
                        f"plan {doc} (sample {plan.sample_id}): loss split "
                        f"{s_idx} has no understanding token before it"
                    )
                # each token is the target of the position before it
                rows.label_ids[row, col - 1 : end - 1] = rows.input_ids[row, col:end]
        else:
            _lay_out_image(rows, row, col, end, pos, split)
            pos += 1  # one position for the whole block
        col = end


def _lay_out_image(rows: _Rows, row: int, col: int, end: int, pos: int, split: Split) -> None:
    """An image block at columns ``[col, end)`` of row ``row``, all at RoPE position ``pos``."""
    rows.position_ids[row, col:end] = pos
    rows.block[row, col:end] = True
    rows.noisy[row, col:end] = split.kind == VAE
    if split.wrap is not None:  # boi | image | eoi: text tokens at both ends
        rows.kind[row, col], rows.kind[row, end - 1] = TEXT_CODE, TEXT_CODE
        rows.input_ids[row, col], rows.input_ids[row, end - 1] = split.wrap
        img = slice(col + 1, end - 1)
    else:
        img = slice(col, end)
    if split.kind == VIT:
        rows.vit_grids.append(tuple(split.grid))
        rows.vit_rows.append(row)
    else:
        rows.vae_grids.append(tuple(split.grid))
        rows.vae_rows.append(row)
        rows.vae_loss.append(split.loss)
        rows.flow_mask[row, img] = split.loss


def _packed(rows: _Rows, plans: Sequence[SamplePlan], packed: bool) -> PackedBatch:
    """The :class:`PackedBatch` of filled rows: the flat index sets and (padded) the mask."""

    def flat(mask: Tensor) -> Tensor:
        return mask.flatten().nonzero().squeeze(1)

    kind, label_ids = rows.kind, rows.label_ids
    ce_mask = label_ids != IGNORE_INDEX
    ce_index = flat(ce_mask)
    mask = None if packed else attention_masks(rows.split_id, kind, rows.block, rows.noisy)
    return PackedBatch(
        input_ids=rows.input_ids,
        position_ids=rows.position_ids,
        attention_mask=mask,
        token_kind=kind,
        und_index=flat((kind == TEXT_CODE) | (kind == VIT_CODE)),
        gen_index=flat(kind == VAE_CODE),
        text_index=flat(kind == TEXT_CODE),
        vit_index=flat(kind == VIT_CODE),
        vae_index=flat(kind == VAE_CODE),
        vit_grids=rows.vit_grids,
        vae_grids=rows.vae_grids,
        vit_rows=torch.tensor(rows.vit_rows, dtype=torch.long),
        vae_rows=torch.tensor(rows.vae_rows, dtype=torch.long),
        vae_loss=torch.tensor(rows.vae_loss, dtype=torch.bool),
        label_ids=label_ids,
        ce_mask=ce_mask,
        ce_index=ce_index,
        ce_targets=label_ids.flatten()[ce_index],
        flow_mask=rows.flow_mask,
        lengths=(kind != PAD_CODE).sum(1),
        sample_ids=torch.tensor([p.sample_id for p in plans], dtype=torch.long),
        tasks=[p.task for p in plans],
        doc_ids=rows.doc_id,
        split_ids=rows.split_id,
        in_block=rows.block,
        noisy=rows.noisy,
        segments=rows.segments,
    )


def attention_masks(
    split_id: Tensor,
    kind: Tensor,
    block: Tensor | None = None,
    noisy: Tensor | None = None,
    doc_id: Tensor | None = None,
) -> Tensor:
    """The (B, 1, L, L) boolean masks of PAPER.md from per-token split ids and kinds.

    Args:
        split_id: (B, L) long, index of each token's split within its sample, -1 on padding.
        kind: (B, L) long token kinds (PAD_CODE, TEXT_CODE, VIT_CODE, VAE_CODE).
        block: (B, L) bool, tokens of image blocks, wrap tokens included (default: the
            ViT and latent tokens); full attention within their block.
        noisy: (B, L) bool, tokens of noisy latent blocks, wrap included (default: the latent
            tokens); seen by no token outside their block.
        doc_id: (B, L) long, each token's sample (several samples share a row when packed);
            default: one sample per row.
    """
    length = split_id.shape[1]
    if block is None:
        block = (kind == VIT_CODE) | (kind == VAE_CODE)
    if noisy is None:
        noisy = kind == VAE_CODE
    sq, sk = split_id[:, :, None], split_id[:, None, :]  # (B, L, 1), (B, 1, L)
    same = sq == sk
    col = torch.arange(length, device=split_id.device)
    causal = col[:, None] >= col[None, :]  # (L, L)
    mask = (sk < sq) | (same & (block[:, :, None] | causal))  # full attention in-block
    if doc_id is not None:  # nothing crosses samples (same split id alone is not enough)
        same_doc = doc_id[:, :, None] == doc_id[:, None, :]  # (B, L, L)
        mask &= same_doc
        same &= same_doc
    mask &= ~(noisy[:, None, :] & ~same)  # a noisy block is seen only by itself
    mask &= (kind != PAD_CODE)[:, None, :]  # nobody attends padding ...
    mask |= (
        torch.eye(length, dtype=torch.bool, device=split_id.device) & (kind == PAD_CODE)[:, :, None]
    )  # ... but itself
    return mask[:, None]


def dense_mask(batch: PackedBatch) -> Tensor:
    """The reference (B, 1, L, L) bool mask of either layout (the padded batch's own mask;
    for a packed batch, the same rules with nothing across samples). On ``batch``'s device."""
    if batch.attention_mask is not None:
        return batch.attention_mask
    device = batch.doc_ids.device
    return attention_masks(
        batch.split_ids.cpu(),
        batch.token_kind.cpu(),
        batch.in_block.cpu(),
        batch.noisy.cpu(),
        batch.doc_ids.cpu(),
    ).to(device)


def padding_fraction(batch: PackedBatch) -> float:
    """Padding tokens / all tokens of the (B, L) layout."""
    return 1.0 - float(batch.lengths.sum()) / batch.input_ids.numel()
