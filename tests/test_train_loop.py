"""The training loop (unixlib.train.loop): freeze policy per stage, falling losses, the stage
chain 1 -> 2 -> 3, determinism, latent-cache alignment, config and model round trips."""

from __future__ import annotations

import json
import random

import pytest
import torch
from safetensors.torch import load_file
from train_helpers import data_run, losses, tiny_config

from unixlib.data.datasets import ReportImageDataset
from unixlib.data.processed import load_processed
from unixlib.model.saving import save_pretrained
from unixlib.model.unix import UniX
from unixlib.model.vae_files import load_vae, save_latent_cache
from unixlib.train.checkpoint import list_checkpoints, load_sampling_weights
from unixlib.train.config import TrainConfig, stage_config
from unixlib.train.loop import train
from unixlib.train.setup import build_model, frozen_fingerprint, group_of, set_trainable
from unixlib.train.vae_train import VAETrainConfig, train_vae


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory):
    return data_run(tmp_path_factory)


def _initial_model(cfg: TrainConfig, data):
    """The model ``train(cfg)`` starts from (it seeds torch with cfg.seed before building)."""
    _, tokenizer, _ = load_processed(data)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, tokenizer)
    set_trainable(model, cfg.trainable)
    return model


def _groups(model) -> dict[str, dict[str, torch.Tensor]]:
    out: dict[str, dict[str, torch.Tensor]] = {}
    for name, p in model.named_parameters():
        out.setdefault(str(group_of(name)), {})[name] = p.detach().clone()
    return out


@pytest.fixture(scope="module")
def chain(data, tmp_path_factory: pytest.TempPathFactory):
    """Stage 1 (25 steps) -> stage 2 (30 steps, REPA on) -> stage 3 (4 steps at 64 px), each
    initialised from the previous stage's final/; returns configs, initial and final weights."""
    root = tmp_path_factory.mktemp("chain")
    out = {}
    previous = ""
    for stage, steps, size in ((1, 25, 32), (2, 30, 32), (3, 4, 64)):
        cfg = tiny_config(
            data, root / f"stage{stage}", stage, steps=steps, image_size=size, init_from=previous
        )
        before = _initial_model(cfg, data)
        result = train(cfg, progress=False)
        out[stage] = (cfg, before, result, UniX.from_pretrained(result.final_dir))
        previous = str(result.final_dir)
    return out


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_frozen_parameters_stay_bit_identical(chain, stage: int) -> None:
    cfg, before, _, after = chain[stage]
    frozen = frozen_fingerprint(before)
    assert frozen, "every stage freezes something"
    after_params = dict(after.named_parameters())
    changed = [n for n, p in frozen.items() if not torch.equal(p, after_params[n])]
    assert changed == []
    # ... and the trained groups did move (tensors without gradient, e.g. an unused REPA
    # projector in stage 3 or SigLIP's pooling head, may stay).
    b, a = _groups(before), _groups(after)
    for group in cfg.trainable:
        moved = [n for n in b[group] if not torch.equal(b[group][n], a[group][n])]
        assert len(moved) >= 0.8 * len(b[group]), (group, len(moved), len(b[group]))
    expected_frozen = {1: {"gen", "None"}, 2: {"vision", "connector", "und", "None"}}
    assert {str(group_of(n)) for n in frozen} == expected_frozen[min(stage, 2)]


def test_und_branch_survives_the_generation_stages(chain) -> None:
    """Stages 2 and 3 train gen only: the final model keeps stage 1's understanding weights."""
    s1, s3 = _groups(chain[1][3]), _groups(chain[3][3])
    for group in ("vision", "connector", "und"):
        assert s1[group].keys() == s3[group].keys()
        assert all(torch.equal(s1[group][n], s3[group][n]) for n in s1[group])


def test_stage1_cross_entropy_falls(chain) -> None:
    ce = losses(chain[1][2].run_dir, "ce")
    assert len(ce) == 25
    first, last = sum(ce[:3]) / 3, sum(ce[-3:]) / 3
    assert first > 5.0  # ~log(300): a random model over a 300-token vocabulary
    assert last < 0.75 * first
    assert losses(chain[1][2].run_dir, "flow") == [0.0] * 25  # no generation examples


def test_stage2_flow_loss_falls_and_repa_is_on(chain) -> None:
    run_dir = chain[2][2].run_dir
    flow, repa = losses(run_dir, "flow"), losses(run_dir, "repa")
    assert len(flow) == 30
    assert sum(flow[-3:]) / 3 < 0.7 * sum(flow[:3]) / 3
    assert all(-1.0 <= r <= 1.0 for r in repa)  # negative cosine to the SigLIP features
    assert repa[-1] < -0.3 and repa[-1] < repa[0] - 0.2  # the projector learns to align
    assert losses(run_dir, "ce") == [0.0] * 30


def test_stage3_trains_at_a_larger_size_from_stage2_weights(chain) -> None:
    cfg3, before, _, after = chain[3]
    assert after.config.image_size_gen == 64 == cfg3.image_size
    assert before.state_dict().keys() == chain[2][3].state_dict().keys()
    assert losses(chain[3][2].run_dir, "repa") == [0.0] * 4  # stage 3: no REPA


def test_metrics_rows_and_logged_learning_rate(data, tmp_path) -> None:
    cfg = tiny_config(data, tmp_path / "run", 2, steps=6, warmup_steps=4, lr=1e-3)
    result = train(cfg, progress=False)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert rows == result.metrics
    assert set(rows[0]) == {
        "step",
        "loss",
        "ce",
        "flow",
        "repa",
        "lr",
        "grad_norm",
        "tokens_per_s",
        "step_seconds",
        "memory_mb",
    }
    # The rate each step used: linear warm-up over 4 steps, then constant.
    assert [r["lr"] for r in rows] == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3])
    for r in rows:
        assert r["loss"] == pytest.approx(r["flow"] + 0.5 * r["repa"], rel=1e-12)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert TrainConfig.from_dict(saved) == cfg


def test_same_seed_same_losses_other_seed_differs(data, tmp_path) -> None:
    kw = {"steps": 4, "task_ratio": (1, 1), "trainable": ("connector", "und", "gen")}
    runs = [
        train(tiny_config(data, tmp_path / f"r{i}", 3, seed=seed, **kw), progress=False)
        for i, seed in enumerate((5, 5, 6))
    ]
    a, b, c = (losses(r.run_dir) for r in runs)
    assert a == b  # exact: CPU fp32, every random draw seeded from (seed, stream position)
    assert a != c


def test_joint_run_with_repa_still_trains_the_vision_tower(data, tmp_path) -> None:
    """REPA's default target is the SigLIP tower; when the run trains that tower too, the target
    is a frozen copy and the model's tower keeps learning."""
    cfg = tiny_config(
        data,
        tmp_path / "joint",
        3,
        steps=2,
        task_ratio=(1, 1),
        repa_weight=0.5,
        trainable=("vision", "connector", "und", "gen"),
    )
    before = _initial_model(cfg, data)
    result = train(cfg, progress=False)
    after = UniX.from_pretrained(result.final_dir)
    repa = [r["repa"] for r in result.metrics]
    assert repa[0] != 0.0 and repa[1] < repa[0]  # REPA is on and aligning
    frozen = [n for n, p in before.named_parameters() if p.requires_grad is False]
    assert all(n.startswith("vae.") for n in frozen)
    a, b = _groups(after)["vision"], _groups(before)["vision"]
    moved = [n for n in b if not torch.equal(a[n], b[n])]
    assert len(moved) >= 0.8 * len(b)


def test_latent_cache_rows_are_matched_by_id(data, tmp_path) -> None:
    """A cache stored in another row order gives the losses of encoding on the fly; a cache
    that lacks a training row, or holds latents of another size, is an error."""
    cfg = tiny_config(data, tmp_path / "live", 2, steps=3)
    model = _initial_model(cfg, data)
    frame, tokenizer, paths = load_processed(data)
    ds = ReportImageDataset(frame, paths.root, tokenizer, "train", 32, "gen")
    latents = model.encode_images(ds.images())
    ids = ds.rows["id"].astype(str).tolist()
    order = list(range(len(ids)))
    random.Random(0).shuffle(order)
    cache = tmp_path / "latents" / "train_32.safetensors"
    save_latent_cache(latents[order], [ids[i] for i in order], cache)
    live = train(cfg, progress=False)
    cached_cfg = tiny_config(data, tmp_path / "cached", 2, steps=3, latent_cache=str(cache))
    cached = train(cached_cfg, progress=False)
    assert losses(cached.run_dir) == pytest.approx(losses(live.run_dir), rel=1e-5)
    # Without REPA a cached run reads no pixels at all (BatchSource.gen_pixels): same losses.
    no_repa = {"steps": 3, "repa_weight": 0.0}
    live = train(tiny_config(data, tmp_path / "live0", 2, **no_repa), progress=False)
    cached = train(
        tiny_config(data, tmp_path / "cached0", 2, latent_cache=str(cache), **no_repa),
        progress=False,
    )
    assert losses(cached.run_dir) == pytest.approx(losses(live.run_dir), rel=1e-5)

    bad = tiny_config(data, tmp_path / "bad", 2, steps=1, latent_cache=str(cache))
    save_latent_cache(latents[1:], ids[1:], cache)
    with pytest.raises(ValueError, match=ids[0]):
        train(bad)
    save_latent_cache(torch.zeros(len(ids), 4, 8, 8), ids, cache)  # encoded at 64 px
    with pytest.raises(ValueError, match="another image size"):
        train(bad)


def test_generation_stage_with_a_trained_vae_dir(data, tmp_path) -> None:
    """vae_dir replaces the model's VAE; final/ records it (config + weights) for stage 3; a VAE
    of another latent shape is refused by name."""
    frame, tokenizer, paths = load_processed(data)
    images = ReportImageDataset(frame, paths.root, tokenizer, "train", 32, "gen").images()
    vae_cfg = VAETrainConfig(image_size=32, steps=2, batch_size=4, stats_images=16)
    trained = train_vae(images, vae_cfg, tmp_path / "vae")
    result = train(tiny_config(data, tmp_path / "s2", 2, steps=2, vae_dir=str(tmp_path / "vae")))
    final = UniX.from_pretrained(result.final_dir)
    assert (final.config.vae_scale, final.config.vae_shift) == (trained.scale, trained.shift)
    want = load_vae(tmp_path / "vae").autoencoder.state_dict()
    got = final.vae.autoencoder.state_dict()
    assert want.keys() == got.keys() and all(torch.equal(want[k], got[k]) for k in want)

    train_vae(
        images,
        VAETrainConfig(image_size=32, latent_channels=8, steps=1, batch_size=4, stats_images=8),
        tmp_path / "vae8",
    )
    with pytest.raises(ValueError, match="8 channels"):
        train(tiny_config(data, tmp_path / "s2b", 2, steps=1, vae_dir=str(tmp_path / "vae8")))


def test_missing_processed_data_is_a_clear_error(tmp_path) -> None:
    cfg = TrainConfig(run_dir=str(tmp_path / "run"), data_dir=str(tmp_path / "nothing"))
    with pytest.raises(FileNotFoundError, match=r"processed\.parquet"):
        train(cfg, progress=False)


def test_stage_config_paths_follow_the_run_layout() -> None:
    params = {
        "run_dir": "runs/x",
        "image_size": 48,
        "steps": 7,
        "lr": 5e-4,
        "seed": 3,
        "betas": [0.9, 0.99],
        "nproc": 2,
        "figures_dir": "figures/x",
    }
    s1 = stage_config(1, params)
    assert (s1.stage, s1.run_dir, s1.data_dir, s1.init_from) == (
        1,
        "runs/x/stage1",
        "runs/x/data",
        "",
    )
    assert (s1.vae_dir, s1.latent_cache, s1.steps, s1.lr, s1.seed) == ("", "", 7, 5e-4, 3)
    assert s1.betas == (0.9, 0.99) and s1.trainable == ("vision", "connector", "und")
    s2 = stage_config(2, params)
    assert s2.run_dir == "runs/x/stage2" and s2.init_from == "runs/x/stage1/final"
    assert s2.vae_dir == "runs/x/vae"
    assert s2.latent_cache == "runs/x/latents/train_48.safetensors"
    assert s2.trainable == ("gen",) and s2.repa_weight == 0.5 and s2.warmup_steps == 2000
    s3 = stage_config(3, {**params, "vae_dir": "/vae/kl-f16", "latent_cache": ""})
    assert (s3.init_from, s3.vae_dir, s3.latent_cache) == ("runs/x/stage2/final", "/vae/kl-f16", "")
    assert s3.repa_weight == 0.0
    joint = stage_config(
        3,
        {**params, "init_from": "runs/y/final", "trainable": ["und", "gen"], "task_ratio": [1, 2]},
    )
    assert joint.init_from == "runs/y/final" and joint.task_ratio == (1, 2)
    assert stage_config(2, {"run_dir": "r"}).latent_cache == "r/latents/train_64.safetensors"
    with pytest.raises(ValueError, match="unknown parameter groups"):
        stage_config(1, {**params, "trainable": ["decoder"]})


def test_save_and_load_pretrained_round_trip(data, tmp_path) -> None:
    cfg = tiny_config(data, tmp_path / "unused", 2)
    model = _initial_model(cfg, data)
    with torch.no_grad():
        model.llm2vae.weight.normal_()  # not all-zero, so a dropped key would show
    save_pretrained(model, tmp_path / "m")
    loaded = UniX.from_pretrained(tmp_path / "m")
    assert loaded.config.to_dict() == model.config.to_dict()
    sd, ld = model.state_dict(), loaded.state_dict()
    assert sd.keys() == ld.keys()
    assert all(torch.equal(sd[k], ld[k]) for k in sd)
    # Stage 3's resolution: the position table is recomputed for the larger grid, no new keys.
    bigger = UniX.from_pretrained(tmp_path / "m", image_size_gen=256, max_latent_size=32)
    assert bigger.latent_pos_embed.shape == (32 * 32, model.config.hidden_size)
    # Positions are (row, col) embeddings: the old 16 x 16 grid is the new table's corner.
    corner = bigger.latent_pos_embed.view(32, 32, -1)[:16, :16].reshape(16 * 16, -1)
    assert torch.equal(corner, model.latent_pos_embed)
    assert bigger.state_dict().keys() == sd.keys()
    (tmp_path / "m" / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=r"model\.safetensors"):
        UniX.from_pretrained(tmp_path / "m")


def test_sampling_weights_of_a_checkpoint_are_the_exported_ema(data, tmp_path) -> None:
    for ema_decay in (0.5, 0.0):
        run = tmp_path / f"ema{ema_decay}"
        cfg = tiny_config(data, run, 2, steps=2, checkpoint_every=2, ema_decay=ema_decay)
        result = train(cfg, progress=False)
        exported = UniX.from_pretrained(result.final_dir).state_dict()
        model = UniX.from_pretrained(result.final_dir)
        with torch.no_grad():  # scramble, so that the load has to restore every weight
            for p in model.parameters():
                p.add_(1.0)
        ((_, ckpt_dir),) = list_checkpoints(run / "checkpoints")
        assert load_sampling_weights(ckpt_dir, model) == (ema_decay > 0)
        for name, value in model.state_dict().items():
            torch.testing.assert_close(value, exported[name], rtol=0, atol=0, msg=name)
        if ema_decay:  # the EMA differs from the raw weights it averages
            trained = load_file(str(ckpt_dir / "model.safetensors"))
            assert any(not torch.equal(trained[k], exported[k]) for k in trained)
