"""Data parallelism: world=2 ranks read the examples of one process with a double batch, and two
gloo processes (torchrun, CPU) train to the weights of one process with batch 2B."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from train_helpers import REPO_ROOT, data_run, losses, subprocess_env, tiny_config

from unixlib.data.processed import load_processed
from unixlib.model.config import preset
from unixlib.train.batches import build_source, example_seed, stream_index, task_counts
from unixlib.train.loop import train
from unixlib.train.setup import build_model, model_config


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


def _ids(mb, task: str) -> list[int]:
    """Stream positions of a micro-batch's examples of ``task`` (text-dropped ones included)."""
    pairs = zip(mb.batch.sample_ids.tolist(), mb.batch.tasks, strict=True)
    return [k for k, t in pairs if (t == "und") == (task == "und")]


def test_ddp_two_gloo_processes_match_one_process_with_double_batch(data, tmp_path) -> None:
    """torchrun --nproc_per_node 2 on CPU (gloo), batch 2 each, against one process with batch
    4: the loop divides each loss by the step's global token counts, so the averaged gradients,
    hence the losses and weights, agree up to fp32 summation order (different padding)."""
    kw = {"steps": 3, "task_ratio": (1, 1), "repa_weight": 0.5,
          "trainable": ("vision", "connector", "und", "gen")}  # fmt: skip
    cfg = tiny_config(data, tmp_path / "ddp", 3, batch_size=2, **kw)
    config_path = tmp_path / "ddp.json"
    config_path.write_text(json.dumps(cfg.to_dict()))
    # --standalone: a local c10d rendezvous on a free port (what unixlib.train.launch uses);
    # a static master_addr/port rendezvous occasionally hung at worker teardown here.
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "unixlib", "train", "--config", str(config_path), "--no-progress"]  # fmt: skip
    env = {**subprocess_env(), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-3000:])
    assert "world 2" in done.stdout

    ref_cfg = tiny_config(data, tmp_path / "one", 3, batch_size=4, **kw)
    ref = train(ref_cfg, progress=False)
    for key in ("ce", "flow", "repa"):
        assert losses(tmp_path / "ddp", key) == pytest.approx(losses(ref.run_dir, key), rel=1e-5)
    a = load_file(str(tmp_path / "ddp" / "final" / "model.safetensors"))
    b = load_file(str(ref.final_dir / "model.safetensors"))
    assert a.keys() == b.keys()
    torch.manual_seed(ref_cfg.seed)  # the initial weights both runs started from
    init = build_model(ref_cfg, load_processed(data)[1]).state_dict()
    # SigLIP's key biases have an analytically zero gradient (softmax ignores a shift of a
    # query's logits, and SigLIP has no q/k norm), so they move by rounding noise that Adam with
    # eps 1e-15 scales to full steps; they do not change the model's outputs either way.
    inert = {k for k in b if k.startswith("vision_tower.") and k.endswith("k_proj.bias")}
    assert len(inert) == ref_cfg.model_overrides["vit_num_layers"]
    update = max((b[k] - init[k]).abs().max().item() for k in b.keys() - inert)
    worst = max((a[k] - b[k]).abs().max().item() for k in b.keys() - inert)
    assert update > 1e-3 and worst < 1e-5, (update, worst)
