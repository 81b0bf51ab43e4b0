"""Where training metrics go besides ``metrics.jsonl``: ``--report-to tensorboard``.

``metrics.jsonl`` is always written (the notebooks and tests read it). TensorBoard is optional
and not installed by default (``pip install -c constraints.txt -e ".[tensorboard]"``); asking
for it without the package stops before training with a one-line error.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

REPORT_TARGETS = ("tensorboard",)
TENSORBOARD_DIR = "tensorboard"  # inside the run directory, beside metrics.jsonl


class ReportError(ValueError):
    """A --report-to target is unknown or its package is missing (one-line message)."""


class Reporter(Protocol):
    def log(self, row: dict) -> None: ...

    def close(self) -> None: ...


class TensorBoardReporter:
    """Every numeric field of a metrics row as a scalar ``train/<field>`` at its ``step``."""

    def __init__(self, log_dir: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:
            raise ReportError(
                "--report-to tensorboard needs the tensorboard package: "
                'pip install -c constraints.txt -e ".[tensorboard]"'
            ) from err
        self.log_dir = log_dir
        self.writer = SummaryWriter(log_dir=str(log_dir))

    def log(self, row: dict) -> None:
        for key, value in row.items():
            if key != "step" and isinstance(value, int | float) and math.isfinite(value):
                self.writer.add_scalar(f"train/{key}", value, global_step=int(row["step"]))

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()


def open_reporters(report_to: Sequence[str], run_dir: Path) -> list[Reporter]:
    """The reporters named in ``report_to`` (each of :data:`REPORT_TARGETS`), writing under
    ``run_dir``. Raises :class:`ReportError` for an unknown name or a missing package."""
    unknown = sorted(set(report_to) - set(REPORT_TARGETS))
    if unknown:
        raise ReportError(f"unknown --report-to {unknown}; choose from {list(REPORT_TARGETS)}")
    return [TensorBoardReporter(Path(run_dir) / TENSORBOARD_DIR) for _ in set(report_to)]
