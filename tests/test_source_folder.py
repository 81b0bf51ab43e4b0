"""The ``folder`` source (any images + CSV): NIH/CheXpert label names, splits, real images."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tests.source_helpers import read_rejects, write_image
from unixlib.data.schema import LABELS
from unixlib.data.sources import image_cache
from unixlib.data.sources.common import hash_split
from unixlib.data.sources.folder import parse_labels
from unixlib.data.sources.prepare import prepare


def test_parse_labels_nih_and_chexpert_names() -> None:
    labels = parse_labels("Effusion|Mass|Nodule|Pleural_Thickening|Emphysema")
    positives = {k for k, v in labels.items() if v == 1.0}
    assert positives == {"pleural_effusion", "lung_lesion", "pleural_other"}
    assert sum(v == 0.0 for v in labels.values()) == 11  # Emphysema has no CheXpert class
    assert parse_labels("No Finding")["no_finding"] == 1.0
    assert parse_labels("Pleural Effusion|support_devices")["support_devices"] == 1.0
    assert all(math.isnan(v) for v in parse_labels(" ").values())
    with pytest.raises(KeyError, match="unknown label name 'COVID-19'"):
        parse_labels("COVID-19|Effusion")


def test_folder_with_nih_labels(tmp_path: Path) -> None:
    root = tmp_path / "imgs"
    rows = [
        ("a.png", "Effusion|Mass", "PA", "p1", "FINDINGS: Left effusion."),
        ("b.png", "No Finding", "AP Supine", "p2", "Normal chest."),
        ("c.png", "Pleural_Thickening", "Lateral", "p3", "FINDINGS: Thick pleura."),
        ("d.png", "COVID-19", "PA", "p4", "FINDINGS: Opacities."),
        ("e.png", "", "", "p1", "IMPRESSION: No change."),
        ("sub/f.png", "Cardiomegaly", "PA", "p5", "FINDINGS: Big heart."),
        ("g.png", "Edema", "PA", "p6", ""),
    ]
    for path, *_ in rows:
        if path != "sub/f.png":
            write_image(root / path, shape=(10, 10))
    (root / "sub").mkdir()
    Image.fromarray(np.full((10, 5), 65535, dtype=np.uint16)).save(root / "sub" / "f.png")
    csv = tmp_path / "data.csv"
    pd.DataFrame(rows, columns=["path", "findings", "view", "patient", "text"]).to_csv(
        csv, index=False
    )

    out = tmp_path / "out"
    result = prepare(
        "folder",
        out,
        10,
        root=root,
        csv=csv,
        image_col="path",
        labels_col="findings",
        view_col="view",
        group_col="patient",
        report_col="text",
        max_reject_frac=0.5,
    )
    manifest = pd.read_parquet(result.manifest_path).set_index("id")
    assert list(manifest.index) == ["a", "b", "e", "sub/f"]
    assert manifest.loc["a", "pleural_effusion"] == manifest.loc["a", "lung_lesion"] == 1.0
    assert manifest.loc["a", list(LABELS)].sum() == 2.0  # every other class 0
    assert manifest.loc["b", "no_finding"] == 1.0 and manifest.loc["b", "view"] == "AP"
    assert manifest.loc["e", list(LABELS)].isna().all() and manifest.loc["e", "view"] == "UNKNOWN"
    assert manifest.loc["e", "split"] == manifest.loc["a", "split"] == hash_split("p1")
    assert manifest.loc["sub/f", "image_path"] == "images/sub_f.png"
    with Image.open(out / "images" / "sub_f.png") as img:  # 16-bit white, 10 x 5 -> padded
        pixels = np.asarray(img)
    assert (
        (pixels[:, 3:7] == 255).all() and (pixels[:, :2] == 0).all() and (pixels[:, 8:] == 0).all()
    )

    rejects = read_rejects(out)
    assert rejects["c"] == ("view", "non-frontal view (Lateral)")
    assert rejects["d"] == ("labels", "unknown label name 'COVID-19' (add it with label_map)")
    assert rejects["g"] == ("report", "empty report")


def test_folder_without_reports_split_column_and_label_map(tmp_path: Path) -> None:
    for name in ("x.png", "y.png"):
        write_image(tmp_path / name, shape=(6, 6))
    csv = tmp_path / "d.csv"
    pd.DataFrame(
        {"file": ["x.png", "y.png"], "split": ["val", "test"], "lab": ["COVID-19", "healthy"]}
    ).to_csv(csv, index=False)
    result = prepare(
        "folder",
        tmp_path / "out",
        6,
        root=tmp_path,
        csv=csv,
        image_col="file",
        split_col="split",
        labels_col="lab",
        label_map={"COVID-19": None, "healthy": "no_finding"},
    )
    manifest = pd.read_parquet(result.manifest_path)
    assert manifest["split"].tolist() == ["validate", "test"]
    assert manifest["report_raw"].tolist() == ["", ""]  # no report column: none required
    assert manifest.loc[0, list(LABELS)].sum() == 0.0 and manifest.loc[1, "no_finding"] == 1.0
    with pytest.raises(ValueError, match=r"no column\(s\) \['nope'\]"):
        prepare("folder", tmp_path / "o2", 6, root=tmp_path, csv=csv, image_col="nope")


@pytest.mark.slow
def test_image_cache_on_a_process_pool_matches_one_process(tmp_path: Path, monkeypatch) -> None:
    """Rows, rejects and PNG bytes do not depend on the pool (an unreadable file included)."""
    rng = np.random.default_rng(0)
    names = [f"im{i:02d}.png" for i in range(12)]
    for name in names:
        Image.fromarray(rng.integers(0, 255, (9, 13), dtype=np.uint8)).save(tmp_path / name)
    (tmp_path / "im05.png").write_bytes(b"not an image")
    csv = tmp_path / "d.csv"
    pd.DataFrame({"file": names, "lab": ["Effusion"] * len(names)}).to_csv(csv, index=False)
    monkeypatch.setattr(image_cache, "POOL_MIN_JOBS", 0)
    outs = {}
    for workers in (1, 2):
        out = tmp_path / f"out{workers}"
        prepare(
            "folder",
            out,
            8,
            root=tmp_path,
            csv=csv,
            image_col="file",
            labels_col="lab",
            max_reject_frac=0.5,
            workers=workers,
        )
        outs[workers] = out
        assert not (out / "images" / ".pending").exists()
    one, two = outs[1], outs[2]
    pd.testing.assert_frame_equal(
        pd.read_parquet(one / "manifest.parquet"), pd.read_parquet(two / "manifest.parquet")
    )
    assert read_rejects(one) == read_rejects(two) and len(read_rejects(one)) == 1
    pngs = sorted(p.name for p in (one / "images").iterdir())
    assert len(pngs) == 11 and pngs == sorted(p.name for p in (two / "images").iterdir())
    for name in pngs:
        assert (one / "images" / name).read_bytes() == (two / "images" / name).read_bytes()


# --- real images (../shared/data/realcxr/images) -------------------------------------------


@pytest.mark.shared
def test_folder_on_real_images(tmp_path: Path, shared_data: Path) -> None:
    images = shared_data / "realcxr" / "images"
    real = pd.read_csv(images / "manifest.csv", dtype=str, keep_default_na=False)
    assert len(real) == 634
    nih = real[real["file"].str.startswith("nih_")].head(40)
    csv = tmp_path / "nih.csv"
    nih.to_csv(csv, index=False)
    result = prepare(
        "folder",
        tmp_path / "out",
        32,
        root=images,
        csv=csv,
        image_col="file",
        labels_col="labels",
        view_col="view",
        group_col="patient_id",
    )
    assert result.n_rows == 40 and result.n_rejected == 0
    manifest = pd.read_parquet(result.manifest_path).set_index("id")
    row = manifest.loc["nih_00012685_000"]  # "Nodule|Pleural_Thickening"
    assert {k for k in LABELS if row[k] == 1.0} == {"lung_lesion", "pleural_other"}
    assert set(manifest["view"]) <= {"PA", "AP"}
    for path in manifest["image_path"].head(5):
        with Image.open(tmp_path / "out" / path) as img:
            assert (img.mode, img.size) == ("L", (32, 32))


@pytest.mark.shared
def test_folder_on_all_real_images_without_labels(tmp_path: Path, shared_data: Path) -> None:
    images = shared_data / "realcxr" / "images"
    result = prepare(
        "folder",
        tmp_path / "out",
        16,
        root=images,
        csv=images / "manifest.csv",
        image_col="file",
        view_col="view",
        group_col="patient_id",
    )
    assert result.n_rows == 634 and result.n_rejected == 0
    assert sum(result.counts.values()) == 634 and min(result.counts.values()) > 0
    manifest = pd.read_parquet(result.manifest_path)
    assert manifest["view"].value_counts().to_dict() == {"PA": 461, "AP": 133, "UNKNOWN": 40}
