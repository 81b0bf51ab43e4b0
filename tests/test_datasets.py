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


def test_raw_report_sections_keep_the_noise_inside_findings_and_impression_only():
    """The cleaning ablation's raw arm: the raw report's own FINDINGS / IMPRESSION sections
    (headers and everything else dropped), with the noise inside them kept."""
    from unixlib.data.datasets import REPORT_COLUMNS, report_texts

    raw = (
        "EXAMINATION: CHEST PA. INDICATION: ___ with cough. COMPARISON: ___. "
        "FINDINGS: Compared to the prior study, the left effusion is unchanged. "
        "IMPRESSION: Stable left effusion."
    )
    rows = pd.DataFrame({"report_raw": [raw, None], "report_clean": ["x", "y"]})
    text = report_texts(rows, "report_raw_sections").tolist()
    assert text[0] == (
        "FINDINGS: Compared to the prior study, the left effusion is unchanged. "
        "IMPRESSION: Stable left effusion."
    )
    assert text[1] == "" and "report_raw_sections" in REPORT_COLUMNS
    assert report_texts(rows, "report_clean").tolist() == ["x", "y"]
