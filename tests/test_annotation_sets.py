"""The paper's two training annotation sets (issue 22 item 2): understanding on the MIMIC-CXR
reports, generation on the LLaVA-Rad annotations; which rows each task trains on, with which
text; and the test rows' generation prompts kept verbatim (item 7)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.source_helpers import write_image
from unixlib.data.datasets import ReportImageDataset, task_texts
from unixlib.data.schema import CHEXPERT_NAMES, GEN_TEXT_COLUMN, MANIFEST_COLUMNS, TASK_COLUMN
from unixlib.data.sources.prepare import prepare
from unixlib.data.text.tokenizer import train_bpe

REPORT = "FINDINGS: Mild cardiomegaly. IMPRESSION: No acute process."
# (dicom_id, subject, study, split, report file written?)
ROWS = [
    ("both1", "10000001", "50000001", "train", True),  # in both annotation sets
    ("und1", "10000002", "50000002", "train", True),  # not in the generation CSV
    ("gen1", "10000003", "50000003", "train", False),  # listed, but its report file is missing
    ("test1", "10000004", "50000004", "test", True),
]
GEN_PROMPT = "Stable mild cardiomegaly.  No effusion"  # verbatim: no prefix, two spaces kept
TEST_PROMPT = "Stable appearance of the chest"


def _path(subject: str, study: str, dicom: str) -> str:
    return f"files/p{subject[:2]}/p{subject}/s{study}/{dicom}.jpg"


def _tree(root: Path) -> Path:
    meta, splits = [], []
    for dicom, subject, study, split, with_report in ROWS:
        meta.append(f"{dicom},{subject},{study},PA")
        splits.append(f"{dicom},{study},{subject},{split}")
        write_image(root / _path(subject, study, dicom))
        if with_report:
            (root / f"files/p{subject[:2]}/p{subject}/s{study}.txt").write_text(REPORT)
    (root / "mimic-cxr-2.0.0-metadata.csv").write_text(
        "dicom_id,subject_id,study_id,ViewPosition\n" + "\n".join(meta) + "\n"
    )
    (root / "mimic-cxr-2.0.0-split.csv").write_text(
        "dicom_id,study_id,subject_id,split\n" + "\n".join(splits) + "\n"
    )
    header = "subject_id,study_id," + ",".join(CHEXPERT_NAMES.values())
    (root / "mimic-cxr-2.0.0-chexpert.csv").write_text(header + "\n")
    train_csv = pd.DataFrame(
        {
            "path": [_path(*r[1:3], r[0]) for r in ROWS if r[0] in ("both1", "gen1")],
            "annotated_prompt": [GEN_PROMPT, GEN_PROMPT],
        }
    )
    train_csv.to_csv(root / "LLAVARAD_ANNOTATIONS_TRAIN.csv", index=False)
    test = ROWS[3]
    pd.DataFrame({"path": [_path(*test[1:3], test[0])], "annotated_prompt": [TEST_PROMPT]}).to_csv(
        root / "LLAVARAD_ANNOTATIONS_TEST.csv", index=False
    )
    return root


def test_mimic_marks_each_row_with_its_annotation_sets(tmp_path: Path) -> None:
    root = _tree(tmp_path / "mimic")
    result = prepare(
        "mimic",
        tmp_path / "out",
        16,
        root=root,
        test_annotations=root / "LLAVARAD_ANNOTATIONS_TEST.csv",
        gen_annotations=root / "LLAVARAD_ANNOTATIONS_TRAIN.csv",
    )
    manifest = pd.read_parquet(result.manifest_path).set_index("id")
    assert list(manifest.reset_index().columns) == [*MANIFEST_COLUMNS, TASK_COLUMN, GEN_TEXT_COLUMN]
    assert manifest[TASK_COLUMN].to_dict() == {
        "both1": "both",
        "und1": "und",
        "gen1": "gen",
        "test1": "both",
    }
    assert manifest.at["both1", GEN_TEXT_COLUMN] == GEN_PROMPT  # verbatim
    assert manifest.at["both1", "report_raw"] == REPORT  # understanding keeps its report
    assert manifest.at["und1", GEN_TEXT_COLUMN] == ""
    assert manifest.at["gen1", "report_raw"] == ""  # kept: the generation set needs no report
    assert manifest.at["test1", GEN_TEXT_COLUMN] == TEST_PROMPT


def test_without_the_training_annotations_no_task_columns(tmp_path: Path) -> None:
    root = _tree(tmp_path / "mimic")
    result = prepare("mimic", tmp_path / "out", 16, root=root, max_reject_frac=0.5)
    assert list(pd.read_parquet(result.manifest_path).columns) == list(MANIFEST_COLUMNS)


def test_training_annotations_naming_a_test_image_are_an_error(tmp_path: Path) -> None:
    root = _tree(tmp_path / "mimic")
    test = ROWS[3]
    bad = pd.DataFrame({"path": [_path(*test[1:3], test[0])], "annotated_prompt": ["x"]})
    bad.to_csv(root / "bad.csv", index=False)
    with pytest.raises(ValueError, match=r"1 annotated training images are in the official test"):
        prepare("mimic", tmp_path / "out", 16, root=root, gen_annotations=root / "bad.csv")


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": ["both1", "und1", "gen1"],
            "split": ["train"] * 3,
            "image_path": ["a.png", "b.png", "c.png"],
            "view": ["PA"] * 3,
            "report_clean": ["FINDINGS: Clear lungs.", "FINDINGS: Normal heart.", ""],
            "report_raw": ["raw a", "raw b", ""],
            TASK_COLUMN: ["both", "und", "gen"],
            GEN_TEXT_COLUMN: [GEN_PROMPT, "", GEN_PROMPT],
        }
    )


def test_each_task_trains_on_its_own_set_and_text(tmp_path: Path, capsys) -> None:
    frame = _frame()
    for name in frame["image_path"]:
        write_image(tmp_path / name)
    tok = train_bpe([GEN_PROMPT, *frame["report_clean"]] * 4, vocab_size=300)
    und = ReportImageDataset(frame, tmp_path, tok, "train", 16, "und")
    gen = ReportImageDataset(frame, tmp_path, tok, "train", 16, "gen")
    assert und.rows["id"].tolist() == ["both1", "und1"]
    assert gen.rows["id"].tolist() == ["both1", "gen1"]
    assert [tok.decode(ids) for ids in und.report_ids] == [
        "FINDINGS: Clear lungs.",
        "FINDINGS: Normal heart.",
    ]
    assert [tok.tokenizer.decode(ids) for ids in gen.report_ids] == [GEN_PROMPT, GEN_PROMPT]
    out = capsys.readouterr().out
    assert "1 not in the und annotation set" in out and "1 not in the gen annotation set" in out


def test_task_texts_fall_back_to_the_cleaned_report() -> None:
    frame = _frame()
    assert task_texts(frame, "gen").tolist() == [GEN_PROMPT, "FINDINGS: Normal heart.", GEN_PROMPT]
    assert task_texts(frame, "und").tolist() == frame["report_clean"].tolist()
    no_column = frame.drop(columns=[GEN_TEXT_COLUMN, TASK_COLUMN])
    assert task_texts(no_column, "gen").tolist() == frame["report_clean"].tolist()
