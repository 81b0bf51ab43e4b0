"""Sources -> manifest: MIMIC-CXR(-JPG), IU X-ray, SynthCXR; rejects, counts, reject fraction.

Each test builds its own tiny dataset in tmp_path (the folder source: test_source_folder.py).
"""

from __future__ import annotations

import gzip
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tests.source_helpers import read_rejects, write_image
from unixlib.data.processed import unusable_reason
from unixlib.data.schema import CHEXPERT_NAMES, LABELS, MANIFEST_COLUMNS
from unixlib.data.sources.common import hash_split, normalize_view, report_problem
from unixlib.data.sources.prepare import TooManyRejectsError, prepare
from unixlib.data.synth.synthetic import SynthCXR

REPORT = "FINAL REPORT\n EXAMINATION: CHEST (PA AND LAT)\n INDICATION: ___ with cough.\n"
REPORT += " FINDINGS: The heart is enlarged.\n IMPRESSION: Cardiomegaly.\n"


# --- helpers -------------------------------------------------------------------------------


def test_report_problem() -> None:
    assert report_problem(REPORT) is None
    assert report_problem("") == "empty report"
    assert report_problem("   \n") == "empty report"
    assert report_problem("INDICATION: cough.\nCOMPARISON: None.") == (
        "report has neither FINDINGS nor IMPRESSION content"
    )
    assert report_problem("FINDINGS:\nIMPRESSION: Normal chest.") is None
    assert report_problem("Heart size is normal.") is None  # headerless free text = findings


def test_normalize_view_and_hash_split() -> None:
    views = ("PA", "AP Supine", "Frontal", "Lateral", "ll", "not stated")
    assert [normalize_view(v) for v in views] == ["PA", "AP", "FRONTAL", "LATERAL", "LL", "UNKNOWN"]
    assert normalize_view(math.nan) == "UNKNOWN"
    splits = [hash_split(f"id{i}", (0.7, 0.2, 0.1)) for i in range(5000)]
    assert splits == [hash_split(f"id{i}", (0.7, 0.2, 0.1)) for i in range(5000)]
    fractions = [splits.count(s) / 5000 for s in ("train", "validate", "test")]
    np.testing.assert_allclose(fractions, [0.7, 0.2, 0.1], atol=0.02)
    with pytest.raises(ValueError, match="summing to 1"):
        hash_split("x", (0.5, 0.2, 0.1))


# --- MIMIC-CXR-JPG -------------------------------------------------------------------------

# (dicom_id, subject, study, view, split, image kind, report)
MIMIC_ROWS = [
    ("d1", "10000032", "50000001", "PA", "train", "ok", REPORT),
    ("d2", "10000032", "50000001", "LATERAL", "train", "ok", REPORT),
    ("d3", "10000032", "50000002", "AP", "train", "missing", REPORT),
    ("d4", "11000033", "50000003", "PA", "validate", "corrupt", REPORT),
    ("d5", "11000033", "50000004", "PA", "train", "ok", ""),
    ("d6", "12000034", "50000005", "AP", "test", "ok", REPORT),
    ("d7", "12000034", "50000006", "PA", "train", "ok", "INDICATION: cough.\nCOMPARISON: ___"),
]


def _mimic_tree(root: Path) -> Path:
    meta, splits = [], []
    for dicom_id, subject, study, view, split, kind, report in MIMIC_ROWS:
        meta.append(
            {
                "dicom_id": dicom_id,
                "subject_id": subject,
                "study_id": study,
                "PerformedProcedureStepDescription": "CHEST",
                "ViewPosition": view,
            }
        )
        splits.append(
            {"dicom_id": dicom_id, "study_id": study, "subject_id": subject, "split": split}
        )
        study_dir = root / "files" / f"p{subject[:2]}" / f"p{subject}" / f"s{study}"
        study_dir.mkdir(parents=True, exist_ok=True)
        (root / "files" / f"p{subject[:2]}" / f"p{subject}" / f"s{study}.txt").write_text(report)
        if kind == "ok":
            write_image(study_dir / f"{dicom_id}.jpg")
        elif kind == "corrupt":
            (study_dir / f"{dicom_id}.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    labels = pd.DataFrame(
        [
            {
                "subject_id": "10000032",
                "study_id": "50000001",
                "Cardiomegaly": 1.0,
                "Edema": -1.0,
                "Pleural Effusion": 0.0,
            },
            {"subject_id": "12000034", "study_id": "50000005", "No Finding": 1.0},
        ],
        columns=["subject_id", "study_id", *CHEXPERT_NAMES.values()],
    )
    with gzip.open(root / "mimic-cxr-2.0.0-metadata.csv.gz", "wt") as f:  # .gz is read too
        pd.DataFrame(meta).to_csv(f, index=False)
    pd.DataFrame(splits).to_csv(root / "mimic-cxr-2.0.0-split.csv", index=False)
    labels.to_csv(root / "mimic-cxr-2.0.0-chexpert.csv", index=False)
    return root


def test_mimic_manifest_and_rejects(tmp_path: Path) -> None:
    root = _mimic_tree(tmp_path / "mimic")
    out = tmp_path / "out"
    result = prepare("mimic", out, 16, root=root, max_reject_frac=0.7)

    manifest = pd.read_parquet(result.manifest_path)
    assert list(manifest.columns) == list(MANIFEST_COLUMNS)
    assert manifest["id"].tolist() == ["d1", "d6"]
    assert manifest["split"].tolist() == ["train", "test"]
    assert manifest["view"].tolist() == ["PA", "AP"]
    assert (manifest["source"] == "mimic").all()
    d1 = manifest.iloc[0]
    assert (d1["cardiomegaly"], d1["edema"], d1["pleural_effusion"]) == (1.0, -1.0, 0.0)
    assert math.isnan(d1["atelectasis"])
    assert manifest.iloc[1]["no_finding"] == 1.0
    assert d1["report_raw"] == REPORT
    assert result.counts == {"train": 1, "validate": 0, "test": 1}
    assert (result.n_rejected, result.n_filtered, result.n_text_only) == (5, 1, 0)

    rejects = read_rejects(out)
    assert rejects["d2"] == ("view", "non-frontal view (LATERAL)")
    assert rejects["d3"] == ("image", "file not found")
    assert rejects["d4"][0] == "image" and rejects["d4"][1].startswith("unreadable or truncated")
    assert rejects["d5"] == ("report", "empty report")
    assert rejects["d7"] == ("report", "report has neither FINDINGS nor IMPRESSION content")

    # The image cache: square, 8-bit, the 30 x 40 image padded top and bottom with black.
    with Image.open(out / d1["image_path"]) as img:
        assert (img.mode, img.size) == ("L", (16, 16))
        pixels = np.asarray(img)
    assert (pixels[:2] == 0).all() and (pixels[14:] == 0).all() and (pixels[2:14] == 180).all()


def test_mimic_too_many_rejects_raises(tmp_path: Path) -> None:
    root = _mimic_tree(tmp_path / "mimic")
    # 4 data errors among the 6 rows that pass the view filter (the lateral is filtering).
    with pytest.raises(TooManyRejectsError, match=r"4 of 6 rows rejected \(66.7% > max_reject"):
        prepare("mimic", tmp_path / "out", 16, root=root)
    with pytest.raises(TooManyRejectsError, match="'empty report' x1") as info:
        prepare("mimic", tmp_path / "out", 16, root=root)
    assert "'file not found' x1" in str(info.value)
    assert len(read_rejects(tmp_path / "out")) == 5  # written before raising, for diagnosis
    assert not (tmp_path / "out" / "manifest.parquet").exists()


@pytest.mark.shared
def test_mimic_dicom_variant_and_separate_reports(tmp_path: Path, shared_data: Path) -> None:
    root, reports = tmp_path / "dcm", tmp_path / "reports"
    _mimic_tree(root)
    reports.mkdir()
    shutil.move(root / "files", reports / "files")  # reports in their own root, no images
    study = root / "files" / "p10" / "p10000032" / "s50000001"
    study.mkdir(parents=True)
    siim = next((shared_data / "realcxr" / "dicom").glob("SIIM_*.dcm"))
    shutil.copy(siim, study / "d1.dcm")  # a real JPEG-compressed DICOM
    result = prepare(
        "mimic",
        tmp_path / "out",
        32,
        root=root,
        reports_root=reports,
        image_format="dcm",
        max_reject_frac=1.0,
    )
    manifest = pd.read_parquet(result.manifest_path)
    assert manifest["id"].tolist() == ["d1"]  # d6's .dcm does not exist
    assert read_rejects(tmp_path / "out")["d6"] == ("image", "file not found")
    with Image.open(tmp_path / "out" / "images" / "d1.png") as img:
        assert img.size == (32, 32)


# --- IU X-ray (Open-i) ---------------------------------------------------------------------


def _iu_xml(uid: str, sections: dict[str, str], mesh: list[str], images: list[str]) -> str:
    texts = "".join(f'<AbstractText Label="{k}">{v}</AbstractText>' for k, v in sections.items())
    majors = "".join(f"<major>{m}</major>" for m in mesh)
    parents = "".join(
        f'<parentImage id="{i}"><figureId>F1</figureId></parentImage>' for i in images
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><eCitation><meta type="rr"/><uId id="{uid}"/>'
        f"<MedlineCitation><Article><Abstract>{texts}</Abstract></Article></MedlineCitation>"
        f"<MeSH>{majors}</MeSH>{parents}</eCitation>"
    )


def _iu_tree(root: Path) -> tuple[Path, Path, Path]:
    xml_dir, image_dir = root / "ecgen-radiology", root / "png"
    xml_dir.mkdir(parents=True)
    full = {
        "COMPARISON": "None.",
        "INDICATION": "Cough",
        "FINDINGS": "Heart is enlarged.",
        "IMPRESSION": "Cardiomegaly.",
    }
    studies = {
        "1": (
            "CXR1",
            full,
            ["Cardiomegaly/mild", "Pulmonary Congestion"],
            ["CXR1_1_IM-0001-3001", "CXR1_1_IM-0001-4001"],
        ),
        "2": ("CXR2", full, ["normal"], ["CXR2_IM-0652-1001"]),  # image absent: text only
        "3": ("CXR3", {"INDICATION": "Pain"}, ["normal"], ["CXR3_IM-1384-1001"]),
        "4": ("CXR4", full, ["No Indexing"], ["CXR4_IM-2050-1001", "CXR4_IM-2050-2001"]),
    }
    for name, (uid, sections, mesh, images) in studies.items():
        (xml_dir / f"{name}.xml").write_text(_iu_xml(uid, sections, mesh, images))
    for image_id in (
        "CXR1_1_IM-0001-3001",
        "CXR1_1_IM-0001-4001",
        "CXR3_IM-1384-1001",
        "CXR4_IM-2050-1001",
    ):
        write_image(image_dir / f"{image_id}.png", shape=(20, 20))
    views = root / "views.csv"
    pd.DataFrame(
        {"image_id": ["CXR1_1_IM-0001-3001", "CXR1_1_IM-0001-4001"], "view": ["Frontal", "Lateral"]}
    ).to_csv(views, index=False)
    return xml_dir, image_dir, views


def test_iuxray_manifest(tmp_path: Path) -> None:
    xml_dir, image_dir, views = _iu_tree(tmp_path / "iu")
    out = tmp_path / "out"
    result = prepare(
        "iuxray",
        out,
        8,
        reports_dir=xml_dir,
        image_dir=image_dir,
        views_csv=views,
        max_reject_frac=0.5,
    )
    manifest = pd.read_parquet(result.manifest_path).set_index("id")
    assert sorted(manifest.index) == ["CXR1_1_IM-0001-3001", "CXR2", "CXR4_IM-2050-1001"]
    assert manifest.loc["CXR2", "image_path"] == ""  # report kept for text work
    assert manifest.loc["CXR1_1_IM-0001-3001", "image_path"] == "images/CXR1_1_IM-0001-3001.png"
    # The views CSV's "Frontal" is a frontal view of unrecorded PA/AP (trained on); an image it
    # does not list may be lateral and stays UNKNOWN (not trained on).
    assert manifest["view"].to_dict() == {
        "CXR1_1_IM-0001-3001": "FRONTAL",
        "CXR2": "UNKNOWN",
        "CXR4_IM-2050-1001": "UNKNOWN",
    }
    cleaned = manifest.assign(report_clean="FINDINGS: Clear.")
    assert unusable_reason(cleaned).to_dict() == {
        "CXR1_1_IM-0001-3001": "",
        "CXR2": "no image",
        "CXR4_IM-2050-1001": "view not frontal (PA/AP/FRONTAL) or unknown",
    }
    assert manifest.loc["CXR2", "report_raw"] == (
        "COMPARISON: None.\nINDICATION: Cough\nFINDINGS: Heart is enlarged.\nIMPRESSION: Cardiomegaly."
    )
    # Splits follow the study uid, so all images of one study share one.
    assert manifest.loc["CXR4_IM-2050-1001", "split"] == hash_split("CXR4")
    # MeSH labels: Cardiomegaly -> cardiomegaly, Pulmonary Congestion -> edema; others 0.
    cxr1 = manifest.loc["CXR1_1_IM-0001-3001", list(LABELS)]
    assert {k for k, v in cxr1.items() if v == 1.0} == {"cardiomegaly", "edema"}
    assert cxr1["no_finding"] == 0.0
    assert manifest.loc["CXR2", "no_finding"] == 1.0  # "normal"
    assert manifest.loc["CXR4_IM-2050-1001", list(LABELS)].isna().all()  # "No Indexing"
    assert (result.n_text_only, result.n_rejected, result.n_filtered) == (1, 3, 1)

    rejects = read_rejects(out)
    assert rejects["CXR1_1_IM-0001-4001"] == ("view", "non-frontal view (LATERAL)")
    assert rejects["CXR3_IM-1384-1001"] == (
        "report",
        "report has neither FINDINGS nor IMPRESSION content",
    )
    assert rejects["CXR4_IM-2050-2001"] == ("image", "file not found")


# --- SynthCXR ------------------------------------------------------------------------------


def test_synth_manifest_is_deterministic(tmp_path: Path) -> None:
    args = dict(n_train=4, n_validate=2, n_test=1, seed=3)
    first = prepare("synth", tmp_path / "a", 32, **args)
    again = prepare("synth", tmp_path / "b", 32, **args)
    assert first.counts == {"train": 4, "validate": 2, "test": 1}
    assert first.n_rejected == 0  # every synthetic report has FINDINGS/IMPRESSION
    manifest = pd.read_parquet(first.manifest_path)
    pd.testing.assert_frame_equal(manifest, pd.read_parquet(again.manifest_path))
    assert manifest["id"].tolist() == [f"synth-{i:06d}" for i in range(7)]
    assert manifest["split"].tolist() == ["train"] * 4 + ["validate"] * 2 + ["test"]

    sample = SynthCXR(seed=3, size=32).sample(5)
    row = manifest.iloc[5]
    assert row["report_raw"] == sample.report_raw and row["view"] == sample.view
    for name in LABELS:
        assert row[name] == sample.labels[name] or (
            math.isnan(row[name]) and math.isnan(sample.labels[name])
        )
    with Image.open(tmp_path / "a" / row["image_path"]) as img:
        pixels = np.asarray(img)
    assert pixels.shape == (32, 32)
    np.testing.assert_array_equal(pixels, np.rint(np.clip(sample.image, 0, 1) * 255))
    assert (tmp_path / "a" / row["image_path"]).read_bytes() == (
        tmp_path / "b" / row["image_path"]
    ).read_bytes()
