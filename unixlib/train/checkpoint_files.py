"""Checkpoint directories on disk: naming, listing, checksums and the intact-checkpoint search.

Saving and loading (:mod:`.checkpoint`) build on these: each written directory records the size
and SHA-256 of its files in ``checksums.json``; ``--resume`` walks back from the newest
directory to the first one whose files still match (:func:`latest_intact_checkpoint`).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from unixlib.train import fsdp

STEP_DIR = re.compile(r"^step_(\d+)$")
CHECKSUMS = "checksums.json"
REQUIRED = ("model.safetensors", "optimizer.pt", "scheduler.pt", "rng.pt", "state.json")
REQUIRED_SHARDED = ("scheduler.pt", "rng.pt", "state.json")  # + the sharded/ directory


class CheckpointError(ValueError):
    """No intact checkpoint to resume from (each damaged one is named with its reason)."""


def step_dir_name(step: int) -> str:
    return f"step_{step:07d}"


def list_checkpoints(root: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints under ``root``, oldest first."""
    if not root.is_dir():
        return []
    found = [
        (int(m.group(1)), p) for p in root.iterdir() if (m := STEP_DIR.match(p.name)) and p.is_dir()
    ]
    return sorted(found)


def latest_checkpoint(root: Path) -> Path | None:
    found = list_checkpoints(root)
    return found[-1][1] if found else None


def file_sha256(path: Path) -> str:
    """SHA-256 hex digest of a file, read in 16 MB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            digest.update(chunk)
    return digest.hexdigest()


def write_checksums(directory: Path) -> dict[str, dict[str, Any]]:
    """``checksums.json``: {file: {"bytes": n, "sha256": hex}} for every file of ``directory``."""
    sums = {
        p.relative_to(directory).as_posix(): {"bytes": p.stat().st_size, "sha256": file_sha256(p)}
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.name != CHECKSUMS
    }
    (directory / CHECKSUMS).write_text(json.dumps(sums, indent=1) + "\n")
    return sums


def verify_checkpoint(path: Path) -> str | None:
    """Why ``path`` cannot be resumed from (a missing, truncated or altered file), else None.

    Checkpoints written before checksums were recorded pass when their files are all there."""
    required = REQUIRED
    if (path / fsdp.SHARDED_DIR).is_dir():  # weights and optimizer are in the shards
        required = (*REQUIRED_SHARDED, f"{fsdp.SHARDED_DIR}/.metadata")
    missing = [name for name in required if not (path / name).is_file()]
    if missing:
        return f"{', '.join(missing)} missing"
    if not (path / CHECKSUMS).is_file():
        return None  # an older checkpoint: nothing recorded to check against
    try:
        recorded = json.loads((path / CHECKSUMS).read_text())
    except ValueError as err:
        return f"{CHECKSUMS} unreadable ({err})"
    for name, want in recorded.items():
        file = path / name
        if not file.is_file():
            return f"{name} missing"
        size = file.stat().st_size
        if size != want["bytes"]:
            return f"{name} has {size} bytes, {want['bytes']} were written (truncated?)"
        if file_sha256(file) != want["sha256"]:
            return f"{name} differs from what was written (SHA-256 mismatch)"
    return None


def latest_intact_checkpoint(root: Path, log=print) -> Path | None:
    """The newest checkpoint under ``root`` that passes :func:`verify_checkpoint`.

    Each newer damaged one is reported through ``log``. None when there are no checkpoints;
    :class:`CheckpointError` when there are some and none is intact."""
    found = list_checkpoints(root)
    skipped = []
    for _, path in reversed(found):
        reason = verify_checkpoint(path)
        if reason is None:
            if skipped:
                log(f"resuming from {path.name} instead")
            return path
        skipped.append(f"{path.name} ({reason})")
        log(f"skipping checkpoint {path}: {reason}")
    if skipped:
        raise CheckpointError(f"no intact checkpoint under {root}: {'; '.join(skipped)}")
    return None
