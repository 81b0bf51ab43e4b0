"""A full disk (unixlib.train.disk): the free-space check before a checkpoint, a write that fails
with ENOSPC anyway, and the leftovers of a killed writer. Each is one line (no traceback), the
temporary folder is gone, earlier checkpoints are intact and ``--resume`` continues from them."""

from __future__ import annotations

import errno
import json
import shutil
from collections import namedtuple
from pathlib import Path

import pytest
import torch
from safetensors import SafetensorError
from torch import nn
from train_helpers import data_run, losses, tiny_config

from unixlib.cli.main import main
from unixlib.train import checkpoint as ckpt
from unixlib.train import disk
from unixlib.train.loop import train

Usage = namedtuple("Usage", "total used free")
MB = 1024**2


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory):
    return data_run(tmp_path_factory)


def test_sizes_and_the_space_check(tmp_path, monkeypatch) -> None:
    model = nn.Linear(3, 4)  # 12 + 4 fp32 = 64 bytes
    opt = torch.optim.AdamW(model.parameters())
    assert disk.tensor_bytes(model) == 64 and disk.tensor_bytes(opt) == 0  # no step yet
    model(torch.randn(2, 3)).sum().backward()
    opt.step()
    # exp_avg and exp_avg_sq (2 x 64) + the two scalar fp32 step counters
    assert disk.tensor_bytes(opt) == 2 * 64 + 2 * 4
    assert disk.tensor_bytes({"a": [torch.zeros(2, dtype=torch.float16)], "b": 1}) == 4
    assert disk.expected_bytes(None, model, opt, None) == 64 + 136
    (tmp_path / "prev").mkdir()
    (tmp_path / "prev" / "x").write_bytes(b"0" * 1000)
    assert disk.expected_bytes(tmp_path / "prev", model) == 1000  # the newest checkpoint's size
    assert (disk.human(5 * MB + MB // 2), disk.human(3 * 1024**3)) == ("5.5 MB", "3.00 GB")

    monkeypatch.setattr(disk.shutil, "disk_usage", lambda p: Usage(100 * MB, 98 * MB, 2 * MB))
    disk.check_space(tmp_path / "not" / "yet", "step_0000010", 2 * MB)  # exactly enough
    with pytest.raises(disk.DiskSpaceError) as caught:
        disk.check_space(tmp_path / "ck", "step_0000010", 3 * MB)
    assert str(caught.value) == (
        f"no space for checkpoint step_0000010 in {tmp_path / 'ck'}: it needs 3.0 MB, 2.0 MB "
        "left; free some space (e.g. remove older checkpoints) and continue with --resume "
        "(earlier checkpoints are intact)"
    )


def _objects():
    torch.manual_seed(0)
    model = nn.Linear(3, 4)
    opt = torch.optim.AdamW(model.parameters())
    return model, opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)


@pytest.mark.parametrize(
    "failure",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        SafetensorError(
            'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No '
            'space left on device" })'
        ),
    ],
    ids=["ENOSPC", "safetensors"],
)
def test_a_failed_write_removes_its_temporary_folder_and_keeps_the_others(
    tmp_path, monkeypatch, failure
) -> None:
    root = tmp_path / "checkpoints"
    model, opt, sched = _objects()
    first = ckpt.save_checkpoint(root, 1, model, opt, sched, 4, {}, limit=1)
    sums = json.loads((first / ckpt.CHECKSUMS).read_text())

    def full_disk(tensors, filename, *args, **kwargs):
        Path(filename).write_bytes(b"half")  # what a real failed write leaves
        raise failure

    monkeypatch.setattr(ckpt, "save_file", full_disk)
    with pytest.raises(disk.CheckpointWriteError) as caught:
        ckpt.save_checkpoint(root, 2, model, opt, sched, 8, {}, limit=1)
    text = str(caught.value)
    assert "\n" not in text and text.startswith("checkpoint step_0000002 could not be written")
    assert "no space left on device" in text.lower() and "--resume" in text
    assert sorted(p.name for p in root.iterdir()) == ["step_0000001"]  # no .tmp-, not rotated
    assert json.loads((first / ckpt.CHECKSUMS).read_text()) == sums
    assert ckpt.verify_checkpoint(first) is None


def test_a_bug_in_a_state_is_not_reported_as_a_full_disk(tmp_path, monkeypatch) -> None:
    """Only errors of writing files become one-line errors; anything else keeps its traceback."""
    model, opt, sched = _objects()

    def broken(*args, **kwargs):
        raise TypeError("not a tensor")

    monkeypatch.setattr(ckpt, "save_file", broken)
    with pytest.raises(TypeError, match="not a tensor"):
        ckpt.save_checkpoint(tmp_path, 1, model, opt, sched, 0, {})


def _write_config(cfg, path: Path) -> Path:
    path.write_text(json.dumps(cfg.to_dict()))
    return path


def test_too_little_space_stops_before_the_checkpoint_with_one_line(
    data, tmp_path, monkeypatch, capsys
) -> None:
    """Checkpoints every 2 steps; from the second on the disk reports 1 MB free: the CLI prints
    one ``error:`` line naming the folder, the size needed (the first checkpoint's) and the
    space left, exits 74, and --resume continues from step 2 to the uninterrupted losses."""
    run = tmp_path / "run"
    cfg = tiny_config(data, run, 1, steps=6, checkpoint_every=2)
    real = shutil.disk_usage

    def usage(path):
        if ckpt.list_checkpoints(run / "checkpoints"):
            return Usage(100 * MB, 99 * MB, 1 * MB)
        return real(path)

    monkeypatch.setattr(disk.shutil, "disk_usage", usage)
    config = _write_config(cfg, tmp_path / "config.json")
    assert main(["train", "--config", str(config), "--no-progress"]) == disk.WRITE_FAILED_STATUS
    err = capsys.readouterr().err
    first = run / "checkpoints" / "step_0000002"
    size = disk.human(disk.directory_bytes(first))
    assert err == (
        f"error: no space for checkpoint step_0000004 in {run / 'checkpoints'}: it needs {size}, "
        "1.0 MB left; free some space (e.g. remove older checkpoints) and continue with "
        "--resume (earlier checkpoints are intact)\n"
    )
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_0000002"]
    assert ckpt.verify_checkpoint(first) is None

    monkeypatch.setattr(disk.shutil, "disk_usage", real)  # space was freed
    assert main(["train", "--config", str(config), "--no-progress", "--resume"]) == 0
    ref = train(tiny_config(data, tmp_path / "ref", 1, steps=6, checkpoint_every=2))
    assert losses(run) == losses(ref.run_dir)


def test_enospc_during_a_training_checkpoint_is_one_line_and_resumable(
    data, tmp_path, monkeypatch, capsys
) -> None:
    """The check passes but the write fails (the disk filled meanwhile): one line, exit 74, the
    temporary folder removed, step 2 intact; --resume from there gives the same losses."""
    run = tmp_path / "run"
    cfg = tiny_config(data, run, 1, steps=6, checkpoint_every=2)
    real = ckpt.save_file

    def fill_up(tensors, filename, *args, **kwargs):
        if "step_0000004" in str(filename):
            raise OSError(errno.ENOSPC, "No space left on device", str(filename))
        return real(tensors, filename, *args, **kwargs)

    monkeypatch.setattr(ckpt, "save_file", fill_up)
    config = _write_config(cfg, tmp_path / "config.json")
    assert main(["train", "--config", str(config), "--no-progress"]) == 74
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(
        f"error: checkpoint step_0000004 could not be written in {run / 'checkpoints'} "
        "(no space left on device; "
    )
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_0000002"]

    monkeypatch.setattr(ckpt, "save_file", real)
    assert main(["train", "--config", str(config), "--no-progress", "--resume"]) == 0
    ref = train(tiny_config(data, tmp_path / "ref", 1, steps=6, checkpoint_every=2))
    assert losses(run) == losses(ref.run_dir)


def test_leftovers_of_a_killed_writer_are_removed_at_the_next_start(data, tmp_path, capsys) -> None:
    run = tmp_path / "run"
    train(tiny_config(data, run, 1, steps=2, checkpoint_every=2), progress=False)
    for step in (3, 4):  # what a process killed mid-write leaves behind
        (run / "checkpoints" / f".tmp-step_000000{step}").mkdir()
        (run / "checkpoints" / f".tmp-step_000000{step}" / "model.safetensors").write_bytes(b"x")
    capsys.readouterr()
    train(tiny_config(data, run, 1, steps=3, checkpoint_every=2), resume=True, progress=False)
    out = capsys.readouterr().out.splitlines()
    removed = [line for line in out if "left half-written" in line]
    assert removed == [
        f"removed {run / 'checkpoints' / name}: a checkpoint left half-written by an earlier "
        "process"
        for name in (".tmp-step_0000003", ".tmp-step_0000004")
    ]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "step_0000002",
        "step_0000003",
    ]
