"""Progress bars and step logs for the steps that take minutes to hours at paper scale.

Two helpers, :func:`bar` and :func:`log`, so that every long step reports the same way. Where
their output goes is chosen by ``UNIXLIB_PROGRESS``:

- ``auto`` (default): ``tqdm.auto`` bars (a widget in JupyterLab, text in a terminal); log lines
  on stdout;
- ``text``: plain-text bars on stderr, redrawn at most every ``UNIXLIB_PROGRESS_INTERVAL``
  seconds (default 10); log lines on stdout;
- ``quiet``: what the series runner sets for its kernels, so that an executed notebook reads as a
  document: bars and log lines go to the file ``UNIXLIB_PROGRESS_LOG`` (the run directory's
  ``progress.log``; text bars redrawn every interval), and the notebook keeps only the one-line
  summaries the steps print themselves. ``reproduce --log-output`` streams that file to the
  terminal as it grows;
- ``off``: no bar; log lines on stdout.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO, TypeVar

from tqdm import tqdm as text_tqdm
from tqdm.auto import tqdm as auto_tqdm

T = TypeVar("T")

ENV_MODE = "UNIXLIB_PROGRESS"
ENV_INTERVAL = "UNIXLIB_PROGRESS_INTERVAL"
ENV_LOG = "UNIXLIB_PROGRESS_LOG"
MODES = ("auto", "text", "quiet", "off")


def mode() -> str:
    """The progress mode from ``UNIXLIB_PROGRESS`` (a one-line error for an unknown value)."""
    value = os.environ.get(ENV_MODE, "auto").strip().lower() or "auto"
    if value not in MODES:
        raise ValueError(f"{ENV_MODE}={value!r}; choose one of {', '.join(MODES)}")
    return value


class _AppendingFile:
    """A file-like object that appends each write to ``path`` (opened and closed per write, so
    no handle outlives a bar and a reader tailing the file sees every line at once)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, text: str) -> int:
        with self.path.open("a") as f:
            return f.write(text)

    def flush(self) -> None:
        """Nothing to flush: every write is closed."""


def _log_file() -> TextIO | _AppendingFile:
    """The quiet mode's log file, or stderr when none is named."""
    path = os.environ.get(ENV_LOG)
    return _AppendingFile(Path(path)) if path else sys.stderr


def bar(
    iterable: Iterable[T] | None = None,
    *,
    total: int | None = None,
    desc: str,
    unit: str = "it",
    **kwargs: Any,
) -> text_tqdm:
    """A tqdm bar over ``iterable`` (or a manual one with ``total``), as :data:`ENV_MODE` says.

    Iterating the result yields the items of ``iterable``; ``update(n)`` advances a manual bar.
    """
    chosen = mode()
    if chosen in ("text", "quiet"):
        interval = float(os.environ.get(ENV_INTERVAL, "10"))
        return text_tqdm(
            iterable,
            total=total,
            desc=desc,
            unit=unit,
            file=_log_file() if chosen == "quiet" else sys.stderr,
            mininterval=interval,
            maxinterval=max(interval, 10.0),
            dynamic_ncols=False,
            ascii=True,
            **kwargs,
        )
    return auto_tqdm(iterable, total=total, desc=desc, unit=unit, disable=chosen == "off", **kwargs)


def log(line: str) -> None:
    """A progress line (e.g. a training step's losses): stdout, or the log file when quiet."""
    if mode() == "quiet" and os.environ.get(ENV_LOG):
        _log_file().write(line + "\n")
    else:
        print(line, flush=True)
