"""Preemption (unixlib.train.preemption): a real signal between two checkpoints stops training
after the step in flight with a checkpoint of the step reached, exit status 75, one log line;
``--resume`` then gives the losses of an uninterrupted run. In process, through the CLI, and
under torchrun with two gloo processes where only one rank is signalled."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from safetensors.torch import load_file
from train_helpers import REPO_ROOT, data_run, losses, subprocess_env, tiny_config

from unixlib.cli.main import main
from unixlib.train import checkpoint as ckpt
from unixlib.train import loop, preemption
from unixlib.train.config import TrainConfig
from unixlib.train.launch import torchrun_command
from unixlib.train.loop import train

# The stage-3 setting of the resume tests in test_checkpoint.py: und and gen examples, REPA on.
KW = {
    "task_ratio": (1, 1),
    "trainable": ("connector", "und", "gen"),
    "repa_weight": 0.5,
    "checkpoint_every": 3,
}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory):
    return data_run(tmp_path_factory)


def test_listen_records_the_first_signal_and_restores_the_handlers() -> None:
    before = signal.getsignal(signal.SIGUSR1)
    with preemption.listen(("SIGTERM", "SIGUSR1")) as stop:
        assert stop.signum is None and stop.name == ""
        os.kill(os.getpid(), signal.SIGUSR1)  # handled between two bytecodes, in this thread
        os.kill(os.getpid(), signal.SIGTERM)  # a second signal does not overwrite the first
        assert stop.signum == signal.SIGUSR1 and stop.name == "SIGUSR1"
    assert signal.getsignal(signal.SIGUSR1) is before
    with preemption.listen(()) as stop:  # preempt_signals=(): nothing installed
        assert signal.getsignal(signal.SIGUSR1) is before


def test_preempt_signals_are_validated_and_given_to_torchrun() -> None:
    assert TrainConfig().preempt_signals == ("SIGTERM", "SIGUSR1")
    assert TrainConfig.from_dict({"preempt_signals": ["SIGUSR2"]}).preempt_signals == ("SIGUSR2",)
    for bad in ("SIGKILL", "SIGFOO", "15"):
        with pytest.raises(ValueError, match=f"preempt_signals: '{bad}' is not a signal"):
            TrainConfig(preempt_signals=(bad,))
    assert preemption.torchrun_signals(("SIGTERM", "SIGUSR1")) == (
        "SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1"
    )
    cmd = torchrun_command("c.json", 2, signals=("SIGUSR2",))
    assert "--signals-to-handle=SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR2" in cmd


def test_preempted_message_marker_and_parse_round_trip(tmp_path) -> None:
    err = preemption.Preempted(2, 140, 75000, "runs/stage2/checkpoints/step_0000140", "SIGUSR1")
    text = str(err)
    assert "\n" not in text and text.startswith("stage 2 preempted by SIGUSR1 after step 140/")
    assert "--resume" in text and "exit status 75" in text
    back = preemption.Preempted.parse(f"Preempted: {text}")
    assert back is not None and back.record() == err.record()
    assert preemption.Preempted.parse("RuntimeError: kaput") is None
    assert preemption.Preempted.read(tmp_path) is None
    err.write(tmp_path)
    assert preemption.Preempted.read(tmp_path).record() == err.record()
    preemption.clear(tmp_path)
    assert not (tmp_path / preemption.MARKER).exists()


def test_signal_between_checkpoints_saves_the_step_reached_and_resume_is_exact(
    data, tmp_path, monkeypatch, capsys
) -> None:
    """A real SIGTERM to this process during step 4 (checkpoints every 3): the step finishes,
    step_0000004 is written beside step_0000003, one line says so; the resumed run's losses
    and weights equal an uninterrupted run's. A run without a signal is unchanged (the
    reference is one)."""
    log, sent = loop._log, []

    def log_and_signal(run, row, bar) -> None:
        log(run, row, bar)
        if row["step"] == 4 and not sent:
            sent.append(row["step"])
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(loop, "_log", log_and_signal)
    run = tmp_path / "run"
    with pytest.raises(preemption.Preempted) as caught:
        train(tiny_config(data, run, 3, steps=8, **KW), progress=False)
    assert (caught.value.step, caught.value.signal_name) == (4, "SIGTERM")
    assert [s for s, _ in ckpt.list_checkpoints(run / "checkpoints")] == [3, 4]
    assert ckpt.verify_checkpoint(run / "checkpoints" / "step_0000004") is None
    assert not (run / "final").exists() and len(losses(run)) == 4
    said = [line for line in capsys.readouterr().out.splitlines() if "preempted" in line]
    assert said == [str(caught.value)]
    assert json.loads((run / preemption.MARKER).read_text())["step"] == 4
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handler gone after train()

    train(tiny_config(data, run, 3, steps=8, **KW), resume=True, progress=False)
    assert not (run / preemption.MARKER).exists()
    ref = train(tiny_config(data, tmp_path / "ref", 3, steps=8, **KW), progress=False)
    assert losses(run) == losses(ref.run_dir)
    a, b = (
        load_file(str(run / "final" / "model.safetensors")),
        load_file(str(ref.final_dir / "model.safetensors")),
    )
    assert all((a[k] == b[k]).all() for k in b)


def _wait_between_checkpoints(run: Path, proc: subprocess.Popen, every: int) -> int:
    """Until a checkpoint exists and the run has logged a step after it, not on a multiple;
    returns that step."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        saved = ckpt.list_checkpoints(run / "checkpoints")
        text = (run / "metrics.jsonl").read_text() if (run / "metrics.jsonl").is_file() else ""
        logged = [json.loads(line)["step"] for line in text.splitlines()[:-1]]  # whole lines
        if saved and logged and logged[-1] > saved[-1][0] and logged[-1] % every:
            return logged[-1]
        time.sleep(0.02)
    pytest.fail(f"the run never got between two checkpoints (exit {proc.poll()})")


@pytest.mark.slow
def test_sigterm_to_a_cli_run_exits_75_with_a_checkpoint_and_resume_is_exact(
    data, tmp_path
) -> None:
    """What a scheduler does: SIGTERM to ``python -m unixlib train`` between checkpoints."""
    run = tmp_path / "run"
    kw = {**KW, "checkpoint_every": 10}  # the signal lands a step or two after step 11+
    cfg = tiny_config(data, run, 3, steps=2000, **kw)
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(cfg.to_dict()))
    cli = [sys.executable, "-m", "unixlib", "train", "--config", str(config_path), "--no-progress"]
    env = subprocess_env()
    proc = subprocess.Popen(
        cli, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        reached = _wait_between_checkpoints(run, proc, 10)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == preemption.PREEMPTED_STATUS == 75, err[-2000:]
    stopped = preemption.Preempted.read(run)
    said = [line for line in out.splitlines() if "preempted by" in line]
    assert said == [str(stopped)] and "Traceback" not in err
    assert stopped.signal_name == "SIGTERM" and reached <= stopped.step
    assert stopped.step % 10, "stopped between two checkpoints"
    assert ckpt.latest_intact_checkpoint(run / "checkpoints").name == f"step_{stopped.step:07d}"
    assert len(losses(run)) == stopped.step

    steps = stopped.step + 3
    done = subprocess.run(
        [*cli, "--resume", "--max-steps", str(steps)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"steps {stopped.step}->{steps}" in done.stdout
    ref = train(tiny_config(data, tmp_path / "ref", 3, steps=steps, **kw), progress=False)
    assert losses(run) == losses(ref.run_dir)


def _torchrun(cfg: TrainConfig, resume: bool = False) -> subprocess.Popen:
    config_path = Path(cfg.run_dir).with_suffix(".json")
    config_path.write_text(json.dumps(cfg.to_dict()))
    cmd = torchrun_command(config_path, nproc=2, resume=resume, signals=cfg.preempt_signals)
    env = {**subprocess_env(), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _worker(launcher: subprocess.Popen, rank: int) -> psutil.Process:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for child in psutil.Process(launcher.pid).children(recursive=True):
            if child.environ().get("RANK") == str(rank):
                return child
        time.sleep(0.1)
    pytest.fail(f"no worker of rank {rank}")


@pytest.mark.slow
def test_two_gloo_ranks_agree_on_the_stop_when_only_one_is_signalled(data, tmp_path) -> None:
    """SIGUSR1 to rank 1's worker alone: the ranks agree after the step in flight, both save
    that same step (the gathered checkpoint needs both) and stop; a torchrun --resume gives
    the losses of one process with the double batch."""
    kw = {**KW, "parallel": "ddp", "batch_size": 2}
    run = tmp_path / "run"
    launcher = _torchrun(tiny_config(data, run, 3, steps=2000, **kw))
    try:
        rank1 = _worker(launcher, 1)
        _wait_between_checkpoints(run, launcher, 3)
        rank1.send_signal(signal.SIGUSR1)
        out, err = launcher.communicate(timeout=180)
    finally:
        launcher.kill()
    assert launcher.returncode != 0  # torchrun's own status: a worker exited with 75
    stopped = preemption.Preempted.read(run)
    assert stopped is not None and stopped.signal_name == "SIGUSR1", err[-3000:]
    assert out.count("preempted by") == 1  # rank 0 speaks for the run
    assert ckpt.verify_checkpoint(run / "checkpoints" / f"step_{stopped.step:07d}") is None
    assert len(losses(run)) == stopped.step

    steps = stopped.step + 2
    resumed = _torchrun(tiny_config(data, run, 3, steps=steps, **kw), resume=True)
    out, err = resumed.communicate(timeout=240)
    assert resumed.returncode == 0, err[-3000:]
    ref = train(tiny_config(data, tmp_path / "ref", 3, steps=steps, **KW), progress=False)
    for key in ("ce", "flow", "repa"):
        assert losses(run, key) == pytest.approx(losses(ref.run_dir, key), rel=1e-5)


def test_train_cli_returns_75_without_printing_again(data, tmp_path, monkeypatch, capsys) -> None:
    """The CLI's status for a preempted run, and nothing printed beside the loop's line."""
    log = loop._log

    def log_and_signal(run, row, bar) -> None:
        log(run, row, bar)
        if row["step"] == 1:
            os.kill(os.getpid(), signal.SIGUSR1)

    monkeypatch.setattr(loop, "_log", log_and_signal)
    cfg = tiny_config(data, tmp_path / "run", 1, steps=5)
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(cfg.to_dict()))
    assert main(["train", "--config", str(config_path), "--no-progress"]) == 75
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out.count("preempted by SIGUSR1 after step 1/5") == 1
