"""Sequence plans and packing: the data-to-model contract of UniX (model-agnostic, torch only).

A sample is a **sequence plan**, a list of splits (BAGEL's idea, DESIGN.md §5):

* ``text``: token ids, causal attention within the split;
* ``vit``: an understanding image block (SigLIP tokens), full attention within itself;
* ``vae``: a noisy latent block, full attention within itself, sees every earlier split and is
  seen by **no** other token (so the text never reads the noise it is asked to denoise).

Every split attends to all earlier splits of its sample, and nothing crosses samples (here each
sample is one row of a padded [B, L] batch). A whole image block shares one RoPE position; text
continues at +1 after it. Padding attends only to itself (no empty softmax rows, no NaNs) and
carries no loss.

Layouts (``understanding_plan`` / ``generation_plan``), ``layout="ours"`` (default)::

    understanding: text[bos, boi]  vit[N]  text[eoi, prompt...]  text[report..., eos] (CE)
    generation:    text[bos, report..., boi]  vae[h*w] (flow loss)
    unconditional: text[bos, boi]             vae[h*w]            (CFG / text dropout)

and ``layout="official"``, the sequences of the official UniX inference code (ZrH42/UniX,
``modeling/unix/unix.py``: ``prepare_vit_images``, ``prepare_prompts``, ``prepare_start_tokens``,
``prepare_vae_latent``; the released weights were trained on them). There ``boi`` and ``eoi``
sit *inside* the image block: they share its one RoPE position and its full attention, and
are text tokens (understanding branch); the prompt is closed by ``eos`` and answering starts
from a fresh ``bos``::

    understanding: vit[boi | N | eoi] @p0  text[bos, prompt..., eos, bos]  text[report..., eos]
    generation:    text[bos, report..., eos]  vae[boi | h*w | eoi] (one position)
    unconditional:                            vae[boi | h*w | eoi] @p0 (the empty context)

``prompt`` here is what the official code's ``tokenizer.encode`` returns
(``ReportTokenizer.encode_official``).

Text dropout for classifier-free guidance happens here, on the data side, when the plan is
built (:func:`text_dropout`; BAGEL does the same): the model never changes a batch's layout.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields

import torch
from torch import Tensor

TEXT, VIT, VAE = "text", "vit", "vae"
KINDS = (TEXT, VIT, VAE)
LAYOUTS = ("ours", "official")  # sequence layouts of the plan builders (module docstring)
# Codes of PackedBatch.token_kind.
PAD_CODE, TEXT_CODE, VIT_CODE, VAE_CODE = 0, 1, 2, 3
_CODE = {TEXT: TEXT_CODE, VIT: VIT_CODE, VAE: VAE_CODE}
IGNORE_INDEX = -100  # label of positions without cross-entropy (PyTorch's default ignore_index)


@dataclass(frozen=True)
class SpecialTokens:
    """The five special ids a plan uses (``ReportTokenizer.special_ids`` / ``UniXConfig``)."""

    bos: int
    eos: int
    pad: int
    boi: int
    eoi: int

    @classmethod
    def from_mapping(cls, ids: Mapping[str, int]) -> SpecialTokens:
        missing = [f.name for f in fields(cls) if f.name not in ids]
        if missing:
            raise KeyError(f"special token ids missing: {missing}")
        return cls(**{f.name: int(ids[f.name]) for f in fields(cls)})


@dataclass(frozen=True)
class Split:
    """One segment of a sample.

    Attributes:
        kind: ``"text"``, ``"vit"`` or ``"vae"``.
        token_ids: the ids of a text split (empty for images).
        grid: (rows, cols) token grid of an image split (None for text).
        loss: text: its tokens are cross-entropy targets (predicted from the position before
            each); vae: the block carries the flow-matching loss; vit: must be False.
        wrap: image splits only: (open, close) text ids placed first and last *inside* the
            block, with its position and full attention (the official layout's boi / eoi).
    """

    kind: str
    token_ids: tuple[int, ...] = ()
    grid: tuple[int, int] | None = None
    loss: bool = False
    wrap: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Split.kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind == TEXT:
            if self.grid is not None or not self.token_ids:
                raise ValueError("a text split needs token_ids and no grid")
        else:
            if self.token_ids or self.grid is None or min(self.grid) < 1:
                raise ValueError(f"a {self.kind} split needs a grid (rows, cols >= 1), no ids")
            if self.kind == VIT and self.loss:
                raise ValueError("a vit split carries no loss")
        if self.wrap is not None and (self.kind == TEXT or len(self.wrap) != 2):
            raise ValueError("wrap takes (open, close) ids and only on an image split")
        object.__setattr__(self, "token_ids", tuple(int(i) for i in self.token_ids))
        if self.wrap is not None:
            object.__setattr__(self, "wrap", (int(self.wrap[0]), int(self.wrap[1])))

    @property
    def n_image_tokens(self) -> int:
        """Image tokens of the block (0 for text)."""
        return 0 if self.grid is None else self.grid[0] * self.grid[1]

    @property
    def n_tokens(self) -> int:
        if self.grid is None:
            return len(self.token_ids)
        return self.n_image_tokens + (2 if self.wrap is not None else 0)


@dataclass(frozen=True)
class SamplePlan:
    """A sample: its splits in order, plus bookkeeping (``sample_id``, ``task``)."""

    splits: tuple[Split, ...]
    sample_id: int = -1
    task: str = ""  # "und" / "gen" / "uncond": for logging only, the model never reads it

    def __post_init__(self) -> None:
        object.__setattr__(self, "splits", tuple(self.splits))
        if not self.splits:
            raise ValueError("a sample plan needs at least one split")

    @property
    def length(self) -> int:
        return sum(s.n_tokens for s in self.splits)


def _check_layout(layout: str) -> None:
    if layout not in LAYOUTS:
        raise ValueError(f"sequence layout must be one of {LAYOUTS}, got {layout!r}")


def understanding_plan(
    prompt_ids: Sequence[int],
    report_ids: Sequence[int] | None,
    vit_grid: tuple[int, int],
    special: SpecialTokens,
    sample_id: int = -1,
    layout: str = "ours",
) -> SamplePlan:
    """``[bos, boi] vit [eoi, prompt...] [report..., eos]``; CE on the report and eos
    (``layout="official"``: ``vit[boi|N|eoi] [bos, prompt..., eos, bos] [report..., eos]``).

    ``report_ids=None`` gives the inference prefix (no answer split), from which
    ``UniX.generate_report`` decodes.
    """
    _check_layout(layout)
    if layout == "official":
        splits = [
            Split(VIT, grid=tuple(vit_grid), wrap=(special.boi, special.eoi)),
            Split(TEXT, (special.bos, *prompt_ids, special.eos, special.bos)),
        ]
    else:
        splits = [
            Split(TEXT, (special.bos, special.boi)),
            Split(VIT, grid=tuple(vit_grid)),
            Split(TEXT, (special.eoi, *prompt_ids)),
        ]
    if report_ids is not None:
        splits.append(Split(TEXT, (*report_ids, special.eos), loss=True))
    return SamplePlan(tuple(splits), sample_id, "und")


def generation_plan(
    report_ids: Sequence[int],
    vae_grid: tuple[int, int],
    special: SpecialTokens,
    sample_id: int = -1,
    loss: bool = True,
    layout: str = "ours",
) -> SamplePlan:
    """``[bos, report..., boi] vae[grid]``; an empty report is the unconditional plan
    (``layout="official"``: ``[bos, report..., eos] vae[boi|grid|eoi]``, and the bare block for
    an empty report)."""
    _check_layout(layout)
    if layout == "official":
        block = Split(VAE, grid=tuple(vae_grid), loss=loss, wrap=(special.boi, special.eoi))
        text = (Split(TEXT, (special.bos, *report_ids, special.eos)),) if report_ids else ()
        splits = (*text, block)
    else:
        splits = (
            Split(TEXT, (special.bos, *report_ids, special.boi)),
            Split(VAE, grid=tuple(vae_grid), loss=loss),
        )
    return SamplePlan(splits, sample_id, "gen" if report_ids else "uncond")


def text_dropout(report_ids: Sequence[int], prob: float, rng: random.Random) -> list[int]:
    """The report, or ``[]`` (the empty context) with probability ``prob`` (CFG training)."""
    if not 0.0 <= prob < 1.0:
        raise ValueError(f"text dropout probability must be in [0, 1), got {prob}")
    return [] if rng.random() < prob else list(report_ids)


@dataclass
class PackedBatch:
    """Plans packed into a right-padded [B, L] batch (one sample per row).

    Flat indices address ``b * L + l``. Image tensors given with a batch follow the order of
    its image splits: row by row, split by split.

    Attributes:
        input_ids: (B, L) long; text ids, ``pad`` at image slots and padding.
        position_ids: (B, L) long RoPE positions (one per image block; 0 on padding).
        attention_mask: (B, 1, L, L) bool, True where query (dim 2) may attend key (dim 3).
        token_kind: (B, L) long, PAD_CODE / TEXT_CODE / VIT_CODE / VAE_CODE.
        und_index: (Nu,) long, flat indices of text and ViT tokens (understanding branch).
        gen_index: (Ng,) long, flat indices of latent tokens (generation branch).
        text_index, vit_index, vae_index: (.,) long flat indices per kind, ascending.
        vit_grids, vae_grids: (rows, cols) of each image split, in order.
        vit_rows, vae_rows: (n_images,) long, batch row of each image.
        vae_loss: (n_vae_images,) bool, which latent blocks carry the flow loss.
        label_ids: (B, L) long, the target predicted at each position (IGNORE_INDEX if none).
        ce_mask: (B, L) bool, positions whose next token is a CE target.
        ce_index: (Nce,) long flat positions of ``ce_mask``; ce_targets: (Nce,) their targets.
        flow_mask: (B, L) bool, latent tokens with flow loss.
        lengths: (B,) long, real tokens per row; sample_ids: (B,) long; tasks: per row.
    """

    input_ids: Tensor
    position_ids: Tensor
    attention_mask: Tensor
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

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.input_ids.shape)

    def to(self, device: torch.device | str) -> PackedBatch:
        """A copy with every tensor on ``device``."""
        moved = {
            f.name: (v.to(device) if isinstance(v := getattr(self, f.name), Tensor) else v)
            for f in fields(self)
        }
        return PackedBatch(**moved)


def pack(plans: Sequence[SamplePlan], pad_id: int, pad_to_multiple_of: int = 1) -> PackedBatch:
    """Pack sample plans, one per row, into a :class:`PackedBatch`.

    Raises ``ValueError`` when a loss text split has no token before it to predict from, or
    when that token is a latent token (logits come from the understanding branch only).
    """
    if not plans:
        raise ValueError("pack: no plans")
    length = max(p.length for p in plans)
    length = -(-length // pad_to_multiple_of) * pad_to_multiple_of
    rows = _Rows.empty(len(plans), length, pad_id)
    for row, plan in enumerate(plans):
        _lay_out(rows, row, plan)
    return _packed(rows, plans)


@dataclass
class _Rows:
    """What :func:`pack` fills in, row by row: per-token (B, L) tensors and per-image lists."""

    input_ids: Tensor  # long, pad_id where no text token
    position_ids: Tensor  # long
    kind: Tensor  # long token kind codes (PAD_CODE on padding)
    split_id: Tensor  # long index of the token's split in its row, -1 on padding
    block: Tensor  # bool, tokens of image blocks (wrap included)
    noisy: Tensor  # bool, tokens of vae blocks (wrap included)
    label_ids: Tensor  # long CE target at each position, IGNORE_INDEX if none
    flow_mask: Tensor  # bool, latent tokens with flow loss
    vit_grids: list[tuple[int, int]] = field(default_factory=list)
    vae_grids: list[tuple[int, int]] = field(default_factory=list)
    vit_rows: list[int] = field(default_factory=list)
    vae_rows: list[int] = field(default_factory=list)
    vae_loss: list[bool] = field(default_factory=list)

    @classmethod
    def empty(cls, b: int, length: int, pad_id: int) -> _Rows:
        """All padding: (b, length) tensors, no images."""
        return cls(
            input_ids=torch.full((b, length), pad_id, dtype=torch.long),
            position_ids=torch.zeros(b, length, dtype=torch.long),
            kind=torch.zeros(b, length, dtype=torch.long),  # PAD_CODE
            split_id=torch.full((b, length), -1, dtype=torch.long),
            block=torch.zeros(b, length, dtype=torch.bool),
            noisy=torch.zeros(b, length, dtype=torch.bool),
            label_ids=torch.full((b, length), IGNORE_INDEX, dtype=torch.long),
            flow_mask=torch.zeros(b, length, dtype=torch.bool),
        )


def _lay_out(rows: _Rows, row: int, plan: SamplePlan) -> None:
    """Write ``plan``'s splits into row ``row``, left-aligned (the rest stays padding)."""
    col, pos = 0, 0  # next column; next RoPE position
    for s_idx, split in enumerate(plan.splits):
        end = col + split.n_tokens
        rows.kind[row, col:end] = _CODE[split.kind]
        rows.split_id[row, col:end] = s_idx
        if split.kind == TEXT:
            rows.input_ids[row, col:end] = torch.tensor(split.token_ids)
            rows.position_ids[row, col:end] = torch.arange(pos, pos + split.n_tokens)
            pos += split.n_tokens
            if split.loss:
                if col == 0 or rows.noisy[row, col - 1]:
                    raise ValueError(
                        f"plan {row} (sample {plan.sample_id}): loss split "
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


def _packed(rows: _Rows, plans: Sequence[SamplePlan]) -> PackedBatch:
    """The :class:`PackedBatch` of filled rows: masks and the flat index sets derived."""

    def flat(mask: Tensor) -> Tensor:
        return mask.flatten().nonzero().squeeze(1)

    kind, label_ids = rows.kind, rows.label_ids
    ce_mask = label_ids != IGNORE_INDEX
    ce_index = flat(ce_mask)
    return PackedBatch(
        input_ids=rows.input_ids,
        position_ids=rows.position_ids,
        attention_mask=attention_masks(rows.split_id, kind, rows.block, rows.noisy),
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
    )


def attention_masks(
    split_id: Tensor, kind: Tensor, block: Tensor | None = None, noisy: Tensor | None = None
) -> Tensor:
    """The (B, 1, L, L) boolean masks of PAPER.md from per-token split ids and kinds.

    Args:
        split_id: (B, L) long, index of each token's split within its row, -1 on padding.
        kind: (B, L) long token kinds (PAD_CODE, TEXT_CODE, VIT_CODE, VAE_CODE).
        block: (B, L) bool, tokens of image blocks, wrap tokens included (default: the
            ViT and latent tokens); full attention within their block.
        noisy: (B, L) bool, tokens of noisy latent blocks, wrap included (default: the latent
            tokens); seen by no token outside their block.
    """
    length = split_id.shape[1]
    if block is None:
        block = (kind == VIT_CODE) | (kind == VAE_CODE)
    if noisy is None:
        noisy = kind == VAE_CODE
    sq, sk = split_id[:, :, None], split_id[:, None, :]  # (B, L, 1), (B, 1, L)
    same = sq == sk
    col = torch.arange(length)
    causal = col[:, None] >= col[None, :]  # (L, L)
    mask = (sk < sq) | (same & (block[:, :, None] | causal))  # full attention in-block
    mask &= ~(noisy[:, None, :] & ~same)  # a noisy block is seen only by itself
    mask &= (kind != PAD_CODE)[:, None, :]  # nobody attends padding ...
    mask |= torch.eye(length, dtype=torch.bool) & (kind == PAD_CODE)[:, :, None]  # ... but itself
    return mask[:, None]
