"""The packed layout of ``pack(..., packed=True)`` and its attention masks: a hand-built batch
checked token by token, and every mask the kernels use (per-sample SDPA masks, flex's
mask_mod) equal to the dense reference mask, pair by pair, for random plans."""

from __future__ import annotations

import random

import pytest
import torch
from packed_helpers import SPECIAL, TASKS, random_plans

from unixlib.data.packing import (
    IGNORE_INDEX,
    dense_mask,
    generation_plan,
    pack,
    padding_fraction,
    understanding_plan,
)
from unixlib.model.attention import (
    BatchAttention,
    attention_kernel,
    materialise_mask_mod,
    packed_mask_mod,
    sample_masks,
)

T, V, A = 1, 2, 3  # TEXT_CODE, VIT_CODE, VAE_CODE; 0 = padding


def _three_samples():
    """und (ours), gen (official, wrapped block), uncond (official): 10 + 7 + 4 tokens."""
    return [
        understanding_plan([10, 11], [20, 21], (1, 2), SPECIAL, 7, layout="ours"),
        generation_plan([30], (1, 2), SPECIAL, 8, layout="official"),
        generation_plan([], (1, 2), SPECIAL, 9, layout="official"),
    ]


def test_hand_built_packed_batch_token_by_token() -> None:
    b = pack(_three_samples(), pad_id=0, packed=True)
    assert b.packed and b.attention_mask is None and b.shape == (1, 21)
    # und: [bos boi] vit vit [eoi p p] [r r eos] | gen: [bos r eos] [boi a a eoi] | [boi a a eoi]
    und, gen, uncond = [1, 3, 0, 0, 4, 10, 11, 20, 21, 2], [1, 30, 2, 3, 0, 0, 4], [3, 0, 0, 4]
    assert b.input_ids[0].tolist() == [*und, *gen, *uncond]
    und, gen, uncond = [0, 1, 2, 2, 3, 4, 5, 6, 7, 8], [0, 1, 2, 3, 3, 3, 3], [0, 0, 0, 0]
    assert b.position_ids[0].tolist() == [*und, *gen, *uncond]  # restart per sample
    und, gen, uncond = [T, T, V, V, T, T, T, T, T, T], [T, T, T, T, A, A, T], [T, A, A, T]
    assert b.token_kind[0].tolist() == [*und, *gen, *uncond]  # wrap tokens are text
    labels = [IGNORE_INDEX] * 21
    labels[6:9] = [20, 21, 2]  # each answer token is the target of the position before it
    assert b.label_ids[0].tolist() == labels
    assert b.ce_index.tolist() == [6, 7, 8] and b.ce_targets.tolist() == [20, 21, 2]
    assert b.flow_mask[0].nonzero().squeeze(1).tolist() == [14, 15, 18, 19]
    assert b.doc_ids[0].tolist() == [0] * 10 + [1] * 7 + [2] * 4
    assert b.segments == [(0, 10), (10, 17), (17, 21)]
    assert b.vit_index.tolist() == [2, 3] and b.vae_index.tolist() == [14, 15, 18, 19]
    assert b.gen_index.tolist() == [14, 15, 18, 19]
    assert b.vit_rows.tolist() == [0] and b.vae_rows.tolist() == [0, 0]
    assert b.vae_loss.tolist() == [True, True] and b.vae_grids == [(1, 2), (1, 2)]
    assert b.sample_ids.tolist() == [7, 8, 9] and b.tasks == ["und", "gen", "uncond"]
    assert b.lengths.tolist() == [21] and padding_fraction(b) == 0.0
    assert attention_kernel(b, "cpu") == "sdpa-per-sample"
    assert attention_kernel(b, "cuda") == "flex"


def test_packed_tail_padding_and_the_padded_layout_fields() -> None:
    b = pack(_three_samples(), pad_id=0, pad_to_multiple_of=8, packed=True)
    assert b.shape == (1, 24) and b.lengths.tolist() == [21]
    assert b.doc_ids[0, 21:].tolist() == [-1, -1, -1] and b.token_kind[0, 21:].tolist() == [0] * 3
    assert padding_fraction(b) == pytest.approx(3 / 24)
    mask = dense_mask(b)[0, 0]
    assert mask[21:].tolist() == torch.eye(24, dtype=torch.bool)[21:].tolist()  # only itself
    assert not mask[:21, 21:].any()  # nobody attends the tail

    p = pack(_three_samples(), pad_id=0)
    assert not p.packed and p.shape == (3, 10) and attention_kernel(p, "cuda") == "sdpa-dense"
    assert p.doc_ids.tolist() == [[0] * 10, [1] * 7 + [-1] * 3, [2] * 4 + [-1] * 6]
    assert p.segments == [(0, 10), (0, 7), (0, 4)]
    assert p.vae_rows.tolist() == [1, 2] and padding_fraction(p) == pytest.approx(9 / 30)
    assert dense_mask(p) is p.attention_mask
    with pytest.raises(ValueError, match="pad_to_multiple_of"):
        pack(_three_samples(), pad_id=0, pad_to_multiple_of=0, packed=True)


def _cases():
    """(seed, layout, tasks): every task alone and mixed, both layouts (official wraps the
    image blocks), with and without a padded tail."""
    for layout in ("ours", "official"):
        for tasks in ((t,) for t in TASKS):
            yield 0, layout, tasks
        for seed in range(3):
            yield seed, layout, TASKS


@pytest.mark.parametrize(("seed", "layout", "tasks"), list(_cases()))
@pytest.mark.parametrize("multiple", [1, 16])
def test_packed_masks_equal_the_dense_reference(seed, layout, tasks, multiple) -> None:
    plans = random_plans(random.Random(seed), 6, layout, tasks=tasks)
    padded, packed = pack(plans, 0), pack(plans, 0, pad_to_multiple_of=multiple, packed=True)
    ref = dense_mask(packed)[0, 0]  # (T, T)
    length = packed.shape[1]
    # 1. the packed reference is the padded one's, sample by sample, and nothing across
    frame = torch.eye(length, dtype=torch.bool)  # padding attends only itself
    for i, (start, end) in enumerate(packed.segments):
        n = end - start
        frame[start:end, start:end] = padded.attention_mask[i, 0, :n, :n]
    assert torch.equal(ref, frame)
    # 2. the CPU kernel's per-sample masks, embedded in the (T, T) frame
    per_sample = torch.eye(length, dtype=torch.bool)
    for (start, end), m in zip(packed.segments, sample_masks(packed), strict=True):
        per_sample[start:end, start:end] = m[0, 0]
    assert torch.equal(per_sample, ref)
    # 3. flex's mask_mod evaluated on every (query, key) pair
    mod = packed_mask_mod(
        packed.doc_ids[0], packed.split_ids[0], packed.in_block[0], packed.noisy[0]
    )
    assert torch.equal(materialise_mask_mod(mod, length), ref)


@pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")
def test_flex_block_mask_gives_the_reference_attention_forward() -> None:
    """The flex kernel's BlockMask with eager flex_attention (forward only: torch has no flex
    backward on CPU) equals SDPA with the dense reference mask."""
    from torch.nn.attention.flex_attention import flex_attention

    plans = random_plans(random.Random(5), 5, "official")
    b = pack(plans, 0, pad_to_multiple_of=16, packed=True)
    attn = BatchAttention(b, kernel="flex")
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 2, b.shape[1], 8, generator=g) for _ in range(3))
    out = flex_attention(q, k, v, block_mask=attn.block_mask)
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=dense_mask(b))
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=1e-5)
    per_sample = BatchAttention(b)(q, k, v)  # the CPU kernel; its padded tail is 0 (v = 0 there)
    real = b.doc_ids[0] >= 0
    torch.testing.assert_close(per_sample[:, :, real], ref[:, :, real], atol=1e-6, rtol=1e-5)


def test_kernel_and_layout_mismatches_are_errors() -> None:
    with pytest.raises(ValueError, match="needs a packed batch"):
        BatchAttention(pack(_three_samples(), 0), kernel="sdpa-per-sample")
    with pytest.raises(ValueError, match="needs a padded batch"):
        BatchAttention(pack(_three_samples(), 0, packed=True), kernel="sdpa-dense")
    with pytest.raises(ValueError, match="unknown attention kernel"):
        BatchAttention(pack(_three_samples(), 0, packed=True), kernel="fast")
