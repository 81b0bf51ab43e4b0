"""Sequence plans -> packed batch: masks, positions, index sets, CE targets (hand-written)."""

from __future__ import annotations

import random

import pytest
import torch

from unixlib.data.packing import (
    IGNORE_INDEX,
    TEXT,
    VAE,
    VIT,
    SamplePlan,
    SpecialTokens,
    Split,
    generation_plan,
    pack,
    text_dropout,
    understanding_plan,
)

SP = SpecialTokens(bos=1, eos=2, pad=0, boi=3, eoi=4)


def bool_matrix(rows: list[str]) -> torch.Tensor:
    return torch.tensor([[c == "1" for c in r] for r in rows])


@pytest.fixture
def mixed():
    """Understanding + generation + unconditional in one batch (L = 8)."""
    plans = [
        understanding_plan([9], [7], (1, 2), SP, sample_id=10),  # bos boi v v eoi 9 | 7 eos
        generation_plan([7], (1, 2), SP, sample_id=11),  # bos 7 boi | z z
        generation_plan([], (1, 2), SP, sample_id=12),  # bos boi | z z
    ]
    return pack(plans, SP.pad)


def test_mixed_batch_masks_are_the_paper_rules(mixed):
    und = bool_matrix(
        [
            "10000000",
            "11000000",
            "11110000",  # vit block: full within itself, sees [bos, boi]
            "11110000",
            "11111000",
            "11111100",
            "11111110",
            "11111111",
        ]
    )
    gen = bool_matrix(
        [
            "10000000",
            "11000000",
            "11100000",
            "11111000",  # noisy block: sees the context and itself
            "11111000",
            "00000100",  # padding: only itself
            "00000010",
            "00000001",
        ]
    )
    uncond = bool_matrix(
        [
            "10000000",
            "11000000",
            "11110000",
            "11110000",
            "00001000",
            "00000100",
            "00000010",
            "00000001",
        ]
    )
    assert mixed.attention_mask.shape == (3, 1, 8, 8)
    assert mixed.attention_mask.dtype == torch.bool
    assert torch.equal(mixed.attention_mask[0, 0], und)
    assert torch.equal(mixed.attention_mask[1, 0], gen)
    assert torch.equal(mixed.attention_mask[2, 0], uncond)


def test_noisy_block_is_invisible_to_later_text():
    plan = SamplePlan((Split(TEXT, (1,)), Split(VAE, grid=(1, 2)), Split(TEXT, (5, 6))))
    batch = pack([plan], pad_id=0)
    expected = bool_matrix(
        [
            "10000",
            "11100",
            "11100",
            "10010",  # text after the noisy block does not see it
            "10011",
        ]
    )
    assert torch.equal(batch.attention_mask[0, 0], expected)
    assert batch.position_ids[0].tolist() == [0, 1, 1, 2, 3]


def test_one_position_per_image_block(mixed):
    assert mixed.position_ids.tolist() == [
        [0, 1, 2, 2, 3, 4, 5, 6],
        [0, 1, 2, 3, 3, 0, 0, 0],
        [0, 1, 2, 2, 0, 0, 0, 0],
    ]


def test_index_sets_and_targets(mixed):
    L = 8
    assert mixed.input_ids[0].tolist() == [1, 3, 0, 0, 4, 9, 7, 2]
    assert mixed.input_ids[1].tolist() == [1, 7, 3, 0, 0, 0, 0, 0]
    assert mixed.vit_index.tolist() == [2, 3]
    assert mixed.vae_index.tolist() == [L + 3, L + 4, 2 * L + 2, 2 * L + 3]
    assert torch.equal(mixed.gen_index, mixed.vae_index)
    assert mixed.und_index.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, L, L + 1, L + 2, 2 * L, 2 * L + 1]
    assert mixed.text_index.numel() == 6 + 3 + 2
    assert mixed.vit_grids == [(1, 2)] and mixed.vae_grids == [(1, 2), (1, 2)]
    assert mixed.vit_rows.tolist() == [0] and mixed.vae_rows.tolist() == [1, 2]
    # CE: the position before each report token / eos predicts it; nothing else has a label
    assert mixed.ce_index.tolist() == [5, 6]
    assert mixed.ce_targets.tolist() == [7, 2]
    assert mixed.label_ids[0].tolist() == [IGNORE_INDEX] * 5 + [7, 2, IGNORE_INDEX]
    assert int(mixed.ce_mask.sum()) == 2
    assert mixed.flow_mask.flatten().nonzero().squeeze(1).tolist() == mixed.vae_index.tolist()
    assert mixed.vae_loss.tolist() == [True, True]
    assert mixed.lengths.tolist() == [8, 5, 4]
    assert mixed.sample_ids.tolist() == [10, 11, 12]
    assert mixed.tasks == ["und", "gen", "uncond"]


def test_every_query_row_attends_somewhere(mixed):
    assert bool(mixed.attention_mask.any(-1).all())


def test_pad_to_multiple_and_pad_rows():
    batch = pack([generation_plan([5, 6], (2, 2), SP)], SP.pad, pad_to_multiple_of=16)
    assert batch.input_ids.shape == (1, 16)
    assert batch.lengths.tolist() == [8]
    assert not bool(batch.attention_mask[0, 0, :8, 8:].any())


def test_understanding_prefix_has_no_answer():
    plan = understanding_plan([9, 9], None, (2, 2), SP)
    assert [s.kind for s in plan.splits] == [TEXT, VIT, TEXT]
    assert plan.length == 2 + 4 + 3
    assert pack([plan], SP.pad).ce_index.numel() == 0


def test_bad_plans_are_rejected():
    with pytest.raises(ValueError, match="no understanding token before"):
        pack([SamplePlan((Split(TEXT, (5,), loss=True),))], 0)
    with pytest.raises(ValueError, match="no understanding token before"):
        pack([SamplePlan((Split(VAE, grid=(1, 1)), Split(TEXT, (5,), loss=True)))], 0)
    with pytest.raises(ValueError, match="kind"):
        Split("audio", (1,))
    with pytest.raises(ValueError, match="no loss"):
        Split(VIT, grid=(2, 2), loss=True)
    with pytest.raises(ValueError, match="token_ids and no grid"):
        Split(TEXT, ())
    with pytest.raises(ValueError, match="needs a grid"):
        Split(VAE, (1,), grid=(1, 1))
    with pytest.raises(ValueError, match="no plans"):
        pack([], 0)
    with pytest.raises(KeyError, match="eoi"):
        SpecialTokens.from_mapping({"bos": 1, "eos": 2, "pad": 0, "boi": 3})


def test_text_dropout_rate_and_determinism():
    report = [5, 6, 7]
    draws = [text_dropout(report, 0.1, random.Random(i)) for i in range(2000)]
    dropped = sum(d == [] for d in draws)
    assert 140 < dropped < 260  # binomial(2000, 0.1): mean 200, sd 13
    assert all(d in ([], report) for d in draws)
    rng_a, rng_b = random.Random(3), random.Random(3)
    assert [text_dropout(report, 0.5, rng_a) for _ in range(20)] == [
        text_dropout(report, 0.5, rng_b) for _ in range(20)
    ]
    assert text_dropout(report, 0.0, random.Random(0)) == report
    with pytest.raises(ValueError):
        text_dropout(report, 1.0, random.Random(0))


def test_to_moves_tensors_and_keeps_lists(mixed):
    moved = mixed.to("cpu")
    assert torch.equal(moved.attention_mask, mixed.attention_mask)
    assert moved.vae_grids == mixed.vae_grids
