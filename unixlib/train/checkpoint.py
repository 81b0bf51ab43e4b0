"""Checkpoints: one directory per step, written atomically, rotated, resumable exactly.

A checkpoint directory ``<run>/checkpoints/step_0000100/`` holds::

    model.safetensors       every model weight (frozen ones too, so a checkpoint stands alone)
    ema.safetensors         EMA of the trained parameters (when EMA is on)
    optimizer.pt            optimizer state dict           (loaded with weights_only=True)
    scheduler.pt            LR scheduler state dict
    rng.pt                  torch CPU (+ CUDA) generator states
    state.json              step, data position, python/numpy RNG, metrics so far
    config.json             the resolved training config
    checksums.json          size and SHA-256 of each file above (verified by ``--resume``)

It is first written to ``.tmp-step_...`` and then renamed: a crash mid-write leaves only a
temporary folder that is ignored (and cleaned) later, never a broken checkpoint. A write that
fails (a full disk) removes its temporary folder and raises ``disk.CheckpointWriteError`` with
one line; the loop also checks the free space before each checkpoint (disk.py). The newest
complete directory is "latest". Rotation keeps the newest ``limit`` directories. A checkpoint
damaged later (a truncated copy, a full disk during a sync) fails its checksums:
:func:`latest_intact_checkpoint` then names it and falls back to the one before.

The format is the same whether the run was one process, DDP or FSDP (whose sharded state is
gathered into full tensors first, see fsdp.py), so any of them resumes from any other. A sharded
checkpoint (the paper preset under FSDP, :func:`save_sharded_checkpoint`) holds ``sharded/``
(``torch.distributed.checkpoint``: weights, optimizer and EMA, each rank's shards) instead of the
three full files; it too loads into any layout, one plain process included.
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from unixlib.train import disk, fsdp
from unixlib.train.checkpoint_files import (
    CHECKSUMS,
    REQUIRED,
    REQUIRED_SHARDED,
    STEP_DIR,
    CheckpointError,
    file_sha256,
    latest_checkpoint,
    latest_intact_checkpoint,
    list_checkpoints,
    step_dir_name,
    verify_checkpoint,
    write_checksums,
)

__all__ = [
    "CHECKSUMS",
    "REQUIRED",
    "REQUIRED_SHARDED",
    "STEP_DIR",
    "Checkpoint",
    "CheckpointError",
    "ema_key",
    "file_sha256",
    "latest_checkpoint",
    "latest_intact_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "load_sampling_weights",
    "rng_state",
    "save_checkpoint",
    "save_sharded_checkpoint",
    "set_rng_state",
    "step_dir_name",
    "verify_checkpoint",
    "write_checksums",
]


def _state_dict_for_safetensors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors refuses shared storage and non-contiguous views; clone what needs it.
    out, seen = {}, set()
    for name, tensor in state.items():
        t = tensor.detach()
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape))
        out[name] = t.clone() if key in seen or not t.is_contiguous() else t
        seen.add(key)
    return {k: v.cpu() for k, v in out.items()}


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch RNG states (all needed for an identical continuation)."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(legacy=False),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.integer):
        return int(value)
    return value


@dataclass
class Checkpoint:
    """What :func:`load_checkpoint` returns; ``model`` weights are loaded into the module."""

    path: Path
    step: int
    data_position: int
    state: dict[str, Any] = field(default_factory=dict)


def _state(obj: Any) -> dict[str, Any]:
    return obj if isinstance(obj, dict) else obj.state_dict()


def save_checkpoint(
    root: Path,
    step: int,
    model: torch.nn.Module | dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer | dict[str, Any],
    scheduler: Any,
    data_position: int,
    config: dict[str, Any],
    ema: torch.nn.Module | dict[str, torch.Tensor] | None = None,
    extra: dict[str, Any] | None = None,
    limit: int | None = None,
    _into: Path | None = None,
) -> Path:
    """Write checkpoint ``step`` atomically under ``root`` and rotate to the newest ``limit``.

    ``model``, ``optimizer`` and ``ema`` are the objects or their full state dicts (what a
    sharded run gathers: ``fsdp.full_state_dict``, ``fsdp.full_optimizer_state``).
    ``_into``: a temporary folder that already holds the sharded state (then the three full
    files are not written)."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / step_dir_name(step)
    tmp = root / f"{disk.TMP_PREFIX}{final.name}"
    try:
        if _into is None:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            _write_states(tmp, model, optimizer, ema)
        _write_records(tmp, step, data_position, scheduler, config, extra)
    except Exception as err:
        if not disk.is_write_failure(err):
            raise
        shutil.rmtree(tmp, ignore_errors=True)
        raise disk.write_failure(root, final.name, err) from err
    if final.exists():  # re-saving the same step (e.g. after a resume): replace it whole
        shutil.rmtree(final)
    tmp.rename(final)
    if limit is not None and limit > 0:
        for _, old in list_checkpoints(root)[:-limit]:
            shutil.rmtree(old)
    for stale in root.glob(f"{disk.TMP_PREFIX}step_*"):  # leftovers of a crashed earlier write
        shutil.rmtree(stale, ignore_errors=True)
    return final


def _write_states(tmp: Path, model: Any, optimizer: Any, ema: Any) -> None:
    """The weights (safetensors), the EMA and the optimizer state into ``tmp``."""
    save_file(_state_dict_for_safetensors(_state(model)), str(tmp / "model.safetensors"))
    if ema is not None:
        save_file(_state_dict_for_safetensors(_state(ema)), str(tmp / "ema.safetensors"))
    torch.save(_state(optimizer), tmp / "optimizer.pt")


def _write_records(
    tmp: Path,
    step: int,
    data_position: int,
    scheduler: Any,
    config: dict[str, Any],
    extra: dict[str, Any] | None,
) -> None:
    """Scheduler, RNG states, ``state.json``, ``config.json`` and the checksums into ``tmp``."""
    torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    rng = rng_state()
    torch.save({k: rng[k] for k in ("torch", "cuda") if k in rng}, tmp / "rng.pt")
    state = {
        "step": step,
        "data_position": data_position,
        "python_rng": _jsonable(rng["python"]),
        "numpy_rng": _jsonable(rng["numpy"]),
        **(extra or {}),
    }
    (tmp / "state.json").write_text(json.dumps(state, indent=1) + "\n")
    (tmp / "config.json").write_text(
        json.dumps(config, indent=2, sort_keys=True, default=str) + "\n"
    )
    write_checksums(tmp)


def save_sharded_checkpoint(
    root: Path,
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    data_position: int,
    config: dict[str, Any],
    is_main: bool,
    barrier: Any,
    ema: torch.nn.Module | None = None,
    limit: int | None = None,
) -> Path:
    """Checkpoint ``step`` with the weights, optimizer and EMA saved by every rank as shards
    (all ranks call; ``barrier()`` synchronises them); rank 0 writes the rest and renames the
    directory atomically as :func:`save_checkpoint` does. A failed write of the shards raises
    ``disk.CheckpointWriteError`` on every rank (DCP reports one rank's failure to all); rank
    0's own files can fail on rank 0 alone, so the caller agrees on the outcome after (the
    loop's all-reduce) instead of a last barrier here."""
    from torch.distributed.checkpoint.api import CheckpointException

    final = root / step_dir_name(step)
    tmp = root / f"{disk.TMP_PREFIX}{final.name}"
    if is_main:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
    barrier()
    try:
        fsdp.save_sharded(tmp / fsdp.SHARDED_DIR, model, optimizer, ema)
    except (CheckpointException, OSError) as err:  # CheckpointException is a BaseException
        if is_main:
            shutil.rmtree(tmp, ignore_errors=True)
        raise disk.write_failure(root, final.name, err) from err
    barrier()
    if is_main:
        save_checkpoint(
            root, step, {}, {}, scheduler, data_position, config, limit=limit, _into=tmp
        )
    return final


def load_checkpoint(
    path: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    ema: torch.nn.Module | None = None,
    restore_rng: bool = True,
) -> Checkpoint:
    """Load a checkpoint directory into the given objects (strict: every key must match).

    A sharded (FSDP) model and its EMA are loaded collectively: rank 0 reads the full state and
    sends every rank its shards, so all ranks must call."""
    if not (path / "state.json").is_file():
        raise FileNotFoundError(f"{path} is not a checkpoint directory (no state.json)")
    if (path / fsdp.SHARDED_DIR).is_dir():
        fsdp.load_sharded(path / fsdp.SHARDED_DIR, model, optimizer, ema)
        return _finish_load(path, scheduler, restore_rng)
    reads = fsdp.reads_full_state(model)
    device = "cpu" if fsdp.is_sharded(model) else str(next(model.parameters()).device)
    fsdp.load_full_state_dict(
        model, load_file(str(path / "model.safetensors"), device=device) if reads else {}
    )
    if ema is not None:
        fsdp.load_full_state_dict(
            ema, load_file(str(path / "ema.safetensors"), device=device) if reads else {}
        )
    if optimizer is not None:
        opt_state = (
            torch.load(path / "optimizer.pt", weights_only=True, map_location=device)
            if reads
            else {}
        )
        fsdp.load_full_optimizer_state(model, optimizer, opt_state)
    return _finish_load(path, scheduler, restore_rng)


def _finish_load(path: Path, scheduler: Any, restore_rng: bool) -> Checkpoint:
    """Scheduler, RNG states and the step record of checkpoint ``path``."""
    if scheduler is not None:
        scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=True))
    state = json.loads((path / "state.json").read_text())
    if restore_rng:
        tensors = torch.load(path / "rng.pt", weights_only=True)
        numpy_state = state["numpy_rng"]
        set_rng_state({"python": state["python_rng"], "numpy": numpy_state, **tensors})
    return Checkpoint(path, int(state["step"]), int(state["data_position"]), state)


def ema_key(param_name: str) -> str:
    """The EMA buffer of a parameter, and its key in ``ema.safetensors`` (buffer names may not
    contain dots)."""
    return param_name.replace(".", "__")


def load_sampling_weights(path: Path, model: torch.nn.Module) -> bool:
    """Load a checkpoint's weights into an (unsharded) model for sampling or evaluation.

    Where the run kept an EMA, its averages replace the trained parameters, as in the
    exported ``final/`` model; otherwise the raw weights are used. RNG states are not touched.
    Returns whether EMA weights were used.
    """
    if (path / fsdp.SHARDED_DIR).is_dir():
        return _sharded_sampling_weights(path, model)
    load_checkpoint(path, model, restore_rng=False)
    ema_file = path / "ema.safetensors"
    if not ema_file.is_file():
        return False
    params = {ema_key(name): p for name, p in model.named_parameters()}
    averages = load_file(str(ema_file), device=str(next(model.parameters()).device))
    with torch.no_grad():
        for key, value in averages.items():
            if key not in params:
                raise KeyError(f"{ema_file}: {key!r} names no parameter of the model")
            params[key].copy_(value)
    return True


def _sharded_sampling_weights(path: Path, model: torch.nn.Module) -> bool:
    """:func:`load_sampling_weights` for a sharded checkpoint: its weights, then its EMA
    averages (when it has them) over the trained parameters."""
    import torch.distributed.checkpoint as dcp

    fsdp.load_sharded(path / fsdp.SHARDED_DIR, model)
    meta = dcp.FileSystemReader(str(path / fsdp.SHARDED_DIR)).read_metadata()
    keys = {k.removeprefix("ema.") for k in meta.state_dict_metadata if k.startswith("ema.")}
    if not keys:
        return False
    params = {ema_key(name): p for name, p in model.named_parameters() if ema_key(name) in keys}
    state = {"ema": {k: torch.empty_like(p, dtype=torch.float32) for k, p in params.items()}}
    dcp.load(state, checkpoint_id=str(path / fsdp.SHARDED_DIR), no_dist=True)
    with torch.no_grad():
        for k, p in params.items():
            p.copy_(state["ema"][k])
    return True
