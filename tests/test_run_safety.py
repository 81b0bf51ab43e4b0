"""Run directories a user cannot corrupt by mistake: the run lock and checkpoint checksums."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from train_helpers import REPO_ROOT, data_run, subprocess_env, tiny_config

from unixlib.cli.main import main
from unixlib.train import checkpoint as ckpt
from unixlib.train.loop import train
from unixlib.train.runlock import ENV, LOCK_FILE, RunLock, RunLockedError

HOLD = (
    "import sys, time; from unixlib.train.runlock import RunLock; RunLock(sys.argv[1]).acquire(); "
    "print('held', flush=True); time.sleep(120)"
)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return data_run(tmp_path_factory)


@contextlib.contextmanager
def holding(run: Path) -> Iterator[subprocess.Popen]:
    """Another process holding the lock of ``run`` for the duration."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(run)],
        cwd=REPO_ROOT,
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


@pytest.fixture
def holder(tmp_path):
    """Another process holding the lock of ``tmp_path / "run"``."""
    run = tmp_path / "run"
    with holding(run) as proc:
        yield run, proc


def test_a_second_train_on_a_locked_run_dir_stops_at_once(holder, data, tmp_path, capsys) -> None:
    run, proc = holder
    cfg = tiny_config(data, run, 1, steps=2)
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(cfg.to_dict()))
    t0 = time.monotonic()
    assert main(["train", "--config", str(config_path), "--no-progress"]) == 2
    assert time.monotonic() - t0 < 10  # before any data or model is loaded
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {run.resolve()} is in use by ")
    assert f"pid {proc.pid} on {socket.gethostname()}" in err and "-c" in err
    assert not (run / "metrics.jsonl").exists()
    with pytest.raises(RunLockedError, match="which holds"):  # a stage inside a locked series
        RunLock(run / "stage1").acquire()


def test_children_of_the_holder_may_lock_inside_it(holder, monkeypatch) -> None:
    run, _ = holder
    monkeypatch.setenv(ENV, str(run.resolve() / LOCK_FILE))  # as a notebook kernel inherits it
    with RunLock(run / "stage1") as lock:
        assert lock.path.is_file()
    assert not lock.path.exists()


def test_a_stale_lock_of_a_dead_process_is_taken_over(holder, capsys) -> None:
    run, proc = holder
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with RunLock(run, command="test") as lock:
        record = json.loads(lock.path.read_text())
        assert record["pid"] == os.getpid() and record["command"] == "test"
        assert os.environ[ENV] == str(lock.path)
    err = capsys.readouterr().err
    assert f"taking over the stale lock of {run.resolve()} (pid {proc.pid} " in err
    assert ENV not in os.environ and not (run / LOCK_FILE).exists()


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_resume_skips_a_damaged_checkpoint_and_stops_when_none_is_intact(data, tmp_path, capsys):
    run = tmp_path / "run"
    cfg = tiny_config(data, run, 1, steps=4, checkpoint_every=2, checkpoints_total_limit=3)
    train(cfg, progress=False)
    step2, step4 = (p for _, p in ckpt.list_checkpoints(run / "checkpoints"))
    sums = json.loads((step4 / ckpt.CHECKSUMS).read_text())
    assert set(sums) == {
        "model.safetensors",
        "optimizer.pt",
        "scheduler.pt",
        "rng.pt",
        "state.json",
        "config.json",
    }
    assert ckpt.verify_checkpoint(step4) is None
    size = (step4 / "model.safetensors").stat().st_size
    _truncate(step4 / "model.safetensors")
    assert ckpt.verify_checkpoint(step4) == (
        f"model.safetensors has {size // 2} bytes, {size} were written (truncated?)"
    )
    capsys.readouterr()
    train(
        tiny_config(data, run, 1, steps=6, checkpoint_every=2, checkpoints_total_limit=3),
        resume=True,
        progress=False,
    )
    out = capsys.readouterr().out
    assert f"skipping checkpoint {step4}: model.safetensors has {size // 2} bytes" in out
    assert "resuming from step_0000002 instead" in out and "steps 2->6" in out
    assert ckpt.verify_checkpoint(step4) is None  # written again by the resumed run

    # altered in place (same size) and truncated: nothing to resume from
    for step in (2, 4, 6):
        path = run / "checkpoints" / ckpt.step_dir_name(step) / "optimizer.pt"
        raw = bytearray(path.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        path.write_bytes(bytes(raw))
    assert "SHA-256 mismatch" in ckpt.verify_checkpoint(step2)
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(cfg.to_dict()))
    assert main(["train", "--config", str(config_path), "--resume", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no intact checkpoint under ") and err.count("\n") == 1
    assert "step_0000006 (optimizer.pt differs" in err and "step_0000002 (" in err


def test_checkpoints_written_before_checksums_still_resume(data, tmp_path) -> None:
    run = tmp_path / "run"
    train(tiny_config(data, run, 1, steps=2, checkpoint_every=2), progress=False)
    path = ckpt.latest_checkpoint(run / "checkpoints")
    (path / ckpt.CHECKSUMS).unlink()
    assert ckpt.latest_intact_checkpoint(run / "checkpoints") == path
    (path / "rng.pt").unlink()
    with pytest.raises(ckpt.CheckpointError, match=r"rng\.pt missing"):
        ckpt.latest_intact_checkpoint(run / "checkpoints")


@pytest.mark.slow
def test_a_series_locks_its_run_dir_and_its_notebooks_may_lock_stages(tmp_path) -> None:
    """The notebook kernel (a child of the runner) trains into a stage folder of the locked run;
    a second series on the same run directory stops at once."""
    from test_runs import _write_nb

    from unixlib.experiments import series as runs

    nbs, profiles, run_dir = tmp_path / "nbs", tmp_path / "profiles", tmp_path / "run"
    nbs.mkdir()
    profiles.mkdir()
    body = (
        "import os\nfrom pathlib import Path\nfrom unixlib.train.runlock import RunLock\n"
        "with RunLock(Path(run_dir) / 'stage1'):\n"
        "    Path(run_dir, 'held_by').write_text(os.environ['UNIXLIB_RUN_LOCKS'])"
    )
    _write_nb(
        nbs / "01_stage.ipynb",
        f'run_dir = "{run_dir}"\nfigures_dir = "{tmp_path / "fig"}"\nseed = 0\n',
        body,
    )
    (profiles / "t.yaml").write_text(f"parameters: {{run_dir: '{run_dir}'}}\n")
    runs.reproduce("t", notebook_dir=nbs, profile_dir=profiles, progress=False)
    assert str(run_dir.resolve() / LOCK_FILE) in (run_dir / "held_by").read_text()
    assert not (run_dir / LOCK_FILE).exists()

    with (
        holding(run_dir) as proc,
        pytest.raises(RunLockedError, match=f"is in use by pid {proc.pid} "),
    ):
        runs.reproduce("t", notebook_dir=nbs, profile_dir=profiles, progress=False)
