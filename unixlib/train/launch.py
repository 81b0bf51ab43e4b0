"""Run a stage in this process, or hand it to ``torchrun`` when ``nproc > 1``.

Notebooks call :func:`run_stage`; with several processes the same entry point
(``python -m unixlib train --config <run_dir>/launch_config.json``) runs under torchrun in a
subprocess whose log is streamed (DDP, or FSDP as ``cfg.parallel`` says: auto = FSDP for the
``paper`` preset), and the results are read back from the run directory.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from unixlib.config import project_path
from unixlib.train import preemption
from unixlib.train.config import TrainConfig
from unixlib.train.loop import train


def read_metrics(run_dir: str | Path) -> pd.DataFrame:
    """``metrics.jsonl`` of a run as a DataFrame (one row per logged step)."""
    path = project_path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: the stage has not run")
    return pd.read_json(path, lines=True)


def torchrun_command(
    config_path: str | Path,
    nproc: int,
    resume: bool = False,
    signals: Sequence[str] = preemption.DEFAULT_SIGNALS,
) -> list[str]:
    """``torchrun --standalone --nproc_per_node N -m unixlib train --config <file>``: a local
    c10d rendezvous on a free port (a static master address/port occasionally hung at worker
    teardown), no per-step bar, ``--resume`` when asked. torchrun passes the preemption
    ``signals`` on to its workers (it would die of SIGUSR1 otherwise) and gives them its
    shutdown timeout (30 s) to write the checkpoint."""
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        f"--signals-to-handle={preemption.torchrun_signals(signals)}",
        "-m",
        "unixlib",
        "train",
        "--config",
        str(config_path),
        "--no-progress",
    ]
    return [*cmd, "--resume"] if resume else cmd


def run_stage(cfg: TrainConfig, nproc: int = 1, resume: bool = False) -> Path:
    """Train ``cfg``; returns the ``final/`` model directory. ``resume`` continues from the
    newest intact checkpoint of ``cfg.run_dir``. A preemption signal (``cfg.preempt_signals``,
    passed on to torchrun when ``nproc > 1``) raises :class:`preemption.Preempted` once the
    checkpoint of the step reached is written."""
    if nproc <= 1:
        return train(cfg, resume=resume).final_dir
    run_dir = project_path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    preemption.clear(run_dir)  # the workers write it again if they are stopped
    config_path = run_dir / "launch_config.json"
    config_path.write_text(json.dumps(cfg.to_dict(), indent=2))
    cmd = torchrun_command(config_path, nproc, resume, cfg.preempt_signals)
    print(" ".join(cmd), flush=True)
    pids: list[int] = []
    with (
        preemption.forward(cfg.preempt_signals, lambda: pids),
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc,
    ):
        pids.append(proc.pid)
        for line in proc.stdout:  # stream the workers' log into the notebook
            print(line, end="", flush=True)
    stopped = preemption.Preempted.read(run_dir)
    if stopped is not None:
        raise stopped
    if proc.returncode:
        raise RuntimeError(f"torchrun exited with {proc.returncode}; see the log above")
    return run_dir / "final"
