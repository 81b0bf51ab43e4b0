"""Checkpoints (unixlib.train.checkpoint) and exact resume of the training loop, including a
run killed with SIGKILL and resumed through the CLI (``python -m unixlib train --resume``)."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch import nn
from train_helpers import REPO_ROOT, data_run, losses, subprocess_env, tiny_config

from unixlib.train import checkpoint as ckpt
from unixlib.train.loop import train


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory):
    return data_run(tmp_path_factory)


def _objects(seed: int = 0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    opt = torch.optim.AdamW(model.parameters(), lr=0.1, betas=(0.9, 0.95))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 10))
    return model, opt, sched


def _step(model, opt, sched) -> None:
    model(torch.randn(5, 3)).square().sum().backward()
    opt.step()
    sched.step()
    opt.zero_grad()


def _names(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir())


def test_rotation_keeps_the_newest_and_ignores_temporaries(tmp_path) -> None:
    model, opt, sched = _objects()
    root = tmp_path / "checkpoints"
    assert ckpt.latest_checkpoint(root) is None and ckpt.list_checkpoints(root) == []
    for step in (1, 2, 3):
        ckpt.save_checkpoint(root, step, model, opt, sched, step * 4, {"k": 1}, limit=2)
    assert _names(root) == ["step_0000002", "step_0000003"]
    # A crash mid-write leaves a temporary folder: never listed, never "latest" ...
    (root / ".tmp-step_0000009").mkdir()
    (root / ".tmp-step_0000009" / "model.safetensors").write_bytes(b"half")
    assert [s for s, _ in ckpt.list_checkpoints(root)] == [2, 3]
    assert ckpt.latest_checkpoint(root) == root / "step_0000003"
    # ... and cleaned by the next save; limit 0 keeps everything.
    ckpt.save_checkpoint(root, 10, model, opt, sched, 40, {}, limit=0)
    assert _names(root) == ["step_0000002", "step_0000003", "step_0000010"]
    assert ckpt.latest_checkpoint(root) == root / "step_0000010"  # numeric, not mtime order
    assert sorted(p.name for p in (root / "step_0000010").iterdir()) == [
        "checksums.json",
        "config.json",
        "model.safetensors",
        "optimizer.pt",
        "rng.pt",
        "scheduler.pt",
        "state.json",
    ]


def test_round_trip_of_weights_optimizer_scheduler_rng_and_position(tmp_path) -> None:
    model, opt, sched = _objects()
    for _ in range(3):
        _step(model, opt, sched)
    random.seed(7)
    np.random.seed(7)
    path = ckpt.save_checkpoint(tmp_path, 3, model, opt, sched, 96, {"lr": 0.1}, extra={"x": 1})
    after = (random.random(), np.random.rand(), torch.rand(2))
    _step(model, opt, sched)  # what the saving run does next
    expected = {k: v.clone() for k, v in model.state_dict().items()}

    model2, opt2, sched2 = _objects(seed=1)  # other weights, fresh optimizer
    state = ckpt.load_checkpoint(path, model2, opt2, sched2)
    assert (state.step, state.data_position, state.state["x"]) == (3, 96, 1)
    assert json.loads((path / "config.json").read_text()) == {"lr": 0.1}
    assert sched2.last_epoch == 3 and sched2.get_last_lr() == pytest.approx([0.04])
    assert opt2.state_dict()["state"][0]["step"] == 3
    # RNG streams continue where the saving run stood.
    assert random.random() == after[0] and np.random.rand() == after[1]
    assert torch.equal(torch.rand(2), after[2])
    _step(model2, opt2, sched2)
    assert all(torch.equal(v, model2.state_dict()[k]) for k, v in expected.items())


def test_strict_loading_errors(tmp_path) -> None:
    model, opt, sched = _objects()
    path = ckpt.save_checkpoint(tmp_path, 1, model, opt, sched, 0, {})
    with pytest.raises(RuntimeError, match="Missing key"):
        ckpt.load_checkpoint(path, nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2), nn.Linear(2, 2)))
    with pytest.raises(RuntimeError, match="size mismatch"):
        ckpt.load_checkpoint(path, nn.Sequential(nn.Linear(3, 5), nn.Linear(5, 2)))
    with pytest.raises(FileNotFoundError, match=r"no state\.json"):
        ckpt.load_checkpoint(tmp_path, model)


def test_training_checkpoints_rotation_and_in_process_resume(data, tmp_path) -> None:
    """The diffusers-examples test: exactly which step_* folders exist after saving, rotation
    and resume; the resumed losses and weights equal an uninterrupted run's."""
    kw = {
        "task_ratio": (1, 1),
        "trainable": ("connector", "und", "gen"),
        "checkpoint_every": 2,
        "checkpoints_total_limit": 2,
    }
    run = tmp_path / "run"
    train(tiny_config(data, run, 3, steps=5, **kw), progress=False)
    assert _names(run / "checkpoints") == ["step_0000004", "step_0000005"]  # + the final step
    assert ckpt.latest_checkpoint(run / "checkpoints") == run / "checkpoints" / "step_0000005"
    (run / "checkpoints" / ".tmp-step_0000006").mkdir()  # a crashed write: ignored, cleaned
    result = train(tiny_config(data, run, 3, steps=8, **kw), resume=True, progress=False)
    assert _names(run / "checkpoints") == ["step_0000006", "step_0000008"]
    assert [m["step"] for m in result.metrics] == list(range(1, 9))

    ref = train(tiny_config(data, tmp_path / "ref", 3, steps=8, **kw), progress=False)
    assert losses(run) == losses(ref.run_dir)
    a = load_file(str(run / "final" / "model.safetensors"))
    b = load_file(str(ref.final_dir / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in b)

    # Resuming with another global batch cannot continue the same stream.
    with pytest.raises(ValueError, match="data position 32"):
        train(tiny_config(data, run, 3, steps=9, **{**kw, "batch_size": 2}), resume=True)
    # A fresh run in the same folder starts over and drops the old checkpoints.
    train(tiny_config(data, run, 3, steps=2, **kw), progress=False)
    assert _names(run / "checkpoints") == ["step_0000002"]
    assert len(losses(run)) == 2


def _logged_rows(path: Path) -> list[dict]:
    """Rows of a metrics.jsonl whose writer may have been cut mid-line (the partial one is left
    out)."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return rows


def test_killed_run_resumes_exactly_through_the_cli(data, tmp_path) -> None:
    """SIGKILL a CLI run between checkpoints, resume it with --resume: the per-step losses and
    final weights equal an uninterrupted run's exactly (CPU fp32, same thread count, every random
    draw a function of the seed and the stream position)."""
    run = tmp_path / "run"
    cfg = tiny_config(
        data,
        run,
        3,
        steps=2000,
        task_ratio=(1, 1),
        checkpoint_every=3,
        checkpoints_total_limit=2,
        trainable=("connector", "und", "gen"),
        repa_weight=0.5,
    )
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(cfg.to_dict()))
    cli = [sys.executable, "-m", "unixlib", "train", "--config", str(config_path), "--no-progress"]
    env = subprocess_env()
    proc = subprocess.Popen(
        cli, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            saved = ckpt.list_checkpoints(run / "checkpoints")
            logged = [r["step"] for r in _logged_rows(run / "metrics.jsonl")]
            if saved and logged and logged[-1] > saved[-1][0] and logged[-1] % 3:
                break  # a checkpoint exists and the run is between two of them
            time.sleep(0.02)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    checkpoint = ckpt.list_checkpoints(run / "checkpoints")[-1][0]
    killed = [r["loss"] for r in _logged_rows(run / "metrics.jsonl")]
    assert checkpoint >= 3 and len(killed) >= checkpoint
    steps = len(killed) + 3  # the resumed run recomputes the steps after its checkpoint

    done = subprocess.run(
        [*cli, "--resume", "--max-steps", str(steps)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"steps {checkpoint}->{steps}" in done.stdout

    ref = train(
        tiny_config(
            data,
            tmp_path / "ref",
            3,
            steps=steps,
            **{k: getattr(cfg, k) for k in ("task_ratio", "trainable", "repa_weight")},
        ),
        progress=False,
    )
    assert losses(run) == losses(ref.run_dir)
    assert killed == losses(ref.run_dir)[: len(killed)]  # the killed run was on the same path
    a = load_file(str(run / "final" / "model.safetensors"))
    b = load_file(str(ref.final_dir / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in b)
