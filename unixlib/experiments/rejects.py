"""Batches that survive a bad input: ``describe``, ``draw`` and ``evaluate`` use every input they
can read and record each one they cannot, with its reason, in ``rejects.csv`` beside their
output, in the columns of ``prepare``'s (``unixlib.data.sources.rejects.REJECT_COLUMNS``):

    id      the input as the output names it (an image path, a drawing's number, a study id)
    ref     where it came from (``IMAGE 3`` = the third image argument, ``reports.csv:7`` = line 7)
    stage   what was wrong with it: ``image``, ``report`` or ``csv`` (a malformed row)
    reason  why, one line; the text before any ``(detail)`` is its kind

A user of 10,000 radiographs loses one report to a corrupt file, not the whole run. With
``fail_fast`` the first bad input raises instead (the command's one-line error), as before.
:func:`readable_rows` is the evaluation's check of its test images (``evaluation.load_inputs``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np
import pandas as pd

from unixlib.data.datasets import load_image
from unixlib.data.sources.rejects import REJECT_COLUMNS

REJECTS_FILE = "rejects.csv"
STAGE_IMAGE, STAGE_REPORT, STAGE_CSV = "image", "report", "csv"


class InputRejected(ValueError):
    """The first bad input of a ``fail_fast`` batch: ``ref: reason``."""


@dataclass
class Rejects:
    """The inputs a batch could not use, in input order (:func:`add`), or, with ``fail_fast``,
    an error at the first one."""

    fail_fast: bool = False
    rows: list[dict[str, str]] = field(default_factory=list)

    def add(
        self, id_: str, ref: str, stage: str, reason: str, error: Exception | None = None
    ) -> None:
        """Record one rejected input; with ``fail_fast`` raise ``error`` (the loader's own, so
        the message is the one the command always printed) or :class:`InputRejected`."""
        if self.fail_fast:
            raise error if error is not None else InputRejected(f"{ref}: {reason}")
        self.rows.append({"id": str(id_), "ref": str(ref), "stage": stage, "reason": reason})

    def __len__(self) -> int:
        return len(self.rows)

    def frame(self) -> pd.DataFrame:
        """One row per rejected input, columns ``id, ref, stage, reason``."""
        return pd.DataFrame(self.rows, columns=list(REJECT_COLUMNS))

    def write(self, folder: Path) -> Path:
        """``folder/rejects.csv`` (a header only when nothing was rejected, so a rerun never
        leaves an earlier run's rejects behind); returns its path."""
        path = Path(folder) / REJECTS_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        self.frame().to_csv(path, index=False)
        return path

    def echo(self, stream: TextIO | None = None) -> None:
        """One line per rejected input on ``stream`` (default stderr): ``rejected: ref (id):
        reason``, for a command that prints its output instead of writing a file."""
        for r in self.rows:
            print(f"rejected: {r['ref']} ({r['id']}): {r['reason']}", file=stream or sys.stderr)


def readable_rows(rows: pd.DataFrame, root: Path, size: int, rejects: Rejects) -> pd.DataFrame:
    """``rows`` (columns ``id``, ``image_path``) whose cached image can be read, index reset;
    each other one is recorded in ``rejects`` (stage ``image``) with the reader's error. An id
    already rejected is not recorded twice (the paper's Table 2 rows may share test images)."""
    seen = {r["id"] for r in rejects.rows}
    keep = []
    for row in rows[["id", "image_path"]].itertuples(index=False):
        try:
            load_image(root / row.image_path, size)  # the reader the evaluation uses
        except OSError as err:
            if str(row.id) not in seen:
                reason = f"unreadable image ({err.__cause__ or err})"
                rejects.add(str(row.id), str(root / row.image_path), STAGE_IMAGE, reason, error=err)
            keep.append(False)
            continue
        keep.append(True)
    return rows.loc[np.array(keep, dtype=bool)].reset_index(drop=True)
