"""The stand-in for a pretrained SigLIP tower (unixlib.train.vision_pretrain) and its wiring
into stage 1: label targets, what trains, the record it leaves, validation, resume."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from train_helpers import data_run, tiny_config

from unixlib.data.datasets import label_targets
from unixlib.data.schema import LABELS
from unixlib.model.unix import UniX
from unixlib.train.loop import train
from unixlib.train.setup import build_model, group_of
from unixlib.train.vision_pretrain import pretrain_vision_tower


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory):
    return data_run(tmp_path_factory)


def test_label_targets_count_uncertain_as_positive_and_unmentioned_as_negative():
    labels = pd.DataFrame([[1.0, -1.0, 0.0, np.nan] + [0.0] * 10], columns=list(LABELS))
    assert label_targets(labels)[0, :4].tolist() == [1.0, 1.0, 0.0, 0.0]


def test_pretraining_trains_only_the_tower_and_lowers_the_label_loss(data, tmp_path):
    from unixlib.data.processed import load_processed

    _, tokenizer, _ = load_processed(data)
    model = build_model(tiny_config(data, tmp_path, 1), tokenizer)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    # a learnable toy task: the label is whether the image is bright
    images = torch.rand(32, 1, 32, 32) * 0.5
    images[:16] += 0.5
    labels = pd.DataFrame(0.0, index=range(32), columns=list(LABELS))
    labels.loc[:15, "cardiomegaly"] = 1.0
    losses = pretrain_vision_tower(model, images, labels, 60, 16, 3e-3, 0, torch.device("cpu"))
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10])
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and {group_of(n) for n in changed} == {"vision"}


def test_stage1_pretrains_the_tower_once_and_records_it(data, tmp_path):
    cfg = tiny_config(data, tmp_path / "s1", 1, steps=2, vision_pretrain_steps=5)
    train(cfg, progress=False)
    record = json.loads((tmp_path / "s1" / "vision_pretrain.json").read_text())
    assert record["steps"] == 5 and len(record["losses"]) == 5
    plain = tiny_config(data, tmp_path / "s1_plain", 1, steps=2)
    train(plain, progress=False)
    a = UniX.from_pretrained(tmp_path / "s1" / "final").vision_tower.state_dict()
    b = UniX.from_pretrained(tmp_path / "s1_plain" / "final").vision_tower.state_dict()
    assert any(not torch.equal(a[k], b[k]) for k in a)  # the pretraining changed the tower
    # resuming from a checkpoint does not pretrain again (the tower comes from the checkpoint)
    (tmp_path / "s1" / "vision_pretrain.json").unlink()
    more = tiny_config(data, tmp_path / "s1", 1, steps=3, vision_pretrain_steps=5)
    train(more, resume=True, progress=False)
    assert not (tmp_path / "s1" / "vision_pretrain.json").exists()


def test_vision_pretraining_is_rejected_outside_stage_1(data, tmp_path):
    with pytest.raises(ValueError, match="stage 1 with a trained tower"):
        tiny_config(data, tmp_path, 2, vision_pretrain_steps=5)
    with pytest.raises(ValueError, match=">= 0"):
        tiny_config(data, tmp_path, 1, vision_pretrain_steps=-1)


def test_label_targets_name_missing_columns():
    with pytest.raises(KeyError, match="cardiomegaly"):
        label_targets(pd.DataFrame({"edema": [1.0]}))
