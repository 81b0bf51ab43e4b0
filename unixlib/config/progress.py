"""Progress bars for the steps that take minutes to hours at paper scale.

One helper, :func:`bar`, so that every long step reports the same way. Where the bar goes is
chosen by ``UNIXLIB_PROGRESS``:

- ``auto`` (default): ``tqdm.auto`` (a widget in JupyterLab, text in a terminal);
- ``text``: plain text on stderr, redrawn at most every ``UNIXLIB_PROGRESS_INTERVAL`` seconds
  (default 10). The series runner sets this for its kernels: a widget would not reach the
  terminal through ``--log-output``, and the executed notebook keeps few redraws;
- ``off``: no bar.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any, TypeVar

from tqdm import tqdm as text_tqdm
from tqdm.auto import tqdm as auto_tqdm

T = TypeVar("T")

ENV_MODE = "UNIXLIB_PROGRESS"
ENV_INTERVAL = "UNIXLIB_PROGRESS_INTERVAL"
MODES = ("auto", "text", "off")


def mode() -> str:
    """The progress mode from ``UNIXLIB_PROGRESS`` (a one-line error for an unknown value)."""
    value = os.environ.get(ENV_MODE, "auto").strip().lower() or "auto"
    if value not in MODES:
        raise ValueError(f"{ENV_MODE}={value!r}; choose one of {', '.join(MODES)}")
    return value


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
    if chosen == "text":
        interval = float(os.environ.get(ENV_INTERVAL, "10"))
        return text_tqdm(
            iterable,
            total=total,
            desc=desc,
            unit=unit,
            file=sys.stderr,
            mininterval=interval,
            maxinterval=max(interval, 10.0),
            dynamic_ncols=False,
            ascii=True,
            **kwargs,
        )
    return auto_tqdm(iterable, total=total, desc=desc, unit=unit, disable=chosen == "off", **kwargs)
