"""VAE wrapper maths, vision tower / connector / preprocessing, REPA loss and targets."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution
from transformers import Dinov2Config, Dinov2Model

from unixlib.model.config import preset
from unixlib.model.repa import (
    RadDinoTarget,
    REPAProjector,
    SiglipTarget,
    match_grid_2d,
    repa_loss,
)
from unixlib.model.vae import (
    VAEWrapper,
    build_autoencoder,
    latent_stats,
    tiny_autoencoder_config,
    vae_loss,
)
from unixlib.model.vision import (
    VIT_MEAN,
    VIT_STD,
    Connector,
    build_vision_tower,
    load_vision_tower,
    preprocess_for_vit,
    vit_features,
)


def _tiny_ae(channels: int = 1, downsample: int = 4):
    torch.manual_seed(0)
    cfg = tiny_autoencoder_config(latent_channels=4, downsample=downsample)
    cfg.update(in_channels=channels, out_channels=channels)
    return build_autoencoder(cfg)


def _images(b: int = 2, size: int = 16, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 1, size, size, generator=g) * 2 - 1


# ----------------------------------------------------------------------------- VAE


def test_vae_encode_decode_shapes_and_scale_shift_maths() -> None:
    ae = _tiny_ae()
    vae = VAEWrapper(ae, scale=2.0, shift=0.5)
    assert (vae.downsample, vae.latent_channels) == (4, 4)
    x = _images()
    z = vae.encode(x)
    assert z.shape == (2, 4, 4, 4)
    mode = ae.encode(x).latent_dist.mode()
    assert torch.allclose(z, 2.0 * (mode - 0.5), atol=1e-6)
    out = vae.decode(z)
    assert out.shape == (2, 1, 16, 16)
    assert torch.allclose(out, ae.decode(mode).sample, atol=1e-5)  # the normalisation inverts


def test_vae_posterior_mean_by_default_sampling_behind_flag() -> None:
    ae = _tiny_ae()
    x = _images()
    mean = VAEWrapper(ae, 1.0, 0.0)
    assert torch.equal(mean.encode(x), mean.encode(x))
    sampled = VAEWrapper(ae, 1.0, 0.0, sample_posterior=True)
    a = sampled.encode(x, torch.Generator().manual_seed(1))
    b = sampled.encode(x, torch.Generator().manual_seed(1))
    c = sampled.encode(x, torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.allclose(a, c)


def test_vae_gray_io_for_rgb_autoencoder() -> None:
    ae = _tiny_ae(channels=3)
    vae = VAEWrapper(ae, 1.0, 0.0)
    x = _images()
    z = vae.encode(x)
    assert torch.allclose(z, ae.encode(x.repeat(1, 3, 1, 1)).latent_dist.mode(), atol=1e-6)
    out = vae.decode(z)
    assert out.shape == (2, 1, 16, 16)
    assert torch.allclose(out, ae.decode(z).sample.mean(dim=1, keepdim=True), atol=1e-6)


def test_vae_is_frozen_and_rejects_bad_input() -> None:
    vae = VAEWrapper(_tiny_ae(), 1.0, 0.0)
    assert not any(p.requires_grad for p in vae.parameters())
    vae.train()
    assert not vae.autoencoder.training
    with pytest.raises(ValueError, match="expected images"):
        vae.encode(torch.zeros(1, 2, 16, 16))
    with pytest.raises(ValueError, match="not divisible"):
        vae.encode(torch.zeros(1, 1, 18, 18))
    with pytest.raises(ValueError, match="expected latents"):
        vae.decode(torch.zeros(1, 3, 4, 4))
    with pytest.raises(ValueError, match="scale must be > 0"):
        VAEWrapper(_tiny_ae(), 0.0, 0.0)


def test_tiny_autoencoder_config_levels() -> None:
    cfg = tiny_autoencoder_config(latent_channels=4, downsample=8)
    assert len(cfg["block_out_channels"]) == 4 and cfg["in_channels"] == 1
    assert len(tiny_autoencoder_config(downsample=1)["down_block_types"]) == 1
    with pytest.raises(ValueError, match="power of two"):
        tiny_autoencoder_config(downsample=6)
    with pytest.raises(ValueError, match="bad AutoencoderKL config"):
        build_autoencoder({"no_such_option": 1})


def test_vae_loss_hand_values() -> None:
    mean = torch.ones(2, 1, 2, 2)
    posterior = DiagonalGaussianDistribution(torch.cat([mean, torch.zeros_like(mean)], dim=1))
    # KL(N(1, 1) || N(0, 1)) = 0.5 per element, 4 elements per sample -> 2.0
    loss, parts = vae_loss(torch.zeros(2, 1, 4, 4), torch.ones(2, 1, 4, 4), posterior, 0.1)
    assert parts["rec"] == pytest.approx(1.0) and parts["kl"] == pytest.approx(2.0)
    assert loss.item() == pytest.approx(1.2)
    _, parts = vae_loss(
        torch.zeros(1, 1, 2, 2), torch.full((1, 1, 2, 2), 2.0), posterior, 0.0, "mse"
    )
    assert parts["rec"] == pytest.approx(4.0)
    with pytest.raises(ValueError, match="reconstruction"):
        vae_loss(torch.zeros(1), torch.zeros(1), posterior, 0.0, "l2")


def test_latent_stats_normalise_the_cache() -> None:
    z = torch.randn(50, 4, 3, 3, generator=torch.Generator().manual_seed(0)) * 3.0 + 1.5
    scale, shift = latent_stats(z)
    normed = scale * (z - shift)
    assert normed.mean().item() == pytest.approx(0.0, abs=1e-6)
    assert normed.std().item() == pytest.approx(1.0, abs=1e-6)
    assert shift == pytest.approx(1.5, abs=0.2) and 1 / scale == pytest.approx(3.0, abs=0.2)
    with pytest.raises(ValueError, match="no spread"):
        latent_stats(torch.ones(10))


# ----------------------------------------------------------------------------- vision


def test_tiny_tower_features_and_no_pooling_head() -> None:
    torch.manual_seed(0)
    cfg = preset("tiny")
    tower = build_vision_tower(cfg.vision_config())
    assert not any(k.startswith("head.") for k in tower.state_dict())
    pixels = preprocess_for_vit(torch.rand(2, 1, 48, 64), cfg.image_size_und)
    assert vit_features(tower, pixels).shape == (2, cfg.vit_grid**2, cfg.vit_hidden_size)
    with_head = build_vision_tower({**cfg.vision_config(), "vision_use_head": True})
    assert any(k.startswith("head.") for k in with_head.state_dict())


def test_load_vision_tower_round_trip_and_missing(tmp_path: Path) -> None:
    cfg = {
        **preset("tiny").vision_config(),
        "hidden_size": 32,
        "intermediate_size": 64,
        "image_size": 32,
    }
    tower = build_vision_tower(cfg)
    tower.save_pretrained(tmp_path / "siglip")
    loaded = load_vision_tower(tmp_path / "siglip")
    for key, value in tower.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    with pytest.raises(FileNotFoundError, match="no SigLIP vision tower"):
        load_vision_tower(tmp_path / "absent")


def test_connector_shapes_names_and_tanh_gelu() -> None:
    conn = Connector(8, 16)
    assert set(conn.state_dict()) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    x = torch.randn(3, 5, 8)
    out = conn(x)
    assert out.shape == (3, 5, 16)
    manual = conn[2](F.gelu(conn[0](x), approximate="tanh"))
    assert torch.allclose(out, manual)


def test_preprocess_pads_white_and_normalises() -> None:
    wide = torch.zeros(1, 1, 2, 4)  # black, 2 rows x 4 cols -> one white row above and below
    out = preprocess_for_vit(wide, 4)
    white, black = (1 - VIT_MEAN) / VIT_STD, (0 - VIT_MEAN) / VIT_STD
    assert out.shape == (1, 3, 4, 4)
    assert torch.allclose(out[0, :, 0], torch.full((3, 4), white))
    assert torch.allclose(out[0, :, 3], torch.full((3, 4), white))
    assert torch.allclose(out[0, :, 1:3], torch.full((3, 2, 4), black))
    tall = preprocess_for_vit(torch.zeros(1, 1, 4, 2), 4)
    assert torch.allclose(tall[0, 0, :, 0], torch.full((4,), white))
    assert torch.allclose(tall[0, 0, :, 1], torch.full((4,), black))
    resized = preprocess_for_vit(torch.full((2, 1, 10, 10), 0.5), 6)
    assert resized.shape == (2, 3, 6, 6)
    assert torch.allclose(resized, torch.full_like(resized, (0.5 - VIT_MEAN) / VIT_STD), atol=1e-5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        preprocess_for_vit(torch.full((1, 1, 4, 4), -1.0), 4)
    with pytest.raises(ValueError, match="gray images"):
        preprocess_for_vit(torch.zeros(1, 3, 4, 4), 4)


# ----------------------------------------------------------------------------- REPA


def test_projector_layout() -> None:
    proj = REPAProjector(16, 32, 8)
    assert proj(torch.randn(2, 5, 16)).shape == (2, 5, 8)
    assert [k for k in proj.state_dict() if k.endswith("weight")] == [
        "0.weight",
        "2.weight",
        "4.weight",
    ]


def test_repa_loss_identical_is_minus_one_opposite_is_plus_one() -> None:
    x = torch.randn(3, 16, 8, generator=torch.Generator().manual_seed(0))
    assert repa_loss(x, (4, 4), x * 2.5, (4, 4)).item() == pytest.approx(-1.0, abs=1e-6)
    assert repa_loss(x, (4, 4), -x, (4, 4)).item() == pytest.approx(1.0, abs=1e-6)


def _quadrants(n: int) -> torch.Tensor:
    """(1, n*n, 4): one-hot e_q on quadrant q = 2 * (row >= n/2) + (col >= n/2)."""
    rows, cols = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    q = (2 * (rows >= n // 2) + (cols >= n // 2)).reshape(-1)
    return F.one_hot(q, 4).float()[None]


def test_grid_matching_is_2d() -> None:
    target, pred = _quadrants(8), _quadrants(4)
    assert torch.equal(match_grid_2d(target, (8, 8), (4, 4)), pred)
    assert repa_loss(pred, (4, 4), target, (8, 8)).item() == pytest.approx(-1.0, abs=1e-6)
    # the release's 1-D interpolation of the flattened sequence mismatches rows
    assert repa_loss(pred, (4, 4), target, (8, 8), official_1d_interp=True).item() > -0.9
    up = match_grid_2d(torch.full((1, 4, 3), 2.0), (2, 2), (4, 4))
    assert torch.allclose(up, torch.full((1, 16, 3), 2.0))


def test_repa_loss_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="feature widths differ"):
        repa_loss(torch.zeros(1, 4, 3), (2, 2), torch.zeros(1, 4, 5), (2, 2))
    with pytest.raises(ValueError, match="do not fill"):
        repa_loss(torch.zeros(1, 5, 3), (2, 2), torch.zeros(1, 4, 3), (2, 2))
    with pytest.raises(ValueError, match="do not fill"):
        repa_loss(torch.zeros(1, 4, 3), (2, 2), torch.zeros(1, 5, 3), (2, 2))


def test_siglip_target_is_frozen_and_gives_its_grid() -> None:
    torch.manual_seed(0)
    cfg = preset("tiny")
    target = SiglipTarget(build_vision_tower(cfg.vision_config()))
    images = torch.rand(2, 1, cfg.image_size_und, cfg.image_size_und)
    feats, grid = target(images)
    g = cfg.vit_grid
    assert feats.shape == (2, g * g, cfg.vit_hidden_size) and grid == (g, g)
    assert not feats.requires_grad
    target.train()
    assert not target.encoder.training
    assert not any(p.requires_grad for p in target.parameters())


def _save_tiny_dino(path: Path, with_processor: bool) -> Dinov2Model:
    torch.manual_seed(0)
    cfg = Dinov2Config(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        image_size=32,
        patch_size=8,
    )
    model = Dinov2Model(cfg).eval()
    model.save_pretrained(path)
    if with_processor:
        proc = {
            "image_mean": [0.5, 0.5, 0.5],
            "image_std": [0.25, 0.25, 0.25],
            "crop_size": {"height": 24, "width": 24},
        }
        (path / "preprocessor_config.json").write_text(json.dumps(proc))
    return model


def test_raddino_target_from_local(tmp_path: Path) -> None:
    model = _save_tiny_dino(tmp_path / "rad", with_processor=True)
    target = RadDinoTarget.from_local(tmp_path / "rad")
    images = torch.rand(2, 1, 48, 48, generator=torch.Generator().manual_seed(1))
    feats, grid = target(images)
    assert grid == (3, 3) and feats.shape == (2, 9, 32)
    x = F.interpolate(images, size=(24, 24), mode="bilinear", align_corners=False, antialias=True)
    ref = model(pixel_values=((x - 0.5) / 0.25).repeat(1, 3, 1, 1)).last_hidden_state[:, 1:]
    assert torch.allclose(feats, ref, atol=1e-5)


def test_raddino_target_errors_and_explicit_normalisation(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no RAD-DINO"):
        RadDinoTarget.from_local(tmp_path / "absent")
    _save_tiny_dino(tmp_path / "bare", with_processor=False)
    with pytest.raises(ValueError, match="image_mean"):
        RadDinoTarget.from_local(tmp_path / "bare")
    target = RadDinoTarget.from_local(tmp_path / "bare", mean=[0.5] * 3, std=[0.5] * 3)
    assert target.size == 32 and target.grid == 4
    with pytest.raises(ValueError, match="multiple of the patch size"):
        RadDinoTarget.from_local(tmp_path / "bare", size=30, mean=[0.5] * 3, std=[0.5] * 3)
    assert math.isclose(float(target.std[0, 0]), 0.5)
