"""ReportImageDataset: which rows a training split uses, and saying which it skips."""

from __future__ import annotations

import pandas as pd
import pytest

from unixlib.data.datasets import ReportImageDataset
from unixlib.data.processed import unusable_reason
from unixlib.data.text.tokenizer import train_bpe


def test_dataset_names_the_rows_it_skips(tmp_path, capsys):
    """Rows without an image, a cleaned report or a frontal view are skipped with their reason
    said, and a split with none left is an error naming the reasons."""
    frame = pd.DataFrame(
        {
            "id": ["a", "b", "c", "d"],
            "split": ["train"] * 3 + ["test"],
            "image_path": ["", "x.png", "x.png", "x.png"],
            "report_clean": ["FINDINGS: Clear.", "", "FINDINGS: Clear.", "FINDINGS: Clear."],
            "view": ["PA", "AP", "LATERAL", "UNKNOWN"],
        }
    )
    assert unusable_reason(frame).tolist() == [
        "no image",
        "no cleaned report",
        "view not frontal (PA/AP/FRONTAL) or unknown",
        "view not frontal (PA/AP/FRONTAL) or unknown",
    ]
    tok = train_bpe(["FINDINGS: Clear. IMPRESSION: Normal."] * 4, vocab_size=300)
    with pytest.raises(ValueError, match=r"no usable train rows.*1 no image"):
        ReportImageDataset(frame, tmp_path, tok, "train", 32, "gen")
    assert "train: 3 of 3 rows not used" in capsys.readouterr().out
