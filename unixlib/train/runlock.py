"""A lock on a run directory, so two runs never write into the same one.

``<run_dir>/.unixlib.lock`` holds the holder's pid, host, command and start time; it is
created with ``O_CREAT | O_EXCL`` (atomic on local and NFSv3+ file systems). A second run on
the same directory - or on a directory inside a locked one (a stage of a locked notebook
series) - stops at once with :class:`RunLockedError` naming the holder. A lock left by a
process that died (same host, pid gone) is taken over with a message.

Child processes of the holder (the notebook kernels of a series, torchrun workers) inherit
``UNIXLIB_RUN_LOCKS`` and may lock directories inside the held one. Standard library only:
the series runner imports this without torch.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

LOCK_FILE = ".unixlib.lock"
ENV = "UNIXLIB_RUN_LOCKS"  # os.pathsep-separated lock files held by this process's ancestors


class RunLockedError(RuntimeError):
    """The run directory (or one above it) is in use by another live process."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _read(lock: Path) -> dict[str, Any]:
    try:
        return json.loads(lock.read_text())
    except (OSError, ValueError):
        return {}  # being written this instant, or garbage: treated as held by an unknown


def describe(holder: dict[str, Any]) -> str:
    """``pid 123 on host, since 2026-01-01 10:00:00 UTC: python -m unixlib train ...``"""
    since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(holder.get("started", 0)))
    return (
        f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, since {since}: "
        f"{holder.get('command', '?')}"
    )


def _inherited() -> set[str]:
    return {p for p in os.environ.get(ENV, "").split(os.pathsep) if p}


def _stale(holder: dict[str, Any]) -> bool:
    """A lock whose holder is known dead (same host, pid gone), or one this very process left
    behind (an exception between acquire and release)."""
    pid = holder.get("pid")
    if holder.get("host") != socket.gethostname() or not isinstance(pid, int):
        return False
    return pid == os.getpid() or not _alive(pid)


class RunLock:
    """Context manager holding ``<run_dir>/.unixlib.lock`` (see the module docstring)."""

    def __init__(self, run_dir: Path, command: str | None = None) -> None:
        self.run_dir = Path(run_dir).resolve()
        self.path = self.run_dir / LOCK_FILE
        self.command = command or " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])
        self._env_before: str | None = None

    def _check_ancestors(self) -> None:
        """A lock on a directory above this one, held by a live process that is not ours."""
        for parent in self.run_dir.parents:
            lock = parent / LOCK_FILE
            if not lock.is_file() or str(lock) in _inherited():
                continue
            holder = _read(lock)
            if not _stale(holder):
                raise RunLockedError(
                    f"{parent} (which holds {self.run_dir}) is in use by "
                    f"{describe(holder)}; remove {lock} if that run is gone"
                )

    def acquire(self) -> RunLock:
        self._check_ancestors()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": self.command,
            "started": time.time(),
        }
        for _ in range(2):  # the second try follows the removal of a stale lock
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = _read(self.path)
                if not _stale(holder):
                    raise RunLockedError(
                        f"{self.run_dir} is in use by {describe(holder)}; wait for it, or use "
                        f"another run directory (remove {self.path} if that run is gone)"
                    ) from None
                if holder.get("pid") != os.getpid():
                    print(
                        f"taking over the stale lock of {self.run_dir} ({describe(holder)}: "
                        "that process has ended)",
                        file=sys.stderr,
                    )
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps(record) + "\n")
            break
        else:
            raise RunLockedError(f"{self.run_dir}: could not take its lock {self.path}")
        self._env_before = os.environ.get(ENV)
        os.environ[ENV] = os.pathsep.join(sorted(_inherited() | {str(self.path)}))
        return self

    def release(self) -> None:
        if _read(self.path).get("pid") == os.getpid():
            self.path.unlink(missing_ok=True)
        if self._env_before is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = self._env_before

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
