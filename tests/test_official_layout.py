"""The official sequence layout: the same tokens, positions and attention as the official
inference code (ZrH42/UniX ``modeling/unix/unix.py``), one example per task.

``_official_*`` below restate what the official ``prepare_vit_images``, ``prepare_prompts``,
``prepare_start_tokens`` and ``prepare_vae_latent`` build (an image block of ``start_of_image``,
the image tokens and ``end_of_image``, all at the current RoPE position, which then advances by
one; a prompt as ``[bos] + tokenizer.encode(prompt) + [eos]`` at consecutive positions; decoding
starting from a ``bos``): a list of (token id or image marker, position) and, per token, whether
its segment attends causally (text) or fully (an image block).
"""

from __future__ import annotations

import torch

from unixlib.data.packing import (
    TEXT_CODE,
    VAE_CODE,
    VIT_CODE,
    SpecialTokens,
    generation_plan,
    pack,
    understanding_plan,
)
from unixlib.data.text.tokenizer import JANUS_SPECIAL_IDS

SP = SpecialTokens.from_mapping(JANUS_SPECIAL_IDS)
BOS, EOS, BOI, EOI = SP.bos, SP.eos, SP.boi, SP.eoi
IMG = -1  # an image token (ViT or latent)


def _official_image_block(n: int, rope: int) -> tuple[list[tuple[int, int]], int]:
    """prepare_vit_images / prepare_vae_latent: [boi, n image tokens, eoi] at one position."""
    return [(t, rope) for t in [BOI] + [IMG] * n + [EOI]], rope + 1


def _official_prompt(ids: list[int], rope: int) -> tuple[list[tuple[int, int]], int]:
    """prepare_prompts: [bos] + tokenizer.encode(prompt) + [eos] at consecutive positions."""
    text = [BOS, *ids, EOS]
    return [(t, rope + i) for i, t in enumerate(text)], rope + len(text)


def _official_understanding(n_vit: int, prompt: list[int]) -> list[tuple[int, int]]:
    """interleave_inference([image, prompt], understanding_output=True) + prepare_start_tokens."""
    block, rope = _official_image_block(n_vit, 0)
    text, rope = _official_prompt(prompt, rope)
    return block + text + [(BOS, rope)]


def _official_generation(report: list[int], n_lat: int) -> list[tuple[int, int]]:
    """interleave_inference([report]) -> prepare_vae_latent on the report's context."""
    text, rope = _official_prompt(report, 0) if report else ([], 0)
    block, _ = _official_image_block(n_lat, rope)
    return text + block


def _ours(plan) -> list[tuple[int, int]]:
    batch = pack([plan], pad_id=SP.pad)
    kind, ids, pos = batch.token_kind[0], batch.input_ids[0], batch.position_ids[0]
    return [
        (IMG if int(k) in (VIT_CODE, VAE_CODE) else int(i), int(p))
        for k, i, p in zip(kind, ids, pos, strict=True)
    ]


def test_understanding_matches_the_official_prefix() -> None:
    prompt = [100000, 5, 6, 7]  # what tokenizer.encode gives (a Janus tokenizer adds a bos)
    plan = understanding_plan(prompt, None, (2, 3), SP, layout="official")
    assert _ours(plan) == _official_understanding(6, prompt)
    mask = pack([plan], SP.pad).attention_mask[0, 0]
    assert mask[:8, :8].all()  # boi, 6 ViT tokens, eoi: one full block (is_causal=False)
    assert not mask[8, 9] and mask[9, 8] and mask[8, :8].all()  # the prompt is causal
    assert pack([plan], SP.pad).token_kind[0, [0, 7]].tolist() == [TEXT_CODE] * 2


def test_generation_matches_the_official_sequence() -> None:
    report = [11, 12, 13]
    plan = generation_plan(report, (2, 2), SP, loss=False, layout="official")
    assert _ours(plan) == _official_generation(report, 4)
    batch = pack([plan], SP.pad)
    mask = batch.attention_mask[0, 0]
    assert mask[5:, :].all()  # the block sees the context and itself in full
    assert not mask[:5, 5:].any()  # the context never sees the block
    assert batch.flow_mask[0].tolist() == [False] * 6 + [False] * 4 + [False]  # loss=False
    trained = pack([generation_plan(report, (2, 2), SP, layout="official")], SP.pad)
    assert trained.flow_mask[0].nonzero().squeeze(1).tolist() == [6, 7, 8, 9]  # not boi/eoi
    assert trained.vae_index.tolist() == [6, 7, 8, 9]
    assert sorted(trained.und_index.tolist()) == [0, 1, 2, 3, 4, 5, 10]


def test_unconditional_matches_the_official_empty_context() -> None:
    plan = generation_plan([], (2, 2), SP, loss=False, layout="official")
    assert _ours(plan) == _official_generation([], 4)  # [boi, 4 latents, eoi] all at 0
    assert plan.task == "uncond"


def test_ours_layout_is_unchanged() -> None:
    plan = understanding_plan([9], [7], (1, 2), SP)
    assert _ours(plan) == [
        (BOS, 0),
        (BOI, 1),
        (IMG, 2),
        (IMG, 2),
        (EOI, 3),
        (9, 4),
        (7, 5),
        (EOS, 6),
    ]


def test_model_decodes_and_samples_in_the_official_layout() -> None:
    from unixlib.model.config import preset
    from unixlib.model.unix import UniX

    torch.manual_seed(0)
    model = UniX(preset("tiny", sequence_layout="official", sample_steps=3)).eval()
    images = torch.rand(2, 1, 64, 64)
    reports = model.generate_report(images, [5, 6], max_new_tokens=3)
    cached = model.generate_report(images, [5, 6], max_new_tokens=3, use_cache=False)
    assert reports == cached  # the KV-cache decoder agrees with full recomputation
    out = model.generate_image([[5, 6, 7], []], size=64, steps=3)
    assert out.shape == (2, 1, 64, 64) and torch.isfinite(out).all()
