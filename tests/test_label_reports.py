"""Reports templated from labels: deterministic, and the labeler reads back what they state."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from unixlib.data.schema import LABELS
from unixlib.data.sources.folder import candidates
from unixlib.data.text.label_reports import POSITIVE, report_from_labels
from unixlib.data.text.labeler import label_texts


def _labels(*positive: str) -> dict[str, float]:
    return {c: (1.0 if c in positive else 0.0) for c in LABELS}


@pytest.mark.parametrize("cls", sorted(POSITIVE))
def test_each_class_reads_back(cls: str) -> None:
    for key in ("a", "b", "c", "d"):  # both phrasings
        text = report_from_labels(_labels(cls), key)
        assert text.startswith("FINDINGS: ") and " IMPRESSION: " in text
        got = label_texts([text]).iloc[0]
        positives = {c for c in LABELS if got[c] == 1.0}
        assert cls in positives, (text, positives)
        # opacity is implied by some findings; CheXpert's No Finding ignores support devices
        allowed = {cls, "lung_opacity"} | ({"no_finding"} if cls == "support_devices" else set())
        assert positives <= allowed, (text, positives)


def test_normal_and_unlabelled() -> None:
    normal = report_from_labels(_labels("no_finding"), "x")
    assert normal.endswith("IMPRESSION: No acute cardiopulmonary process.")
    got = label_texts([normal]).iloc[0]
    assert got["no_finding"] == 1.0
    assert report_from_labels({c: math.nan for c in LABELS}, "x") == ""
    assert report_from_labels(_labels("edema"), "k") == report_from_labels(_labels("edema"), "k")


def test_folder_source_templates_reports(tmp_path: Path) -> None:
    csv = tmp_path / "m.csv"
    csv.write_text("file,labels\na.png,Cardiomegaly|Effusion\nb.png,No Finding\n")
    rows = list(candidates(tmp_path, csv, "file", labels_col="labels", template_reports=True))
    text = rows[0].report_raw.lower()
    assert ("heart" in text or "cardiomegaly" in text) and "effusion" in text
    assert "No acute" in rows[1].report_raw
    with pytest.raises(ValueError, match="template_reports"):
        list(candidates(tmp_path, csv, "file", template_reports=True))
