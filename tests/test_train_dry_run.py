"""``python -m unixlib train ... --dry-run`` (unixlib.train.plan): the plan of a run and its
checks, printed without training or writing anything."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from train_helpers import data_run, tiny_config

from unixlib.cli.main import main
from unixlib.train import disk
from unixlib.train.loop import train
from unixlib.train.plan import checkpoint_bytes, count_parameters, model_config


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory):
    return data_run(tmp_path_factory)


def _config(cfg, path: Path) -> str:
    path.write_text(json.dumps(cfg.to_dict()))
    return str(path)


def test_dry_run_prints_the_plan_and_writes_nothing(data, tmp_path, capsys) -> None:
    run = tmp_path / "run"
    cfg = tiny_config(data, run, 1, steps=6, checkpoint_every=2, grad_accum=2)
    assert main(["train", "--config", _config(cfg, tmp_path / "c.json"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "train --dry-run: stage 1 (understanding SFT), nothing is trained" in out
    assert "steps        0 -> 6 (fresh)" in out
    assert "4 x accum 2 x world 1 = global 8 (single process)" in out
    assert f"run dir      {run}: checkpoints every 2 steps (full, keep 2," in out
    assert "preemption   SIGTERM, SIGUSR1: checkpoint at the step reached, exit 75" in out
    assert "[ok  ] data:" in out and "[FAIL]" not in out
    assert out.rstrip().endswith("dry run passed: the run can start")
    assert not run.exists()  # no lock, no config.json, nothing


def test_checkpoint_size_estimate_matches_a_written_checkpoint(data, tmp_path) -> None:
    """4 bytes a weight, 8 of AdamW moments a trained weight (+ 4 of EMA): within 5% of the
    files written (the rest: step counters, RNG states, JSON)."""
    for ema in (0.0, 0.5):
        cfg = tiny_config(data, tmp_path / f"run{ema}", 1, steps=2, ema_decay=ema)
        total, trained = count_parameters(model_config(cfg)[0], cfg.trainable)
        estimate = checkpoint_bytes(total, trained, ema > 0)
        run = train(cfg, progress=False).run_dir
        written = disk.directory_bytes(run / "checkpoints" / "step_0000002")
        assert 0.95 < estimate / written < 1.0, (estimate, written)


def test_dry_run_of_a_resume_names_the_checkpoint_and_fails_on_damage(
    data, tmp_path, capsys
) -> None:
    run = tmp_path / "run"
    cfg = tiny_config(data, run, 1, steps=4, checkpoint_every=2)
    train(cfg, progress=False)
    config = _config(cfg, tmp_path / "c.json")
    capsys.readouterr()
    assert main(["train", "--config", config, "--dry-run", "--resume", "--max-steps", "8"]) == 0
    out = capsys.readouterr().out
    assert "steps        4 -> 8 (resume from step_0000004)" in out
    assert f"[ok  ] resume: {run / 'checkpoints' / 'step_0000004'} is intact" in out
    for step in ("step_0000002", "step_0000004"):
        (run / "checkpoints" / step / "rng.pt").unlink()
    assert main(["train", "--config", config, "--dry-run", "--resume"]) == 1
    out = capsys.readouterr().out
    assert "[FAIL] resume: no intact checkpoint under" in out and "1 problem(s)" in out
    # a fresh run instead would remove them: the plan says so
    assert main(["train", "--config", config, "--dry-run"]) == 0
    assert "steps        0 -> 4 (fresh, removes 2 earlier checkpoints)" in capsys.readouterr().out


def test_missing_inputs_and_a_small_disk_are_listed(data, tmp_path, capsys, monkeypatch) -> None:
    cfg = tiny_config(data, tmp_path / "run", 2, init_from=str(tmp_path / "nope"), steps=10)
    usage = shutil.disk_usage(tmp_path)._replace(free=1024)
    monkeypatch.setattr(disk.shutil, "disk_usage", lambda p: usage)
    assert main(["train", "--config", _config(cfg, tmp_path / "c.json"), "--dry-run"]) == 1
    out = capsys.readouterr().out
    assert f"[FAIL] init_from: {tmp_path / 'nope'} missing" in out
    assert "-> train the previous stage first" in out
    assert "[FAIL] disk:" in out and "1 at once" in out and "0.0 MB free" in out
    assert "2 problem(s): fix them before launching" in out
