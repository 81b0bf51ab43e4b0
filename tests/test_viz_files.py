"""Figures are written as PNG at print resolution and as PDF; statistical plots draw the data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from unixlib import viz
from unixlib.data.schema import LABELS
from unixlib.data.text.iu_mesh import agreement
from unixlib.viz.common import DPI
from unixlib.viz.data import label_shares


def _labels(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    values = rng.choice([1.0, -1.0, 0.0, np.nan], size=(n, len(LABELS)), p=[0.3, 0.1, 0.4, 0.2])
    return pd.DataFrame(values, columns=list(LABELS))


def _written(path) -> None:
    assert path.with_suffix(".pdf").read_bytes().startswith(b"%PDF")
    with Image.open(path) as png:
        dpi = png.info.get("dpi", (0, 0))
    assert dpi[0] == pytest.approx(DPI, abs=1), "PNG at print resolution"


def test_label_distribution_stacks_the_shares_of_each_class(tmp_path):
    frame = _labels()
    shares = label_shares(frame)
    assert shares.groupby("class")["share"].sum().to_numpy() == pytest.approx(1.0)
    pos = shares[(shares["class"] == LABELS[0]) & (shares["state"] == "positive")]["share"]
    assert pos.item() == pytest.approx((frame[LABELS[0]] == 1).mean())
    fig = viz.label_distribution(frame, tmp_path / "labels.png")
    _written(tmp_path / "labels.png")
    widths = sorted(p.get_width() for p in fig.axes[0].patches if p.get_width() > 0)
    assert max(widths) <= 1.0 and len(widths) >= len(LABELS)


def test_agreement_heatmap_shows_every_score(tmp_path):
    frame = _labels()
    pred = frame.copy()
    pred.iloc[:5] = 0.0
    table = agreement(pred, frame, classes=list(LABELS))
    fig = viz.label_agreement(table, tmp_path / "agree.png", title="labeler vs truth")
    _written(tmp_path / "agree.png")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert len(texts) == 3 * len(table)
    assert texts[-1] == f"{table.loc['macro', 'f1']:.2f}"


class _Tokenizer:
    def encode_batch(self, texts):
        return [t.split() for t in texts]


def test_report_lengths_and_cleaning_status(tmp_path):
    raw = pd.Series(["a b c d", "a b c", None, "a b c d e f"])
    clean = pd.Series(["a b", "a", "", "a b c"])
    fig = viz.report_lengths(raw, clean, _Tokenizer(), tmp_path / "len.png")
    _written(tmp_path / "len.png")
    assert sum(p.get_height() for p in fig.axes[0].patches) == 3 + 3  # reports of each kind
    fig = viz.cleaning_status(pd.Series(["rules", "rules", "llm"]), tmp_path / "status.png")
    _written(tmp_path / "status.png")
    assert [p.get_width() for p in fig.axes[0].patches] == [2, 1]
