"""REPA's encoder input as the release makes it (issue 22 item 10): bicubic to 224 px, 8-bit by
truncation, then RadDino's own processor, behind ``UniXConfig.repa_official_preprocess``."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from test_eval_encoders import _tiny_raddino_with_processor

from unixlib.model.config import preset
from unixlib.model.repa import RadDinoTarget, official_pixels
from unixlib.train.loop import _repa_target


@pytest.fixture(scope="module")
def rad_dino(tmp_path_factory):
    directory = tmp_path_factory.mktemp("rad-dino")
    processor, _ = _tiny_raddino_with_processor(directory)
    return directory, processor


def test_official_pixels_follow_the_release(rad_dino) -> None:
    _, processor = rad_dino
    images = torch.rand(2, 1, 256, 256, generator=torch.Generator().manual_seed(0))
    x = F.interpolate(images, size=(224, 224), mode="bicubic", align_corners=False)
    u8 = (x[:, 0].numpy() * 255).astype(np.uint8)  # truncation (and wrap-around), numpy's cast
    rgb = [Image.fromarray(a).convert("RGB") for a in u8]
    expected = processor(images=rgb, return_tensors="pt")["pixel_values"]
    got = official_pixels(images, processor)
    assert got.shape == (2, 3, 28, 28) and torch.equal(got, expected)
    flat = official_pixels(torch.full((1, 1, 256, 256), 0.5), processor)
    assert torch.allclose(flat, torch.full_like(flat, (127 / 255 - 0.5307) / 0.2583))  # not 128
    with pytest.raises(ValueError, match=r"224 \* \(res // 256\)"):
        official_pixels(torch.rand(1, 1, 64, 64), processor)


def test_the_flag_switches_the_target_s_input(rad_dino) -> None:
    directory, processor = rad_dino
    ours = RadDinoTarget.from_local(directory)
    release = RadDinoTarget.from_local(directory, official_preprocess=True)
    assert ours.processor is None and release.processor is not None
    images = torch.rand(2, 1, 256, 256, generator=torch.Generator().manual_seed(1))
    feats, grid = release(images)
    pixels = official_pixels(images, processor)
    expected = release.encoder(pixel_values=pixels).last_hidden_state[:, 1:]  # CLS dropped
    assert grid == (2, 2) and torch.allclose(feats, expected)
    assert not torch.allclose(ours(images)[0], feats, atol=1e-3)  # a different input


def test_training_builds_the_target_the_model_config_asks_for(rad_dino) -> None:
    directory, _ = rad_dino
    assert preset("paper").repa_official_preprocess is False  # ours by default
    cfg = SimpleNamespace(repa_weight=0.5, tasks=("gen",), repa_encoder=str(directory))
    for flag in (False, True):
        model = SimpleNamespace(config=SimpleNamespace(repa_official_preprocess=flag))
        target = _repa_target(cfg, model, torch.device("cpu"))
        assert (target.processor is not None) == flag
