"""scripts/slurm/train_paper.sbatch: its header agrees with the trainer (the signal it listens
to, 8 GPUs, one torchrun per node, requeue), and its torchrun line runs, here with two CPU
processes and ``--dry-run`` (the plan is printed, nothing is trained)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from train_helpers import REPO_ROOT, data_run, losses, subprocess_env, tiny_config

from unixlib.train import checkpoint as ckpt
from unixlib.train import preemption
from unixlib.train.config import TrainConfig
from unixlib.train.loop import train

SCRIPT = REPO_ROOT / "scripts" / "slurm" / "train_paper.sbatch"


def _directives() -> dict[str, str]:
    """``#SBATCH --key=value`` lines as {key: value} ("" for a flag)."""
    out = {}
    for line in SCRIPT.read_text().splitlines():
        m = re.match(r"#SBATCH\s+--([\w-]+)(?:=(\S+))?", line)
        if m:
            out[m.group(1)] = m.group(2) or ""
    return out


def _default(name: str) -> str:
    """The script's default of ``NAME=${NAME:-default}``."""
    m = re.search(rf"^{name}=\$\{{{name}:-([^}}]+)\}}", SCRIPT.read_text(), re.M)
    assert m, name
    return m.group(1)


def _torchrun_block() -> str:
    text = SCRIPT.read_text()
    start, end = text.index("\nSTAGE="), text.index("# <<< torchrun")
    return text[start:end]


def test_header_agrees_with_the_trainer_and_the_paper_profile() -> None:
    assert subprocess.run(["bash", "-n", str(SCRIPT)]).returncode == 0
    d = _directives()
    assert {"nodes", "time", "requeue", "gpus-per-node", "ntasks-per-node"} <= d.keys()
    paper = yaml.safe_load((REPO_ROOT / "papermill_runs/profiles/paper.yaml").read_text())
    gpus = paper["requirements"]["gpus"]
    assert d["gpus-per-node"] == _default("GPUS_PER_NODE") == str(gpus) == "8"
    assert d["ntasks-per-node"] == "1"  # one torchrun per node, it starts the 8 workers

    m = re.fullmatch(r"B:(\w+)@(\d+)", d["signal"])  # to the batch shell, seconds ahead
    assert m, d["signal"]
    name, ahead = f"SIG{m.group(1)}", int(m.group(2))
    assert name in TrainConfig().preempt_signals  # the trainer listens to it
    assert f"trap 'on_signal {m.group(1)}' {m.group(1)}" in SCRIPT.read_text()
    handled = re.search(r"--signals-to-handle=(\S+)", _torchrun_block()).group(1).split(",")
    assert set(TrainConfig().preempt_signals) <= set(handled)  # torchrun passes them on
    assert int(_default("GRACE_S")) < ahead  # the checkpoint is written before the limit


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_torchrun_line_runs_with_dry_run(tmp_path) -> None:
    """The script's own torchrun command (stage 2, 2 CPU processes instead of 8 GPUs): rank 0
    prints the plan of the FSDP run and its checks; nothing is trained or written. Inputs of
    the paper profile that are not on this machine are its failed checks (exit status 1)."""
    run_dir = tmp_path / "stage2"
    env = {
        **subprocess_env(),
        "OMP_NUM_THREADS": "1",
        "PYTHON": sys.executable,
        "GPUS_PER_NODE": "2",
        "SLURM_NNODES": "1",
        "SLURM_JOB_ID": "4242",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(_free_port()),
        "STAGE": "2",
        "RUN_DIR": str(run_dir),
    }
    line = _torchrun_block() + '\n"${TORCHRUN[@]}" --dry-run\n'
    done = subprocess.run(
        ["bash", "-c", "set -u\n" + line],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = done.stdout
    assert out.count("train --dry-run:") == 1, (out, done.stderr[-3000:])  # rank 0 only
    assert "stage 2 (generation PT), nothing is trained" in out
    assert "32 x accum 1 x world 2 = global 64 (fsdp)" in out
    assert "memory per GPU (estimate)" in out and "[fsdp over 2," in out
    assert f"run dir      {run_dir}: checkpoints every 5000 steps (sharded" in out
    assert "preemption   SIGTERM, SIGUSR1: checkpoint at the step reached, exit 75" in out
    failed = set(re.findall(r"^\[FAIL\] ([\w_]+):", out, re.M))
    missing = {"data", "init_from", "vae_dir", "latent_cache", "repa_encoder"}
    missing |= set() if torch.cuda.is_available() else {"device"}
    assert failed - {"disk"} == missing  # disk: 9 checkpoints of ~21.5 GB may not fit here
    assert done.returncode != 0 and "Traceback" not in out
    assert not run_dir.exists()


# Stand-ins for SLURM's commands, enough for one node: srun runs its command, scancel signals
# it (SLURM signals every process of the job step; here torchrun, which passes it on), scontrol
# names the node and records a requeue.
FAKES = {
    "srun": 'while [ "${1#--}" != "$1" ]; do shift; done\necho $$ > "$FAKE/step.pid"\nexec "$@"\n',
    "scancel": 'echo "scancel $*" >> "$FAKE/calls"\nkill -s "${1#--signal=}" "$(cat "$FAKE/step.pid")"\n',
    "scontrol": 'if [ "$1" = show ]; then echo localhost; else echo "scontrol $*" >> "$FAKE/calls"; fi\n',
}


def _fake_slurm(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "fake-slurm"
    bin_dir.mkdir()
    for name, body in FAKES.items():
        (bin_dir / name).write_text("#!/bin/bash\n" + body)
        (bin_dir / name).chmod(0o755)
    return {"FAKE": str(bin_dir), "PATH": f"{bin_dir}:{os.environ['PATH']}"}


def _job(env: dict[str, str], cfg, config: Path) -> subprocess.Popen:
    config.write_text(json.dumps(cfg.to_dict()))
    env = {**env, "TRAIN_ARGS": f"--config {config}", "MASTER_PORT": str(_free_port())}
    return subprocess.Popen(
        ["bash", str(SCRIPT)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_time_limit_signal_saves_requeues_and_the_requeued_job_resumes(
    tmp_path, tmp_path_factory
) -> None:
    """The whole script on a stand-in SLURM with 2 CPU ranks: SIGUSR1 to the batch shell (what
    --signal=B:USR1@300 sends) reaches the workers, they save the step reached, the job is
    requeued; started again (SLURM_RESTART_COUNT=1) it resumes, to the losses of one process
    with the double batch."""
    data = data_run(tmp_path_factory)
    run_dir = tmp_path / "stage3"
    kw = {"task_ratio": (1, 1), "trainable": ("gen",), "checkpoint_every": 5, "batch_size": 2}
    env = {
        **subprocess_env(),
        **_fake_slurm(tmp_path),
        "OMP_NUM_THREADS": "1",
        "PYTHON": sys.executable,
        "GPUS_PER_NODE": "2",
        "SLURM_JOB_ID": "77",
        "RUN_DIR": str(run_dir),
    }
    job = _job(env, tiny_config(data, run_dir, 3, steps=2000, **kw), tmp_path / "a.json")
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and job.poll() is None:
            saved = ckpt.list_checkpoints(run_dir / "checkpoints")
            path = run_dir / "metrics.jsonl"
            logged = len(path.read_text().splitlines()) if path.is_file() else 0
            if saved and logged > saved[-1][0] and logged % 5:
                break
            time.sleep(0.05)
        job.send_signal(signal.SIGUSR1)
        out, err = job.communicate(timeout=240)
    finally:
        job.kill()
    assert job.returncode == 0, err[-3000:]
    stopped = preemption.Preempted.read(run_dir)
    assert stopped is not None and stopped.signal_name == "SIGUSR1" and stopped.step % 5
    assert ckpt.verify_checkpoint(run_dir / "checkpoints" / f"step_{stopped.step:07d}") is None
    calls = (Path(env["FAKE"]) / "calls").read_text().splitlines()
    assert calls == ["scancel --signal=USR1 77", "scontrol requeue 77"]

    steps = stopped.step + 2
    (Path(env["FAKE"]) / "calls").unlink()
    again = _job(
        {**env, "SLURM_RESTART_COUNT": "1"},
        tiny_config(data, run_dir, 3, steps=steps, **kw),
        tmp_path / "b.json",
    )
    out, err = again.communicate(timeout=240)
    assert again.returncode == 0, err[-3000:]
    assert f"steps {stopped.step}->{steps}" in out
    assert not (Path(env["FAKE"]) / "calls").exists()  # finished: no requeue
    ref_cfg = tiny_config(data, tmp_path / "ref", 3, steps=steps, **{**kw, "batch_size": 4})
    ref = train(ref_cfg, progress=False)
    for key in ("flow", "repa"):
        assert losses(run_dir, key) == pytest.approx(losses(ref.run_dir, key), rel=1e-5)
