"""The kernels of a series run: quiet progress, a private socket folder, the log followed.

Kernels inherit the runner's environment at start, so the runner sets ``UNIXLIB_PROGRESS=quiet``
and the progress-log path around each run (:func:`kernel_environment`); ``--log-output`` copies
that log to the terminal while a notebook runs (:func:`tailing`).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from unixlib.config.progress import ENV_LOG, ENV_MODE

# Where the kernels' progress bars and step logs go (``UNIXLIB_PROGRESS=quiet``), per run.
PROGRESS_LOG = "progress.log"


@contextlib.contextmanager
def kernel_environment(out_dir: Path) -> Iterator[dict[str, Any]]:
    """papermill arguments for quiet kernels, valid inside the ``with`` block.

    Kernels inherit the runner's environment at start: ``UNIXLIB_PROGRESS=quiet`` (unless the
    user set it) and ``UNIXLIB_PROGRESS_LOG=<out_dir>/progress.log`` are set for the duration
    and restored after, so progress bars and step logs go to that file and the executed
    notebooks keep only what the cells mean to show. The IPC sockets live in a private
    temporary folder, removed after the run.
    """
    from traitlets.config import Config

    saved = {k: os.environ.get(k) for k in (ENV_MODE, ENV_LOG)}
    os.environ.setdefault(ENV_MODE, "quiet")
    os.environ[ENV_LOG] = str(out_dir / PROGRESS_LOG)
    try:
        with tempfile.TemporaryDirectory(prefix="unixlib-kernels-") as sockets:
            transport = {"transport": "ipc", "ip": str(Path(sockets) / "kernel")}
            yield {"config": Config({"KernelManager": transport})}
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def tailing(path: Path, enabled: bool, every_s: float = 1.0) -> Iterator[None]:
    """While the block runs, copy what is appended to ``path`` to stderr (``--log-output``)."""
    if not enabled:
        yield
        return
    stop = threading.Event()
    start = path.stat().st_size if path.is_file() else 0

    def follow() -> None:
        offset = start
        while True:
            done = stop.wait(every_s)
            if path.is_file() and path.stat().st_size > offset:
                with path.open() as f:
                    f.seek(offset)
                    sys.stderr.write(f.read())
                    offset = f.tell()
                sys.stderr.flush()
            if done:
                return

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
