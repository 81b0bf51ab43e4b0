"""The per-GPU memory estimate, the activation-checkpointing switch, DDP's unused-parameter
rule and FSDP's mixed-precision policy."""

from __future__ import annotations

import torch

from unixlib.data.packing import SpecialTokens, generation_plan, pack
from unixlib.model.config import preset
from unixlib.model.unix import UniX, parameter_counts
from unixlib.train.config import TrainConfig
from unixlib.train.fsdp import mixed_precision_policy
from unixlib.train.memory import (
    GB,
    PACK_BLOCK,
    _per_token,
    batch_tokens,
    estimate_memory,
    sequence_lengths,
)
from unixlib.train.setup import ddp_needs_unused_parameters, set_activation_checkpointing

PAPER = preset("paper")


def _stage(stage: int, **kw) -> TrainConfig:
    size = {1: 384, 2: 256, 3: 512}[stage]
    return TrainConfig(stage=stage, preset="paper", image_size=size, max_report_tokens=512, **kw)


def test_parts_follow_the_counts_and_sharding() -> None:
    cfg = _stage(2, batch_size=1)
    one = estimate_memory(PAPER, cfg, 1)
    eight = estimate_memory(PAPER, cfg, 8, "fsdp")
    counts = parameter_counts(PAPER)
    assert one.parameters == 4 * counts["parameters_total"]
    gen = counts["gen_branch"] + counts["generation_io"] + counts["repa_projector"]
    assert one.gradients == 4 * gen and one.optimizer == 8 * gen  # AdamW: two fp32 moments
    assert abs(eight.gradients - one.gradients / 8) < 1 and eight.optimizer < one.optimizer / 7.9
    assert eight.parameters > one.parameters / 8  # the VAE and the frozen tower stay whole
    assert one.gathered == 0 and eight.gathered > 0
    assert sequence_lengths(PAPER, cfg) == {"gen": 4 + 512 + 256}


def test_checkpointing_and_micro_batch_scale_activations() -> None:
    plain = estimate_memory(PAPER, _stage(1, batch_size=32), 8, "fsdp")
    ckpt = estimate_memory(
        PAPER, _stage(1, batch_size=32, activation_checkpointing=True), 8, "fsdp"
    )
    half = estimate_memory(PAPER, _stage(1, batch_size=16), 8, "fsdp")
    assert plain.total > 80 * GB  # the finding: 32 per GPU in stage 1 does not fit
    assert ckpt.activations < plain.activations / 3
    assert abs(half.activations - plain.activations / 2) < 1e6
    # stage 1, one sequence, no checkpointing: 24 blocks x tokens x bytes per token, + tower,
    # logits, and the padded path's (1, 1, L, L) boolean mask
    one = estimate_memory(PAPER, _stage(1, batch_size=1, packing=False), 1)
    tokens = sequence_lengths(PAPER, _stage(1))["und"]
    llm = 24 * tokens * _per_token(2048, 5632)
    tower = 576 * 24 * _per_token(1024, 4096)
    assert one.activations == llm + tower + 513 * 102400 * 10 + tokens**2
    # packed: no mask, the sequence padded to flex_attention's 128-token block
    packed = estimate_memory(PAPER, _stage(1, batch_size=1), 1)
    pad = -tokens % PACK_BLOCK
    assert packed.tokens.pad == pad and packed.tokens.layout == f"packed {tokens + pad}"
    assert packed.activations == llm + tower + 513 * 102400 * 10 + 24 * pad * 12 * 2048


def test_frozen_branch_keeps_only_keys_and_values() -> None:
    cfg = _stage(3, batch_size=1, packing=False)
    s3 = estimate_memory(preset("paper", image_size_gen=512), cfg, 1)
    report_tokens = 4 + 512
    expected = 24 * (1024 * _per_token(2048, 5632) + report_tokens * 4 * 2048)
    assert s3.activations == expected + (1024 + report_tokens) ** 2


def test_packing_drops_the_padding_between_task_lengths() -> None:
    """A joint batch (und rows of 1,117 tokens, gen rows of 772): padded rows all reach 1,117
    and carry a (B, 1, L, L) mask; packed holds the real tokens plus < 128."""
    kw = {"batch_size": 8, "task_ratio": (1, 1), "trainable": ("und", "gen")}
    padded = estimate_memory(PAPER, _stage(2, packing=False, **kw), 1)
    packed = estimate_memory(PAPER, _stage(2, **kw), 1)
    und, gen = sequence_lengths(PAPER, _stage(2, **kw)).values()
    assert padded.tokens.pad == 4 * (und - gen) and padded.tokens.mask_bytes == 8 * und**2
    assert packed.tokens.und == padded.tokens.und and packed.tokens.gen == padded.tokens.gen
    assert 0 <= packed.tokens.pad < PACK_BLOCK and packed.tokens.mask_bytes == 0
    assert packed.activations < padded.activations
    assert "packed" in str(packed) and "padded 8 x" in str(padded)


def test_max_tokens_bounds_the_packed_sequence() -> None:
    small = estimate_memory(PAPER, _stage(2, batch_size=32, max_tokens=4096), 1)
    large = estimate_memory(PAPER, _stage(2, batch_size=64, max_tokens=4096), 1)
    assert small.activations == large.activations
    assert small.tokens.und + small.tokens.gen == 4096 and small.tokens.layout == "packed 4096"
    whole = estimate_memory(PAPER, _stage(2, batch_size=2, max_tokens=1_000_000), 1)
    assert whole.tokens.und + whole.tokens.gen == 2 * (4 + 512 + 256)  # the budget is a cap


def test_batch_tokens_count_either_layout() -> None:
    cfg = preset("tiny")
    special = SpecialTokens.from_mapping(cfg.special_ids())
    plans = [
        generation_plan(list(range(5, 5 + n)), (8, 8), special, i) for i, n in enumerate((3, 9))
    ]
    padded = batch_tokens(pack(plans, cfg.pad_id))
    packed = batch_tokens(pack(plans, cfg.pad_id, 128, packed=True))
    assert padded.gen == packed.gen == 128 and padded.und == packed.und == (2 + 3) + (2 + 9)
    assert padded.pad == 6 and padded.mask_bytes == 2 * 75**2 and padded.layout == "padded 2 x 75"
    assert packed.pad == 256 - 144 and packed.mask_bytes == 0 and packed.layout == "packed 256"


def test_activation_checkpointing_switch_gives_the_same_gradients() -> None:
    torch.manual_seed(0)
    from tests.test_unix import make_model, mixed_inputs

    grads = []
    for on in (False, True):
        model = make_model()
        cfg = TrainConfig(stage=1, activation_checkpointing=on)
        set_activation_checkpointing(model, cfg)
        assert model.language_model.gradient_checkpointing is on
        assert model.vision_tower.is_activation_checkpointing is on
        model.train()
        batch, pixels, latents = mixed_inputs()
        kw = {"timesteps": torch.tensor([0.5, 0.5]), "noise": torch.zeros_like(latents)}
        model(batch, pixels, latents, **kw)["loss"].backward()
        grads.append(model.language_model.layers[0].und.q_proj.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])


def test_ddp_unused_parameters_only_where_a_stage_needs_them() -> None:
    assert not ddp_needs_unused_parameters(TrainConfig(stage=1))
    assert not ddp_needs_unused_parameters(TrainConfig(stage=2))  # REPA trains the projector
    assert ddp_needs_unused_parameters(TrainConfig(stage=3))  # REPA projector idle
    assert ddp_needs_unused_parameters(TrainConfig(stage=2, repa_weight=0.0))
    joint_gen_only = TrainConfig(stage=3, trainable=("und", "gen"), task_ratio=(0, 1))
    assert ddp_needs_unused_parameters(joint_gen_only)  # lm_head gets nothing
    assert ddp_needs_unused_parameters(TrainConfig(stage=1), mot=False)


def test_fsdp_mixed_precision_policy() -> None:
    bf16 = mixed_precision_policy(True)
    assert bf16.param_dtype == torch.bfloat16 and bf16.reduce_dtype == torch.bfloat16
    assert not bf16.cast_forward_inputs
    assert mixed_precision_policy(False).param_dtype is None


def test_paper_model_is_counted_not_allocated() -> None:
    with torch.device("meta"):
        model = UniX(PAPER)
    assert all(p.is_meta for p in model.parameters())
