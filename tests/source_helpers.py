"""Helpers shared by the data-source tests (not collected by pytest)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image


def write_image(path: Path, shape: tuple[int, int] = (30, 40), value: int = 180) -> None:
    """An 8-bit gray PNG/JPG of constant ``value`` (the format follows the suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full(shape, value, dtype=np.uint8)).save(path)


def read_rejects(out: Path) -> dict[str, tuple[str, str]]:
    """``rejects.csv`` of a prepare run as id -> (stage, reason)."""
    frame = pd.read_csv(out / "rejects.csv", keep_default_na=False)
    assert list(frame.columns) == ["id", "ref", "stage", "reason"]
    return {row.id: (row.stage, row.reason) for row in frame.itertuples()}
