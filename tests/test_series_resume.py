"""The series runner and preemption: a signal to the runner reaches the notebook kernel, the
training notebook stops with a checkpoint, manifest.json records it as interrupted (stage and
step), and ``reproduce --from NN --resume`` continues that stage to the uninterrupted losses."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import torch
from test_runs import _write_nb
from train_helpers import data_run, losses, tiny_config

from unixlib.cli.main import main
from unixlib.experiments import series as runs
from unixlib.train import checkpoint as ckpt
from unixlib.train.loop import train

TRAIN_BODY = """
import dataclasses, json
from pathlib import Path
from unixlib.train.config import TrainConfig
from unixlib.train.launch import run_stage
cfg = TrainConfig.from_dict(json.loads(Path(config_path).read_text()))
run_stage(dataclasses.replace(cfg, steps=steps), resume=resume)  # as notebooks 02-04 call it
"""


def _series(tmp_path: Path, config_path: Path) -> tuple[Path, Path, Path]:
    nbs, profiles, run_dir = tmp_path / "nbs", tmp_path / "profiles", tmp_path / "series"
    nbs.mkdir()
    profiles.mkdir()
    common = f'run_dir = "{run_dir}"\nfigures_dir = "{tmp_path / "fig"}"\nseed = 0\n'
    _write_nb(
        nbs / "02_train.ipynb",
        common + f'config_path = "{config_path}"\nsteps = 2000\nresume = False\n',
        TRAIN_BODY,
    )
    _write_nb(
        nbs / "03_after.ipynb", common, "from pathlib import Path\nPath(run_dir, 'after').touch()"
    )
    (profiles / "t.yaml").write_text(f"parameters: {{run_dir: '{run_dir}'}}\n")
    return nbs, profiles, run_dir


def test_resume_needs_from_and_a_training_notebook(tmp_path, capsys) -> None:
    nbs, profiles, _ = _series(tmp_path, tmp_path / "config.json")
    kw = {"notebook_dir": nbs, "profile_dir": profiles, "progress": False}
    with pytest.raises(runs.SeriesError, match="--resume continues the notebook given by --from"):
        runs.reproduce("t", resume=True, **kw)
    with pytest.raises(runs.SeriesError, match="--resume: 03_after trains no stage to continue"):
        runs.reproduce("t", start="03", resume=True, **kw)
    assert main(["reproduce", "--resume"]) == 1
    assert "--resume continues the notebook given by --from NN" in capsys.readouterr().err


def _signal_when_between_checkpoints(stage_dir: Path, every: int, done: threading.Event) -> None:
    """From a thread: SIGTERM to this process (the runner) once the notebook's training has a
    checkpoint and a step after it."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not done.is_set():
        saved = ckpt.list_checkpoints(stage_dir / "checkpoints")
        path = stage_dir / "metrics.jsonl"
        logged = len(path.read_text().splitlines()) if path.is_file() else 0
        if saved and logged > saved[-1][0] and logged % every:
            os.kill(os.getpid(), signal.SIGTERM)
            return
        time.sleep(0.05)


@pytest.mark.slow
def test_a_signal_to_the_runner_interrupts_the_stage_and_resume_continues_it(
    tmp_path_factory, tmp_path, monkeypatch
) -> None:
    data = data_run(tmp_path_factory)
    stage_dir = tmp_path / "stage"
    kw = {"task_ratio": (1, 1), "trainable": ("gen",), "checkpoint_every": 5}
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(tiny_config(data, stage_dir, 2, **kw).to_dict()))
    nbs, profiles, run_dir = _series(tmp_path, config_path)
    monkeypatch.setenv("OMP_NUM_THREADS", str(torch.get_num_threads()))  # the kernel's threads
    series = {"notebook_dir": nbs, "profile_dir": profiles, "progress": False}

    done = threading.Event()
    sender = threading.Thread(target=_signal_when_between_checkpoints, args=(stage_dir, 5, done))
    sender.start()
    try:
        with pytest.raises(runs.SeriesInterrupted) as caught:
            runs.reproduce("t", **series)
    finally:
        done.set()
        sender.join()
    entry = json.loads((run_dir / "manifest.json").read_text())["notebooks"][0]
    step = ckpt.list_checkpoints(stage_dir / "checkpoints")[-1][0]
    assert (entry["notebook"], entry["status"], entry["stage"], entry["step"]) == (
        "02_train",
        "interrupted",
        2,
        step,
    )
    assert step % 5 and len(losses(stage_dir)) == step  # saved between two checkpoints
    assert str(caught.value).startswith(
        f"02_train interrupted: stage 2 stopped by SIGTERM after step {step}/2000"
    )
    assert str(caught.value).endswith("reproduce --profile t --from 02 --resume")
    assert not (run_dir / "after").exists()

    steps = step + 3
    runs.reproduce("t", start="02", resume=True, overrides=[f"02_train.steps={steps}"], **series)
    entries = json.loads((run_dir / "manifest.json").read_text())["notebooks"]
    assert [(e["notebook"], e["status"]) for e in entries] == [
        ("02_train", "ok"),
        ("03_after", "ok"),
    ]
    ref = train(tiny_config(data, tmp_path / "ref", 2, **{**kw, "steps": steps}), progress=False)
    assert losses(stage_dir) == losses(ref.run_dir)
