"""Disk space for checkpoints: a full disk stops a run with one line, never with a traceback.

Before each checkpoint the loop compares the free space of the checkpoint folder with the
checkpoint's expected size (the newest checkpoint's size, or for the first one the bytes of the
states it will hold) and stops with :class:`DiskSpaceError` naming the folder, the size needed
and the space left. A write that fails anyway (the kernel's ENOSPC, safetensors' "No space left
on device", torch's "file write failed") becomes :class:`CheckpointWriteError`, its temporary
folder removed. Earlier checkpoints are never touched: a new one is written beside them and
renamed, and rotation removes old ones only after that. The command line prints either error as
one line ``error: ...`` and exits with :data:`WRITE_FAILED_STATUS`; ``--resume`` continues from
the newest intact checkpoint once there is space.

Folders ``.tmp-step_*`` left by a process killed mid-write are removed when the next run on the
directory starts (:func:`remove_temporaries`, one line per folder).
"""

from __future__ import annotations

import errno
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError

# The command line's exit status for a checkpoint not written (os.EX_IOERR, sysexits.h: "an
# error occurred while doing I/O on some file"): distinct from 75, so that a job script does
# not requeue a run that would only fill the same disk again.
WRITE_FAILED_STATUS = 74
TMP_PREFIX = ".tmp-"  # a checkpoint being written: <root>/.tmp-step_0000100
ADVICE = "free some space (e.g. remove older checkpoints) and continue with --resume"


class CheckpointWriteError(RuntimeError):
    """A checkpoint could not be written; the message is one line with the folder and the
    reason. Its temporary folder is gone and the earlier checkpoints are intact."""


class DiskSpaceError(CheckpointWriteError):
    """Not enough free space for the next checkpoint (checked before writing it)."""


def human(n: float) -> str:
    """Bytes as ``12.3 MB`` / ``4.56 GB`` (powers of 1024)."""
    if n >= 1024**3:
        return f"{n / 1024**3:.2f} GB"
    return f"{n / 1024**2:.1f} MB"


def tensor_bytes(obj: Any) -> int:
    """Bytes of every tensor in ``obj``: nested dicts, lists and tuples, or a module or an
    optimizer (through its state dict). A sharded (DTensor) tensor counts at its full size,
    as a gathered checkpoint stores it and as the shards of all ranks add up to."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, torch.nn.Module | torch.optim.Optimizer):
        obj = obj.state_dict()
    if isinstance(obj, dict):
        return sum(tensor_bytes(v) for v in obj.values())
    if isinstance(obj, list | tuple):
        return sum(tensor_bytes(v) for v in obj)
    return 0


def directory_bytes(path: Path) -> int:
    """Total size of the files under ``path``."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def expected_bytes(previous: Path | None, *states: Any) -> int:
    """The size of the next checkpoint: that of ``previous`` (the newest checkpoint, which holds
    the same tensors) when there is one, else the bytes of the tensors in ``states``."""
    if previous is not None and previous.is_dir():
        return directory_bytes(previous)
    return sum(tensor_bytes(s) for s in states if s is not None)


def free_bytes(path: Path) -> int:
    """Free space of the file system holding ``path`` (or its nearest existing parent)."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def check_space(root: Path, name: str, needed: int) -> None:
    """Raise :class:`DiskSpaceError` when ``root`` has less than ``needed`` bytes free for
    the checkpoint ``name``."""
    free = free_bytes(root)
    if free < needed:
        raise DiskSpaceError(
            f"no space for checkpoint {name} in {root}: it needs {human(needed)}, "
            f"{human(free)} left; {ADVICE} (earlier checkpoints are intact)"
        )


def is_write_failure(err: BaseException) -> bool:
    """An error of writing files (not of the states written): OSError (ENOSPC, EIO, ...),
    safetensors' serializer error, or torch's stream writer failing."""
    if isinstance(err, OSError | SafetensorError):
        return True
    return isinstance(err, RuntimeError) and "PytorchStreamWriter" in str(err)


def _reason(err: BaseException) -> str:
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        return "no space left on device"
    if isinstance(err, OSError) and err.strerror:
        return err.strerror.lower()
    return " ".join(str(err).split())


def write_failure(root: Path, name: str, err: BaseException) -> CheckpointWriteError:
    """The one-line error for checkpoint ``name`` failing to write under ``root``."""
    return CheckpointWriteError(
        f"checkpoint {name} could not be written in {root} ({_reason(err)}; "
        f"{human(free_bytes(root))} left): its temporary folder was removed and earlier "
        f"checkpoints are intact; {ADVICE}"
    )


def remove_temporaries(root: Path, log: Callable[[str], None] = print) -> list[Path]:
    """Remove the ``.tmp-step_*`` folders under ``root`` that a killed writer left behind
    (call it only while holding the run's lock: nobody else is writing there)."""
    if not root.is_dir():
        return []
    stale = sorted(root.glob(f"{TMP_PREFIX}step_*"))
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
        log(f"removed {path}: a checkpoint left half-written by an earlier process")
    return stale
