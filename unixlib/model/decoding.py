"""Report generation: greedy decoding with a KV cache (and its uncached reference).

Cached: one prefill over the packed prefix ``[bos, boi] vit [eoi, prompt...]`` fills a
:class:`KVCache`; then each step feeds only the B new tokens, which attend to the valid cached
columns (right padding of shorter prefixes is masked out) and to the tokens generated so far.
Positions are explicit, so row b's new token gets position ``last_position_b + 1`` whatever
its column. Uncached: every step re-packs the prefix plus the tokens so far and recomputes the
whole sequence; tests and the benchmark compare the two.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from unixlib.data.packing import (
    PAD_CODE,
    TEXT,
    SamplePlan,
    SpecialTokens,
    Split,
    pack,
    understanding_plan,
)
from unixlib.model.mot import KVCache
from unixlib.model.routing import Routing
from unixlib.model.vision import preprocess_for_vit

if TYPE_CHECKING:
    from unixlib.model.unix import UniX


def _last_logits(model: UniX, h: Tensor, routing: Routing, lengths: Tensor) -> Tensor:
    """(B, V) logits at each row's last real token."""
    b, length = routing.batch, routing.length
    last = torch.arange(b, device=h.device) * length + lengths.to(h.device) - 1
    return model.lm_head(h[routing.rows_of(last)]).float()


@torch.no_grad()
def greedy_decode(
    model: UniX,
    plans: list[SamplePlan],
    vit_pixels: Tensor,
    max_new_tokens: int,
    use_cache: bool = True,
    return_logits: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """Greedy continuation of understanding prefixes.

    Args:
        plans: B prefix plans (``understanding_plan(..., report_ids=None)``).
        vit_pixels: (Nv, 3, S, S) preprocessed images of the plans' vit splits, in order.
        max_new_tokens: steps to run (stops early once every row has produced eos).
        use_cache: False recomputes the full sequence at every step.
        return_logits: also keep the (B, V) logits of every step (tests; (B, T, V) floats are
            gigabytes at the paper's vocabulary and length, so reports do without).
    Returns:
        ((B, T) long generated ids, (B, T, V) float logits that chose them or None),
        T <= max_new_tokens.
        Rows that finished keep decoding (ids after their first eos are meaningless).
    """
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    cfg = model.config
    device = vit_pixels.device
    batch = pack(plans, cfg.pad_id).to(device)
    b, length = batch.input_ids.shape
    vit_embeds = model.embed_vit(vit_pixels).flatten(0, 1)
    tokens, logits_out = [], []
    done = torch.zeros(b, dtype=torch.bool, device=device)

    cache = KVCache(cfg.num_layers, length + max_new_tokens) if use_cache else None
    h, routing = model.embed(batch, vit_embeds, None)
    h, _ = model.run(h, routing, batch.position_ids, batch.attention_mask, cache)
    logits = _last_logits(model, h, routing, batch.lengths)
    if use_cache:
        key_valid = torch.zeros(b, length + max_new_tokens, dtype=torch.bool, device=device)
        key_valid[:, :length] = batch.token_kind != PAD_CODE  # real prefix tokens only
        next_pos = batch.position_ids.max(dim=1).values + 1  # (B,)
        step_routing = Routing.dense(b, 1, "und", device)
    for step in range(max_new_tokens):
        token = logits.argmax(-1)  # (B,)
        tokens.append(token)
        if return_logits:
            logits_out.append(logits)
        done |= token == cfg.eos_id
        if step == max_new_tokens - 1 or bool(done.all()):
            break
        if use_cache:
            key_valid[:, length + step] = True
            mask = key_valid[:, None, None, : length + step + 1]  # (B, 1, 1, Lk)
            h = model.language_model.embed_tokens(token)  # (B, D): routed = row order
            h, _ = model.run(h, step_routing, next_pos[:, None], mask, cache)
            logits = model.lm_head(h).float()
            next_pos = next_pos + 1
        else:
            so_far = torch.stack(tokens, dim=1).tolist()  # (B, step + 1)
            longer = [
                SamplePlan((*p.splits, Split(TEXT, tuple(ids))), p.sample_id, p.task)
                for p, ids in zip(plans, so_far, strict=True)
            ]
            full = pack(longer, cfg.pad_id).to(device)
            h, routing = model.embed(full, vit_embeds, None)
            h, _ = model.run(h, routing, full.position_ids, full.attention_mask)
            logits = _last_logits(model, h, routing, full.lengths)
    return torch.stack(tokens, dim=1), torch.stack(logits_out, dim=1) if return_logits else None


def generate_report(
    model: UniX,
    images: Tensor,
    prompt_ids: list[list[int]] | list[int],
    max_new_tokens: int,
    use_cache: bool = True,
) -> list[list[int]]:
    """Greedy reports for (B, 1, H, W) gray images in [0, 1].

    ``prompt_ids``: one instruction (a flat list of ids, possibly empty) for every image, or
    one list per image.
    Returns per image the generated ids up to (not including) the first eos.
    """
    cfg = model.config
    b = images.shape[0]
    if not prompt_ids or isinstance(prompt_ids[0], int):  # one prompt for every image
        prompt_ids = [list(prompt_ids)] * b
    if len(prompt_ids) != b:
        raise ValueError(f"{len(prompt_ids)} prompts for {b} images")
    special = SpecialTokens.from_mapping(cfg.special_ids())
    grid = (cfg.vit_grid, cfg.vit_grid)
    layout = cfg.sequence_layout
    plans = [
        understanding_plan(p, None, grid, special, i, layout) for i, p in enumerate(prompt_ids)
    ]
    pixels = preprocess_for_vit(images, cfg.image_size_und)
    ids, _ = greedy_decode(model, plans, pixels, max_new_tokens, use_cache)
    reports = []
    for row in ids.tolist():
        reports.append(row[: row.index(cfg.eos_id)] if cfg.eos_id in row else row)
    return reports


class ReportDecoding:
    """Report writing as methods of :class:`~unixlib.model.unix.UniX` (a mixin)."""

    def greedy_decode(
        self,
        plans: list[SamplePlan],
        vit_pixels: Tensor,
        max_new_tokens: int,
        use_cache: bool = True,
        return_logits: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """Greedy continuation of prefix plans; see :func:`greedy_decode`."""
        return greedy_decode(self, plans, vit_pixels, max_new_tokens, use_cache, return_logits)

    def generate_report(
        self,
        images: Tensor,
        prompt_ids: list[list[int]] | list[int],
        max_new_tokens: int,
        use_cache: bool = True,
    ) -> list[list[int]]:
        """Reports (token ids, eos excluded) for (B, 1, H, W) images in [0, 1]; see
        :func:`generate_report`."""
        return generate_report(self, images, prompt_ids, max_new_tokens, use_cache)
