"""The small VAE of notebook 03: training, normalisation, save/load, latent cache, figures."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from unixlib.data.sources.images import ImageError, save_png8
from unixlib.eval.vae_quality import finding_retention, reconstruction_metrics
from unixlib.model import vae as vae_mod
from unixlib.model.vae import VAEWrapper, build_autoencoder, tiny_autoencoder_config
from unixlib.model.vae_batches import as_image_batch, encode_dataset, reconstruct
from unixlib.model.vae_files import (
    LATENT_NORM_FILE,
    PAPER_VAE_SCALE,
    PAPER_VAE_SHIFT,
    load_latent_cache,
    load_vae,
    save_latent_cache,
)
from unixlib.train.vae_train import VAETrainConfig, load_image_stack, train_vae
from unixlib.viz.training import loss_curves, vae_reconstructions

SIZE = 16  # tiny images: a 4x down VAE gives 4x4 latents


def _images(n: int, seed: int = 0) -> np.ndarray:
    """(n, 1, 16, 16) smooth blobs in [0, 1]: learnable in a few dozen steps."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    out = []
    for _ in range(n):
        cy, cx, r = rng.uniform(0.3, 0.7, 3) * (1, 1, 0.4)
        out.append(0.2 + 0.6 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / r**2))
    return np.stack(out)[:, None].astype(np.float32)


def _ae_config() -> dict:
    return {**tiny_autoencoder_config(4, 4), "block_out_channels": [8, 16, 16]}


def _cfg(**kw) -> VAETrainConfig:
    base = {"image_size": SIZE, "downsample": 4, "steps": 8, "batch_size": 4, "log_every": 1}
    return VAETrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("vae")
    images = _images(24)
    cfg = _cfg(steps=40, lr=3e-3, warmup_steps=4, stats_images=1000)
    return train_vae(images, cfg, out, autoencoder_config=_ae_config()), images


def test_loss_falls_and_metrics_are_logged(trained) -> None:
    result, _ = trained
    rows = [
        json.loads(line) for line in (result.out_dir / "metrics.jsonl").read_text().split("\n")[:-1]
    ]
    assert rows == result.metrics
    assert [r["step"] for r in rows] == list(range(1, 41))
    assert set(rows[0]) == {"step", "loss", "rec", "kl", "lr"}
    first = np.mean([r["rec"] for r in rows[:3]])
    last = np.mean([r["rec"] for r in rows[-3:]])
    assert last < 0.6 * first


def test_lr_schedule_warmup_then_cosine(tmp_path: Path) -> None:
    cfg = _cfg(steps=8, lr=1e-3, warmup_steps=4, min_lr_ratio=0.1)
    result = train_vae(_images(8), cfg, tmp_path, autoencoder_config=_ae_config())
    lrs = [r["lr"] for r in result.metrics]
    # warm-up (s+1)/4 for s = 0..3, then 0.1 + 0.9 * 0.5 * (1 + cos(pi * (s-3)/4)) for s = 4..7:
    # transformers' cosine reaches min_lr_ratio on the last step (tests/test_schedules.py)
    expected = [2.5e-4, 5e-4, 7.5e-4, 1e-3] + [
        1e-3 * (0.1 + 0.45 * (1 + math.cos(math.pi * k / 4))) for k in range(1, 5)
    ]
    assert lrs == pytest.approx(expected, rel=1e-9)


def test_normalised_training_latents_have_zero_mean_unit_std(trained) -> None:
    result, images = trained  # stats_images >= N: the statistics saw every training image
    z = encode_dataset(result.vae, images, batch_size=5)
    assert z.shape == (24, 4, 4, 4)
    assert z.double().mean().item() == pytest.approx(0.0, abs=1e-5)
    assert z.double().std().item() == pytest.approx(1.0, abs=1e-5)
    norm = json.loads((result.out_dir / LATENT_NORM_FILE).read_text())
    assert norm == {
        "scale": result.scale,
        "shift": result.shift,
        "downsample": 4,
        "latent_channels": 4,
    }


def test_save_load_round_trip_gives_identical_encodings(trained) -> None:
    result, images = trained
    loaded = load_vae(result.out_dir)
    assert (loaded.scale, loaded.shift) == (result.scale, result.shift)
    assert not loaded.sample_posterior
    torch.testing.assert_close(
        encode_dataset(loaded, images), encode_dataset(result.vae, images), rtol=0, atol=0
    )
    assert load_vae(result.out_dir, sample_posterior=True).sample_posterior
    explicit = load_vae(result.out_dir, scale=2.0, shift=0.5)
    assert (explicit.scale, explicit.shift) == (2.0, 0.5)


def test_same_seed_same_weights_and_caller_rng_untouched(tmp_path: Path) -> None:
    images, cfg = _images(8), _cfg(steps=3, seed=7)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = train_vae(images, cfg, tmp_path / "a", autoencoder_config=_ae_config())
    assert torch.equal(torch.get_rng_state(), before)
    b = train_vae(images, cfg, tmp_path / "b", autoencoder_config=_ae_config())
    c = train_vae(images, _cfg(steps=3, seed=8), tmp_path / "c", autoencoder_config=_ae_config())
    sa, sb, sc = (r.vae.autoencoder.state_dict() for r in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_reconstruction_metrics_agree_with_reconstruct(trained) -> None:
    result, images = trained
    m = reconstruction_metrics(result.vae, images[:10], batch_size=3)
    rec = reconstruct(result.vae, images[:10])
    assert rec.shape == (10, 1, SIZE, SIZE) and rec.min() >= 0 and rec.max() <= 1
    err = ((rec.double() - torch.from_numpy(images[:10]).double()) ** 2).mean(dim=(1, 2, 3))
    assert m["mse"] == pytest.approx(err.mean().item(), rel=1e-6)
    assert m["psnr"] == pytest.approx(10 * math.log10(1 / m["mse"]))
    assert m["psnr_per_image"] == pytest.approx((10 * torch.log10(1 / err)).mean().item())
    assert m["n"] == 10


def test_finding_retention_compares_reconstructions_with_references(trained) -> None:
    result, images = trained
    refs = {"normal": images[0, 0], "blob moved": images[1, 0], "same": images[0, 0].copy()}
    table = finding_retention(result.vae, refs).set_index("case")
    rec = reconstruct(result.vae, images[:2])[:, 0].double().numpy()  # (2, H, W)
    diff_ref = images[1, 0].astype(np.float64) - images[0, 0]
    region = np.abs(diff_ref) > 0.05
    kept = ((rec[1] - rec[0]) * np.sign(diff_ref))[region].mean() / np.abs(diff_ref[region]).mean()
    assert list(table.index) == ["blob moved", "same"]
    assert table.loc["blob moved", "ratio"] == pytest.approx(kept, rel=1e-5)
    assert 0 < kept < 1.5  # a trained VAE keeps a moved blob roughly where it is
    assert table.loc["same", "region_px"] == 0


def test_latent_cache_round_trip_and_errors(tmp_path: Path) -> None:
    latents = torch.randn(3, 4, 2, 2)
    path = save_latent_cache(latents, ["a", "b", "c"], tmp_path / "cache" / "train.safetensors")
    assert (tmp_path / "cache" / "train.ids.json").is_file()
    back, ids = load_latent_cache(path)
    assert torch.equal(back, latents) and ids == ["a", "b", "c"]
    with pytest.raises(ValueError, match="unique ids"):
        save_latent_cache(latents, ["a", "a", "c"], tmp_path / "x.safetensors")
    with pytest.raises(ValueError, match="unique ids"):
        save_latent_cache(latents, ["a", "b"], tmp_path / "x.safetensors")
    with pytest.raises(ValueError, match=r"\.safetensors"):
        save_latent_cache(latents, ["a", "b", "c"], tmp_path / "x.pt")
    with pytest.raises(ValueError, match="finite"):
        save_latent_cache(torch.full((3, 4, 2, 2), float("nan")), ["a", "b", "c"], path)
    (tmp_path / "cache" / "train.ids.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"train\.ids\.json"):
        load_latent_cache(path)


def test_load_vae_missing_files_are_named(trained, tmp_path: Path) -> None:
    result, _ = trained
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_vae(tmp_path / "nowhere")
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("config.json", "diffusion_pytorch_model.safetensors"):
        (copy / name).write_bytes((result.out_dir / name).read_bytes())
    # train_vae also writes the norm as diffusers' scaling_factor / shift_factor
    config = json.loads((copy / "config.json").read_text())
    assert (config["scaling_factor"], config["shift_factor"]) == (result.scale, result.shift)
    assert (load_vae(copy).scale, load_vae(copy).shift) == (result.scale, result.shift)
    foreign = {**config, "scaling_factor": 0.18215, "shift_factor": None}  # diffusers' defaults
    (copy / "config.json").write_text(json.dumps(foreign))
    with pytest.raises(FileNotFoundError, match=LATENT_NORM_FILE):
        load_vae(copy)
    assert load_vae(copy, scale=1.5, shift=0.0).scale == 1.5
    (copy / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=r"diffusion_pytorch_model\.safetensors"):
        load_vae(copy, scale=1.5, shift=0.0)
    with pytest.raises(FileNotFoundError, match="one checkpoint and one yaml"):
        load_vae(tmp_path)  # a directory with neither layout
    with pytest.raises(ValueError, match="both scale and shift"):
        load_vae(result.out_dir, scale=1.0)


def test_latent_norm_must_match_the_weights(trained, tmp_path: Path) -> None:
    result, _ = trained
    for name in ("config.json", "diffusion_pytorch_model.safetensors", LATENT_NORM_FILE):
        (tmp_path / name).write_bytes((result.out_dir / name).read_bytes())
    norm = json.loads((tmp_path / LATENT_NORM_FILE).read_text())
    (tmp_path / LATENT_NORM_FILE).write_text(json.dumps({**norm, "latent_channels": 16}))
    with pytest.raises(ValueError, match="latent_channels"):
        load_vae(tmp_path)


def _as_ldm_checkpoint(autoencoder, levels: int) -> dict[str, torch.Tensor]:
    """Rename a diffusers state dict to LDM names by inverting vae._ldm_key over LDM's layout."""
    resnet = ("norm1", "conv1", "norm2", "conv2", "nin_shortcut")
    attn = ("norm", "q", "k", "v", "proj_out")
    layers = ["quant_conv", "post_quant_conv"]
    for part, way, sampler in (("encoder", "down", "downsample"), ("decoder", "up", "upsample")):
        layers += [f"{part}.{name}" for name in ("conv_in", "conv_out", "norm_out")]
        layers += [f"{part}.mid.block_{i}.{x}" for i in (1, 2) for x in resnet]
        layers += [f"{part}.mid.attn_1.{x}" for x in attn]
        for lv in range(levels):
            layers.append(f"{part}.{way}.{lv}.{sampler}.conv")
            for j in range(3):
                layers += [f"{part}.{way}.{lv}.block.{j}.{x}" for x in resnet]
                layers += [f"{part}.{way}.{lv}.attn.{j}.{x}" for x in attn]
    target = autoencoder.state_dict()
    ldm = {}
    for layer in layers:
        for param in ("weight", "bias"):
            mapped = vae_mod._ldm_key(f"{layer}.{param}", levels)
            if mapped is not None and mapped[0] in target:
                value = target[mapped[0]]
                ldm[f"first_stage_model.{layer}.{param}"] = (
                    value[..., None, None] if mapped[1] and value.dim() == 2 else value
                )
    assert len(ldm) == len(target)  # every diffusers weight has its LDM twin
    ldm["first_stage_model.loss.logvar"] = torch.zeros(())  # training-only, must be skipped
    return ldm


def test_load_vae_ldm_checkpoint_with_yaml(tmp_path: Path) -> None:
    ddconfig = {
        "double_z": True,
        "z_channels": 4,
        "resolution": 16,
        "in_channels": 1,
        "out_ch": 1,
        "ch": 32,
        "ch_mult": [1, 2],
        "num_res_blocks": 1,
        "attn_resolutions": [8],
    }
    ldm_yaml = {"model": {"params": {"embed_dim": 4, "ddconfig": ddconfig}}}
    torch.manual_seed(0)
    reference = build_autoencoder(vae_mod.ldm_vae_config(ldm_yaml))
    ckpt = tmp_path / "model.ckpt"
    torch.save({"state_dict": _as_ldm_checkpoint(reference, levels=2)}, ckpt)
    with pytest.raises(FileNotFoundError, match=r"model\.yaml"):
        load_vae(ckpt)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(ldm_yaml))
    loaded = load_vae(ckpt, ldm_config=tmp_path / "config.yaml")
    assert (loaded.scale, loaded.shift) == (PAPER_VAE_SCALE, PAPER_VAE_SHIFT)
    x = torch.rand(2, 1, 16, 16) * 2 - 1
    expected = VAEWrapper(reference, PAPER_VAE_SCALE, PAPER_VAE_SHIFT).encode(x)
    torch.testing.assert_close(loaded.encode(x), expected)
    from_dir = load_vae(tmp_path, scale=1.0, shift=0.0)  # the kl-f16.zip layout
    torch.testing.assert_close(from_dir.encode(x), (expected / PAPER_VAE_SCALE) + PAPER_VAE_SHIFT)


def test_bad_configs_and_images_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="multiple of downsample"):
        VAETrainConfig(image_size=60, downsample=8)
    with pytest.raises(ValueError, match="device"):
        VAETrainConfig(device="tpu")
    with pytest.raises(ValueError, match="does not match"):
        train_vae(_images(4), _cfg(), tmp_path, autoencoder_config=tiny_autoencoder_config(4, 8))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        as_image_batch(np.full((2, 1, 4, 4), 255.0))
    with pytest.raises(ValueError, match=r"\(N >= 1, 1, H, W\)"):
        as_image_batch(np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match="16x16"):
        train_vae(_images(4)[:, :, :8, :8], _cfg(), tmp_path)


def test_load_image_stack(tmp_path: Path) -> None:
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"{i}.png")
        save_png8(np.full((8, 8), i / 255.0), paths[-1])
    stack = load_image_stack(paths, size=8)
    assert stack.shape == (3, 1, 8, 8) and stack.dtype == np.float32
    assert stack[:, 0, 0, 0].tolist() == pytest.approx([0.0, 1 / 255, 2 / 255])
    save_png8(np.zeros((8, 6)), tmp_path / "odd.png")
    with pytest.raises(ValueError, match=r"odd\.png"):
        load_image_stack([*paths, tmp_path / "odd.png"])
    with pytest.raises(ImageError, match="file not found"):
        load_image_stack([tmp_path / "missing.png"])


def test_figures_are_written(tmp_path: Path) -> None:
    imgs = _images(3)[:, 0]
    fig = vae_reconstructions(imgs, imgs[::-1], tmp_path / "rec.png", psnr=21.34)
    assert (tmp_path / "rec.png").stat().st_size > 0
    assert "21.3 dB" in fig._suptitle.get_text()
    assert len(fig.axes) == 6
    with pytest.raises(ValueError, match="one shape"):
        vae_reconstructions(imgs, imgs[:2], tmp_path / "bad.png")
    curves = {"rec": [(1, 0.5), (2, 0.25)], "kl": [(1, 10.0), (2, 20.0)]}
    ax = loss_curves(curves, tmp_path / "loss.png", "stage 2").axes[0]
    assert ax.get_yscale() == "log" and len(ax.lines) == 2
    frame = pd.DataFrame({"step": [1, 2], "loss": [0.3, -0.1]})  # a negative term: linear y
    assert loss_curves(frame, tmp_path / "l2.png", "t").axes[0].get_yscale() == "linear"
    with pytest.raises(ValueError, match="'step' column"):
        loss_curves(pd.DataFrame({"loss": [1.0]}), tmp_path / "l3.png", "t")


def test_cache_latents_reuses_only_a_matching_cache(tmp_path):
    """reuse=True loads a cache with the same rows and grid, and re-encodes otherwise."""
    from types import SimpleNamespace

    import pandas as pd

    from unixlib.model.vae import VAEWrapper, build_autoencoder, tiny_autoencoder_config
    from unixlib.model.vae_files import load_latent_cache
    from unixlib.train.vae_train import cache_latents

    torch.manual_seed(0)
    vae = VAEWrapper(build_autoencoder(tiny_autoencoder_config(4, 8)), 1.0, 0.0)
    images = torch.rand(3, 1, 16, 16)

    def dataset(ids):
        return SimpleNamespace(rows=pd.DataFrame({"id": ids}), image_size=16, images=lambda: images)

    path = tmp_path / "lat.safetensors"
    first = cache_latents(vae, dataset(["a", "b", "c"]), path)
    marked = torch.full_like(first, 7.0)
    from unixlib.model.vae_files import save_latent_cache

    save_latent_cache(marked, ["a", "b", "c"], path)  # a recognisable cache with the same rows
    assert torch.equal(cache_latents(vae, dataset(["a", "b", "c"]), path, reuse=True), marked)
    again = cache_latents(vae, dataset(["a", "b", "x"]), path, reuse=True)  # other rows: encode
    assert torch.allclose(again, first)
    assert load_latent_cache(path)[1] == ["a", "b", "x"]
