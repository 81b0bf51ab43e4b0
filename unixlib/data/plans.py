"""Sequence plans: the data-to-model contract of UniX (model-agnostic, plain Python).

A sample is a **sequence plan**, a list of splits (BAGEL's idea, DESIGN.md §5):

* ``text``: token ids, causal attention within the split;
* ``vit``: an understanding image block (SigLIP tokens), full attention within itself;
* ``vae``: a noisy latent block, full attention within itself, sees every earlier split and is
  seen by **no** other token (so the text never reads the noise it is asked to denoise).

Every split attends to all earlier splits of its sample, and nothing crosses samples (``packing.py``
lays samples out one per row of a padded [B, L] batch, or one after another in one packed row).
A whole image block shares one RoPE position; text continues at +1 after it. Padding attends only to itself (no empty softmax rows, no NaNs) and
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
from dataclasses import dataclass, fields

TEXT, VIT, VAE = "text", "vit", "vae"
KINDS = (TEXT, VIT, VAE)
LAYOUTS = ("ours", "official")  # sequence layouts of the plan builders (module docstring)
# Codes of PackedBatch.token_kind.
PAD_CODE, TEXT_CODE, VIT_CODE, VAE_CODE = 0, 1, 2, 3
KIND_CODES = {TEXT: TEXT_CODE, VIT: VIT_CODE, VAE: VAE_CODE}
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
