"""Image generation: Euler flow sampling with interval CFG and a reused report context.

With ``reuse_context=True`` the contexts ``[bos, report..., boi]`` (conditional rows) and
``[bos, boi]`` (unconditional rows, the CFG baseline) are run through the understanding branch
ONCE, without gradient, into a :class:`KVCache`. At every denoising step only the latent tokens
go through the generation branch, in one forward for conditional and unconditional rows
together; they attend to their row's cached context (right padding masked out) and to each
other. This is exact, not an approximation: in the packed sequence no context token attends to
the latent block (packing.py), so the context's keys and values do not depend on the noise.
``reuse_context=False`` re-packs and recomputes everything each step (the reference). The
official sequence layout (``config.sequence_layout``) puts ``boi``/``eoi`` inside the noisy
block, where they change with the noise, so it always runs the reference path (at 512 px the
context adds about a tenth to the block's 1,026 tokens).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from unixlib.data.packing import PAD_CODE, SamplePlan, SpecialTokens, generation_plan, pack
from unixlib.model.flow import (
    cfg_active,
    euler_sample,
    guided_velocity,
    patchify,
    sampling_timesteps,
    unpatchify,
)
from unixlib.model.mot import KVCache
from unixlib.model.routing import Routing

if TYPE_CHECKING:
    from unixlib.model.unix import UniX


@torch.no_grad()
def generate_image(
    model: UniX,
    context_ids: list[list[int]],
    size: int | None = None,
    steps: int | None = None,
    cfg_scale: float | None = None,
    cfg_interval: tuple[float, float] | None = None,
    shift: float | None = None,
    seed: int = 0,
    reuse_context: bool = True,
    decode: bool = True,
    rgb: bool = False,
) -> Tensor:
    """Sample one image per report.

    Args:
        context_ids: B reports as token ids (no specials; ``[]`` = unconditional).
        size: output side in px (default ``config.image_size_gen``).
        steps, cfg_scale, cfg_interval, shift: sampler settings; ``None`` takes the model
            config's (``sample_steps``, ``cfg_scale``, ``cfg_interval``, ``sample_shift``: the
            one home of these defaults, saved with the checkpoint).
        seed: the initial noise is drawn on the CPU from this seed, so it is device-independent.
        reuse_context: compute the context's keys/values once (True) or every step (False).
        decode: return pixels (B, 1, size, size) in [0, 1]; False returns the normalised
            latents (B, C, size/f, size/f).
        rgb: an RGB decoder's three channels, (B, 3, size, size), instead of their mean.
    """
    cfg = model.config
    size = size or cfg.image_size_gen
    steps = cfg.sample_steps if steps is None else steps
    scale = cfg.cfg_scale if cfg_scale is None else cfg_scale
    interval = tuple(cfg_interval or cfg.cfg_interval)
    shift = cfg.sample_shift if shift is None else shift
    g, p = cfg.latent_grid(size), cfg.latent_patch_size
    device = model.latent_pos_embed.device
    special = SpecialTokens.from_mapping(cfg.special_ids())
    b = len(context_ids)
    layout = cfg.sequence_layout
    plans = [
        generation_plan(ids, (g, g), special, i, loss=False, layout=layout)
        for i, ids in enumerate(context_ids)
    ]
    use_cfg = scale != 1.0
    if use_cfg:  # unconditional rows after the conditional ones, one forward for both
        plans += [
            generation_plan([], (g, g), special, i, loss=False, layout=layout) for i in range(b)
        ]
    reuse_context = reuse_context and layout == "ours"
    rows = len(plans)
    gen = torch.Generator().manual_seed(seed)
    x1 = torch.randn(b, cfg.latent_channels, g * p, g * p, generator=gen).to(device)

    step_fn = _cached_steps(model, plans) if reuse_context else _uncached_steps(model, plans)

    def velocity(x: Tensor, t: Tensor) -> Tensor:
        # Outside the guidance interval only the conditional rows run (their velocity is the
        # answer there), which saves the unconditional half of those steps.
        guided = use_cfg and cfg_active(t, scale, interval)
        n = rows if guided else b
        tokens = patchify(x, p)  # (B, T, C p p)
        tokens = tokens.repeat(n // b, 1, 1)  # the same x_t for cond and uncond rows
        t_rows = t.to(device, torch.float32).expand(n)
        v = step_fn(model.embed_latents(tokens, t_rows, (g, g)))  # (n, T, C p p)
        v = unpatchify(v.float(), p, g * p, g * p)
        if not guided:
            return v
        return guided_velocity(v[:b], v[b:], t, scale, interval, cfg.cfg_renorm)

    latents = euler_sample(velocity, x1, sampling_timesteps(steps, shift).to(device))
    if not decode:
        return latents
    return ((model.vae.decode(latents, rgb=rgb) + 1) / 2).clamp(0, 1)


def _cached_steps(model: UniX, plans: list[SamplePlan]):
    """A step function (rows, T, D) latent embeddings -> (rows, T, C p p) velocities that
    reuses the contexts' keys/values, computed here once."""
    cfg = model.config
    device = model.latent_pos_embed.device
    contexts = [SamplePlan(p.splits[:-1], p.sample_id, p.task) for p in plans]
    batch = pack(contexts, cfg.pad_id).to(device)
    rows, ctx_len = batch.input_ids.shape
    n_tok = plans[0].splits[-1].n_tokens
    cache = KVCache(cfg.num_layers, ctx_len + n_tok)
    h, routing = model.embed(batch, None, None)
    h, routing = model.condition_context(h, routing, batch.position_ids, batch.attention_mask)
    model.run(h, routing, batch.position_ids, batch.attention_mask, cache)  # commit context
    # Each latent block sits one position after its context; it sees the context's real
    # tokens and the whole block.
    position_ids = batch.lengths.to(device)[:, None].expand(rows, n_tok)  # (rows, T)
    key_valid = torch.cat(
        [batch.token_kind != PAD_CODE, torch.ones(rows, n_tok, dtype=torch.bool, device=device)], 1
    )
    mask = key_valid[:, None, None, :].expand(rows, 1, n_tok, ctx_len + n_tok)
    routings: dict[int, Routing] = {}

    def step(embeds: Tensor) -> Tensor:
        n = embeds.shape[0]  # all rows, or the first n (the conditional ones)
        view = cache if n == rows else cache.rows(n)
        if n not in routings:
            routings[n] = Routing.dense(n, n_tok, "gen", device)
        routing = routings[n]
        h, _ = model.run(
            embeds.flatten(0, 1), routing, position_ids[:n], mask[:n], view, commit=False
        )
        return model.llm2vae(h).unflatten(0, (n, n_tok))

    return step


def _uncached_steps(model: UniX, plans: list[SamplePlan]):
    """The reference step function: the whole packed sequence of the first n rows every step."""
    batches = {}

    def step(embeds: Tensor) -> Tensor:
        n = embeds.shape[0]
        if n not in batches:
            batches[n] = pack(plans[:n], model.config.pad_id).to(model.latent_pos_embed.device)
        batch = batches[n]
        h, routing = model.embed(batch, None, embeds.flatten(0, 1))
        n_und = routing.n_und
        h, routing = model.condition_context(h, routing, batch.position_ids, batch.attention_mask)
        h, _ = model.run(h, routing, batch.position_ids, batch.attention_mask)
        return model.llm2vae(h[n_und:]).unflatten(0, (n, -1))

    return step


class ImageSampling:
    """Image generation as a method of :class:`~unixlib.model.unix.UniX` (a mixin)."""

    def generate_image(
        self,
        context_ids: list[list[int]],
        size: int | None = None,
        steps: int | None = None,
        cfg_scale: float | None = None,
        cfg_interval: tuple[float, float] | None = None,
        shift: float | None = None,
        seed: int = 0,
        reuse_context: bool = True,
        decode: bool = True,
        rgb: bool = False,
    ) -> Tensor:
        """Images (B, 1, size, size) in [0, 1] from B reports as token ids (``[]`` =
        unconditional), or the normalised latents with ``decode=False``, or (B, 3, ...) with
        ``rgb``. ``None`` settings take the model config's sampler defaults; see
        :func:`generate_image`."""
        return generate_image(
            self,
            context_ids,
            size=size,
            steps=steps,
            cfg_scale=cfg_scale,
            cfg_interval=cfg_interval,
            shift=shift,
            seed=seed,
            reuse_context=reuse_context,
            decode=decode,
            rgb=rgb,
        )
