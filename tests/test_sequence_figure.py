"""Fig. 2's data (unixlib.experiments.sequence_figure) and drawing (unixlib.viz.fig2): the packed
samples obey the paper's mask rules, their splits tile the row, and the stage panel follows
the stage flags of train/config.py."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from train_helpers import data_run

from unixlib.data.datasets import ReportImageDataset
from unixlib.data.packing import SpecialTokens
from unixlib.data.processed import load_processed
from unixlib.experiments.sequence_figure import (
    FROZEN,
    GROUP_ROWS,
    PAD,
    REPA_ROW,
    TRAINED,
    UNUSED,
    VAE_ROW,
    TaskSequence,
    example_packed_batches,
    trainable_groups_by_stage,
)
from unixlib.train.config import STAGE_DEFAULTS
from unixlib.viz import fig2

SP = SpecialTokens(bos=1, eos=2, pad=0, boi=3, eoi=4)
VIT_GRID, LATENT_GRID = (2, 3), (4, 4)


@dataclass
class Ex:
    prompt_ids: list[int]
    report_ids: list[int]


@pytest.fixture(scope="module")
def plans() -> dict[str, TaskSequence]:
    # The first sample is the shorter one, so its row ends in padding (und and gen).
    examples = [Ex([10, 11], [20, 21, 22]), Ex([10, 11, 12], [20, 21, 22, 23, 24, 25])]
    return example_packed_batches(examples, VIT_GRID, LATENT_GRID, SP)


def _block(seq: TaskSequence, kind: str) -> np.ndarray:
    """Token indices of the sample's (single) split of ``kind``."""
    (span,) = [s for s in seq.splits if s.kind == kind]
    return np.arange(span.start, span.start + span.length)


def test_splits_tile_the_row(plans) -> None:
    for seq in plans.values():
        length = seq.attention_mask.shape[0]
        assert seq.attention_mask.shape == (length, length) and seq.attention_mask.dtype == bool
        assert sum(s.length for s in seq.splits) == length == len(seq.token_kind)
        assert [s.start for s in seq.splits] == list(
            np.cumsum([0] + [s.length for s in seq.splits[:-1]])
        )
        for span in seq.splits:  # each split's tokens carry its kind's code
            codes = seq.token_kind[span.start : span.start + span.length]
            assert {seq.kind_names[int(c)] for c in codes} == {span.kind}
    labels = [s.label for s in plans["und"].splits]
    assert labels == ["bos boi", "ViT 2x3", "eoi + prompt", "report + eos", PAD]
    assert [s.label for s in plans["gen"].splits] == [
        "bos + report + boi",
        "noisy latents 4x4",
        PAD,
    ]
    assert [s.label for s in plans["uncond"].splits] == ["bos boi", "noisy latents 4x4"]
    assert [s.loss for s in plans["und"].splits] == [False, False, False, True, False]


def test_latent_count_is_the_grid(plans) -> None:
    for task in ("gen", "uncond"):
        assert len(_block(plans[task], "vae")) == LATENT_GRID[0] * LATENT_GRID[1]
    assert len(_block(plans["und"], "vit")) == VIT_GRID[0] * VIT_GRID[1]
    assert plans["und"].batch_shape == (2, 2 + 6 + 1 + 3 + 7)


def test_text_is_causal_within_a_split(plans) -> None:
    for seq in plans.values():
        for span in (s for s in seq.splits if s.kind == "text"):
            idx = np.arange(span.start, span.start + span.length)
            block = seq.attention_mask[np.ix_(idx, idx)]
            assert np.array_equal(block, np.tril(np.ones_like(block)))


def test_image_blocks_are_full_and_noise_is_private(plans) -> None:
    vit = _block(plans["und"], "vit")
    assert plans["und"].attention_mask[np.ix_(vit, vit)].all()
    for task in ("gen", "uncond"):
        mask, vae = plans[task].attention_mask, _block(plans[task], "vae")
        assert mask[np.ix_(vae, vae)].all()
        others = np.setdiff1d(np.arange(len(mask)), vae)
        assert not mask[np.ix_(others, vae)].any()  # no other token sees the noise
        context = np.arange(vae[0])
        assert mask[np.ix_(vae, context)].all()  # the noise sees the whole context


def test_padding_is_excluded(plans) -> None:
    for task in ("und", "gen"):
        seq = plans[task]
        pad = np.flatnonzero(seq.token_kind == 0)
        assert len(pad) and seq.splits[-1].kind == PAD
        real = np.setdiff1d(np.arange(len(seq.token_kind)), pad)
        assert not seq.attention_mask[np.ix_(real, pad)].any()
        # a pad query sees only itself (no empty softmax row)
        assert np.array_equal(
            seq.attention_mask[np.ix_(pad, np.arange(len(seq.token_kind)))],
            np.eye(len(seq.token_kind), dtype=bool)[pad],
        )


def test_an_image_block_shares_one_rope_position(plans) -> None:
    seq = plans["und"]
    vit = _block(seq, "vit")
    assert len(set(seq.position_ids[vit])) == 1
    after = vit[-1] + 1
    assert seq.position_ids[after] == seq.position_ids[vit[0]] + 1


def test_real_examples_from_a_processed_dataset(tmp_path_factory) -> None:
    run = data_run(tmp_path_factory)
    frame, tokenizer, paths = load_processed(run)
    data = ReportImageDataset(frame, paths.root, tokenizer, "train", 32, "und", 40)
    special = SpecialTokens.from_mapping(tokenizer.special_ids)
    plans = example_packed_batches([data.example(i) for i in range(3)], (2, 2), (4, 4), special)
    report = data.example(0).report_ids
    und = {s.label: s.length for s in plans["und"].splits}
    assert und["report + eos"] == len(report) + 1
    assert {s.label: s.length for s in plans["gen"].splits}["bos + report + boi"] == len(report) + 2


def test_trainable_groups_follow_the_stage_flags() -> None:
    table = trainable_groups_by_stage()
    one, two, three = (table[c] for c in table.columns)
    assert list(table.columns) == [
        f"stage {s} ({n})" for s, n in ((1, "und. SFT"), (2, "gen. PT"), (3, "gen. FT"))
    ]
    for group in ("vision", "connector", "und"):
        assert one[GROUP_ROWS[group]] == TRAINED
        assert two[GROUP_ROWS[group]] == three[GROUP_ROWS[group]] == FROZEN
    assert one[GROUP_ROWS["gen"]] == FROZEN
    assert two[GROUP_ROWS["gen"]] == three[GROUP_ROWS["gen"]] == TRAINED
    assert (one[REPA_ROW], two[REPA_ROW], three[REPA_ROW]) == (FROZEN, TRAINED, UNUSED)
    assert set(table.loc[VAE_ROW]) == {FROZEN}
    for stage, column in zip((1, 2, 3), (one, two, three), strict=True):  # nothing hard-coded
        trained = {g for g in GROUP_ROWS if column[GROUP_ROWS[g]] == TRAINED}
        assert trained == set(STAGE_DEFAULTS[stage]["trainable"])


def test_trainable_groups_of_a_custom_stage() -> None:
    joint = trainable_groups_by_stage({4: {"trainable": ("und", "gen"), "repa_weight": 0.0}})
    column = joint["stage 4"]
    assert column[GROUP_ROWS["und"]] == column[GROUP_ROWS["gen"]] == TRAINED
    assert column[GROUP_ROWS["vision"]] == FROZEN and column[REPA_ROW] == UNUSED


def test_fig2_writes_a_png(plans, tmp_path: Path) -> None:
    out = tmp_path / "fig2.png"
    fig = fig2(plans, trainable_groups_by_stage(), out)
    assert out.stat().st_size > 10_000
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "UniX" in fig.get_suptitle()
    with pytest.raises(ValueError, match="no task"):
        fig2({}, trainable_groups_by_stage(), tmp_path / "empty.png")
