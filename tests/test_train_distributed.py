"""Data parallelism: world=2 ranks read the examples of one process with a double batch, and two
gloo processes (torchrun, CPU; DDP or FSDP) train to the weights of one process with batch 2B;
checkpoints move between FSDP and one process."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from train_helpers import REPO_ROOT, data_run, losses, subprocess_env, tiny_config

from unixlib.data.processed import load_processed
from unixlib.model.config import preset
from unixlib.model.unix import UniX
from unixlib.train.batches import build_source, example_seed, stream_index, task_counts
from unixlib.train.config import TrainConfig
from unixlib.train.launch import torchrun_command
from unixlib.train.loop import train
from unixlib.train.setup import build_model, group_of, model_config


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory):
    return data_run(tmp_path_factory)


def test_stream_index_is_a_permutation_per_epoch() -> None:
    n = 7
    first = [stream_index(3, k, n) for k in range(n)]
    second = [stream_index(3, k, n) for k in range(n, 2 * n)]
    assert sorted(i for i, _ in first) == sorted(i for i, _ in second) == list(range(n))
    assert {e for _, e in first} == {0} and {e for _, e in second} == {1}
    assert [i for i, _ in first] != [i for i, _ in second]  # reshuffled each epoch
    assert [stream_index(4, k, n)[0] for k in range(n)] != [i for i, _ in first]
    assert stream_index(3, 5, n) == first[5]  # a pure function: no state between calls


def test_task_counts() -> None:
    assert task_counts(4, (1, 1)) == (2, 2)
    assert task_counts(3, (1, 2)) == (1, 2)
    assert task_counts(6, (1, 4)) == (1, 5)  # round(1.2)
    assert task_counts(5, (1, 0)) == (5, 0) and task_counts(5, (0, 1)) == (0, 5)
    assert task_counts(3, (1, 1)) == (2, 1)  # round(1.5) = 2 (round half to even)
    assert task_counts(1, (1, 1)) == (0, 1)  # round(0.5) = 0


def test_example_seed_is_stable_and_distinct() -> None:
    # A hand-checkable derivation (numpy SeedSequence), not Python's salted hash().
    expected = int(np.random.SeedSequence([0, 5]).generate_state(1, np.uint64)[0] >> 2)
    assert example_seed(0, 5) == expected < 2**62
    assert len({example_seed(s, k) for s in range(3) for k in range(50)}) == 150


def test_two_ranks_read_the_double_batch_of_one_process(data, tmp_path) -> None:
    cfg1 = tiny_config(data, tmp_path, 3, task_ratio=(1, 1), batch_size=4, grad_accum=2)
    cfg2 = tiny_config(data, tmp_path, 3, task_ratio=(1, 1), batch_size=2, grad_accum=2)
    mc = preset("tiny", **model_config(cfg1, load_processed(data)[1]))
    one = build_source(cfg1, mc)
    ranks = [build_source(cfg2, mc, world_size=2, rank=r) for r in (0, 1)]
    for step, micro in ((0, 0), (0, 1), (3, 1), (40, 0)):  # step 40 wraps into a later epoch
        whole = one.micro_batch(step, micro)
        parts = [src.micro_batch(step, micro) for src in ranks]
        for task in ("und", "gen"):
            assert _ids(parts[0], task) + _ids(parts[1], task) == _ids(whole, task)
        assert torch.equal(torch.cat([p.timesteps for p in parts]), whole.timesteps)
        assert [s for p in parts for s in p.noise_seeds] == whole.noise_seeds
        assert torch.equal(torch.cat([p.gen_images for p in parts]), whole.gen_images)
        assert torch.equal(torch.cat([p.vit_pixels for p in parts]), whole.vit_pixels)
        assert sum(p.n_ce for p in parts) == whole.n_ce
        assert sum(p.n_flow for p in parts) == whole.n_flow


def test_cached_latents_without_repa_skip_the_pixels_only(data, tmp_path) -> None:
    """gen_pixels=False (latents cached, no REPA) leaves every other field of a micro-batch as is."""
    cfg = tiny_config(data, tmp_path, 3, task_ratio=(1, 1), batch_size=4)
    mc = preset("tiny", **model_config(cfg, load_processed(data)[1]))
    with_pixels, without = build_source(cfg, mc), build_source(cfg, mc)
    without.gen_pixels = False
    for step in (0, 7):
        a, b = with_pixels.micro_batch(step, 0), without.micro_batch(step, 0)
        assert b.gen_images is None and a.gen_images.shape[0] == a.n_gen == b.n_gen == 2
        assert torch.equal(a.batch.input_ids, b.batch.input_ids)
        assert torch.equal(a.timesteps, b.timesteps) and a.noise_seeds == b.noise_seeds
        assert a.gen_indices == b.gen_indices and (a.n_ce, a.n_flow) == (b.n_ce, b.n_flow)
        assert torch.equal(a.vit_pixels, b.vit_pixels)


def _ids(mb, task: str) -> list[int]:
    """Stream positions of a micro-batch's examples of ``task`` (text-dropped ones included)."""
    pairs = zip(mb.batch.sample_ids.tolist(), mb.batch.tasks, strict=True)
    return [k for k, t in pairs if (t == "und") == (task == "und")]


def _torchrun(cfg: TrainConfig, resume: bool = False) -> str:
    """Run ``cfg`` as ``torchrun --nproc_per_node 2 -m unixlib train`` on CPU; returns stdout."""
    config_path = Path(cfg.run_dir).with_suffix(".json")
    config_path.write_text(json.dumps(cfg.to_dict()))
    cmd = torchrun_command(config_path, nproc=2, resume=resume)  # what run_stage launches
    env = {**subprocess_env(), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-3000:])
    return done.stdout


def _weights(run_dir: Path, file: str = "final") -> dict[str, torch.Tensor]:
    """A checkpoint's ``.safetensors`` file, or (``final``) the exported model's whole state
    (its VAE lives in ``final/vae/``)."""
    if file == "final":
        return UniX.from_pretrained(run_dir / "final").state_dict()
    return load_file(str(run_dir / file))


def _initial_model(data, cfg: TrainConfig) -> torch.nn.Module:
    torch.manual_seed(cfg.seed)  # the initial weights every run of ``cfg`` starts from
    return build_model(cfg, load_processed(data)[1])


def _trained_names(model: torch.nn.Module, cfg: TrainConfig) -> list[str]:
    """The parameters ``cfg`` trains, in the optimizer's order."""
    return [n for n, _ in model.named_parameters() if group_of(n) in cfg.trainable]


def _inert(cfg: TrainConfig, keys) -> set[str]:
    """SigLIP's key biases have an analytically zero gradient (softmax ignores a shift of a
    query's logits, and SigLIP has no q/k norm), so they move by rounding noise that Adam with
    eps 1e-15 scales to full steps; they do not change the model's outputs either way."""
    inert = {k for k in keys if k.startswith("vision_tower.") and k.endswith("k_proj.bias")}
    assert len(inert) == cfg.model_overrides["vit_num_layers"]
    return inert if "vision" in cfg.trainable else set()


def _assert_same_weights(a, b, init, cfg: TrainConfig) -> None:
    """``a`` made the update ``b`` made (fp32 summation order aside), and the weights ``cfg``
    freezes are bit-identical to ``init`` in both."""
    assert a.keys() == b.keys() == init.keys()
    compared = b.keys() - _inert(cfg, b)
    update = max((b[k] - init[k]).abs().max().item() for k in compared)
    worst = max((a[k] - b[k]).abs().max().item() for k in compared)
    assert update > 1e-3 and worst < 1e-5, (update, worst)
    frozen = [k for k in b if group_of(k) not in cfg.trainable]
    assert frozen and all(torch.equal(a[k], init[k]) and torch.equal(b[k], init[k]) for k in frozen)


def test_ddp_two_gloo_processes_match_one_process_with_double_batch(data, tmp_path) -> None:
    """torchrun --nproc_per_node 2 on CPU (gloo), batch 2 each, against one process with batch
    4: the loop divides each loss by the step's global token counts, so the averaged gradients,
    hence the losses and weights, agree up to fp32 summation order (different padding)."""
    kw = {
        "steps": 3,
        "task_ratio": (1, 1),
        "repa_weight": 0.5,
        "parallel": "ddp",
        "trainable": ("vision", "connector", "und", "gen"),
    }
    assert "world 2 (ddp)" in _torchrun(tiny_config(data, tmp_path / "ddp", 3, batch_size=2, **kw))

    ref_cfg = tiny_config(data, tmp_path / "one", 3, batch_size=4, **kw)
    ref = train(ref_cfg, progress=False)
    for key in ("ce", "flow", "repa"):
        assert losses(tmp_path / "ddp", key) == pytest.approx(losses(ref.run_dir, key), rel=1e-5)
    init = _initial_model(data, ref_cfg).state_dict()
    _assert_same_weights(_weights(tmp_path / "ddp"), _weights(ref.run_dir), init, ref_cfg)


def test_ddp_with_a_token_budget_matches_one_process_without(data, tmp_path) -> None:
    """max_tokens splits each rank's micro-batch into pieces (the ranks run as many as the
    rank with the most: DDP's forwards are collectives); the step is the unsplit one's."""
    kw = {"steps": 2, "task_ratio": (1, 1), "parallel": "ddp", "trainable": ("connector", "gen")}
    out = _torchrun(tiny_config(data, tmp_path / "ddp", 3, batch_size=2, max_tokens=120, **kw))
    assert "world 2 (ddp)" in out and "max_tokens 120" in out
    ref_cfg = tiny_config(data, tmp_path / "one", 3, batch_size=4, **kw)
    ref = train(ref_cfg, progress=False)
    for key in ("ce", "flow"):
        assert losses(tmp_path / "ddp", key) == pytest.approx(losses(ref.run_dir, key), rel=1e-5)
    init = _initial_model(data, ref_cfg).state_dict()
    _assert_same_weights(_weights(tmp_path / "ddp"), _weights(ref.run_dir), init, ref_cfg)


def test_fsdp_two_gloo_processes_match_one_process_with_double_batch(data, tmp_path) -> None:
    """FSDP2 on two gloo processes with gradient accumulation (the reduce-scatter is skipped on
    the first micro-batch) makes one process's update with the double batch: the reduce-scatter
    averages as DDP does and clipping sees the global norm. This stage trains SigLIP (sharded per
    layer), the connector and the gen branch, so every MoT block is a sharded unit holding a
    trained and a frozen branch; the frozen weights stay bit-identical. The checkpoint holds the
    gathered weights and one process's index-keyed optimizer state; ``final/`` the EMA, kept
    over each rank's shards and gathered at the end."""
    kw = {
        "steps": 3,
        "task_ratio": (1, 1),
        "repa_weight": 0.5,
        "grad_accum": 2,
        "ema_decay": 0.5,
        "parallel": "fsdp",
        "trainable": ("vision", "connector", "gen"),
    }
    out = _torchrun(tiny_config(data, tmp_path / "fsdp", 3, batch_size=2, **kw))
    assert "world 2 (fsdp)" in out

    ref_cfg = tiny_config(data, tmp_path / "one", 3, batch_size=4, **kw)
    ref = train(ref_cfg, progress=False)
    for key in ("ce", "flow", "repa", "grad_norm"):
        assert losses(tmp_path / "fsdp", key) == pytest.approx(losses(ref.run_dir, key), rel=1e-5)
    init = _initial_model(data, ref_cfg)
    step = "checkpoints/step_0000003/"
    for file in (step + "model.safetensors", "final"):  # raw, EMA
        _assert_same_weights(
            _weights(tmp_path / "fsdp", file),
            _weights(ref.run_dir, file),
            init.state_dict(),
            ref_cfg,
        )
    raw, ema = _weights(tmp_path / "fsdp", step + "model.safetensors"), _weights(tmp_path / "fsdp")
    assert not torch.equal(raw["connector.0.weight"], ema["connector.0.weight"])

    oa = torch.load(tmp_path / "fsdp" / step / "optimizer.pt", weights_only=True)
    ob = torch.load(ref.run_dir / step / "optimizer.pt", weights_only=True)
    assert oa["param_groups"] == ob["param_groups"] and oa["state"].keys() == ob["state"].keys()
    names = _trained_names(init, ref_cfg)
    inert = {i for i, k in enumerate(names) if k in _inert(ref_cfg, raw)}
    for i in ob["state"].keys() - inert:
        assert oa["state"][i]["step"] == ob["state"][i]["step"] == 3
        torch.testing.assert_close(
            oa["state"][i]["exp_avg"], ob["state"][i]["exp_avg"], rtol=1e-4, atol=1e-7
        )


def test_checkpoints_move_between_one_process_and_fsdp(data, tmp_path) -> None:
    """One process (step 1) -> FSDP on two processes resumes (steps 2-3) -> one process resumes
    (step 4): the losses and the EMA-exported weights of one uninterrupted process. A generation
    stage with und examples: the frozen SigLIP, kept whole under FSDP, also gives REPA targets;
    the EMA over the local shards is gathered into the checkpoint and restored from it."""
    kw = {"task_ratio": (1, 1), "ema_decay": 0.5, "parallel": "fsdp"}
    run = tmp_path / "run"
    train(tiny_config(data, run, 2, steps=1, batch_size=4, **kw), progress=False)
    out = _torchrun(tiny_config(data, run, 2, steps=3, batch_size=2, **kw), resume=True)
    assert "steps 1->3, device cpu (fp32), world 2 (fsdp)" in out  # tiny_config: "no"
    train(tiny_config(data, run, 2, steps=4, batch_size=4, **kw), resume=True, progress=False)

    ref_cfg = tiny_config(data, tmp_path / "ref", 2, steps=4, batch_size=4, **kw)
    ref = train(ref_cfg, progress=False)
    assert ref_cfg.trainable == ("gen",) and ref_cfg.repa_weight == 0.5
    for key in ("ce", "flow", "repa", "grad_norm"):
        assert losses(run, key) == pytest.approx(losses(ref.run_dir, key), rel=1e-5)
    init = _initial_model(data, ref_cfg)
    _assert_same_weights(_weights(run), _weights(ref.run_dir), init.state_dict(), ref_cfg)
    ema = load_file(str(run / "checkpoints" / "step_0000004" / "ema.safetensors"))
    assert ema.keys() == {n.replace(".", "__") for n in _trained_names(init, ref_cfg)}


def test_parallel_mode_is_validated_and_auto_picks_fsdp_for_the_paper_preset() -> None:
    with pytest.raises(ValueError, match="parallel must be auto, ddp or fsdp, got 'zero'"):
        TrainConfig(parallel="zero")
    assert TrainConfig().parallel_mode() == "ddp"
    assert TrainConfig(preset="paper").parallel_mode() == "fsdp"
    assert TrainConfig(preset="paper", parallel="ddp").parallel_mode() == "ddp"
    assert TrainConfig(parallel="fsdp").parallel_mode() == "fsdp"
    # Stages 2-3 load the previous stage's model and keep the default preset name: the model's
    # shape decides (notebooks 03/04 do not pass ``preset``).
    later = TrainConfig(stage=2, init_from="runs/paper/stage1/final")
    assert later.preset == "tiny" and later.parallel_mode() == "ddp"
    assert later.parallel_mode(preset("paper", mot=False)) == "fsdp"
    assert later.parallel_mode(preset("small")) == later.parallel_mode(preset("tiny")) == "ddp"


def test_sharded_checkpoints_resume_and_load_into_one_process(data, tmp_path) -> None:
    """checkpoint_format sharded (torch.distributed.checkpoint): a one-process resume continues
    the loss sequence of an uninterrupted run, and the checkpoint's weights (EMA applied) load
    into a plain model equal to the exported final/ model."""
    kw = {"steps": 3, "task_ratio": (1, 1), "ema_decay": 0.5, "checkpoint_format": "sharded"}
    run = tmp_path / "run"
    train(tiny_config(data, run, 2, **{**kw, "steps": 2}), progress=False)
    step = run / "checkpoints" / "step_0000002"
    assert (step / "sharded" / ".metadata").is_file() and not (step / "optimizer.pt").exists()
    train(tiny_config(data, run, 2, **kw), resume=True, progress=False)
    ref = train(tiny_config(data, tmp_path / "ref", 2, **kw), progress=False)
    for key in ("flow", "repa", "grad_norm"):
        assert losses(run, key) == pytest.approx(losses(ref.run_dir, key), rel=1e-5)

    from unixlib.train.checkpoint import load_sampling_weights

    model = UniX.from_pretrained(run / "final")
    final = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    assert load_sampling_weights(run / "checkpoints" / "step_0000003", model)  # EMA used
    assert all(torch.equal(final[k], v) for k, v in model.state_dict().items())


def test_fsdp_sharded_checkpoint_loads_into_one_process(data, tmp_path) -> None:
    """Two gloo ranks under FSDP write their shards; one plain process loads them (DCP
    reshards) and holds the weights the run exported."""
    kw = {
        "steps": 2,
        "batch_size": 2,
        "task_ratio": (1, 1),
        "parallel": "fsdp",
        "checkpoint_format": "sharded",
    }
    out = _torchrun(tiny_config(data, tmp_path / "fsdp", 2, **kw))
    assert "world 2 (fsdp)" in out
    step = tmp_path / "fsdp" / "checkpoints" / "step_0000002"
    assert len(list((step / "sharded").glob("*.distcp"))) == 2  # one file per rank

    from unixlib.train.checkpoint import load_sampling_weights

    model = UniX.from_pretrained(tmp_path / "fsdp" / "final")
    final = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    assert not load_sampling_weights(step, model)  # no EMA in this run
    assert all(torch.equal(final[k], v) for k, v in model.state_dict().items())
    assert TrainConfig().sharded_checkpoints(preset("paper"), sharded=True)
    assert not TrainConfig().sharded_checkpoints(preset("tiny"), sharded=True)
