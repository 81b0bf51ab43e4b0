"""``python -m unixlib prepare``'s exit status: 0 when every row is used or excluded by design
(non-frontal views), 3 when some rows were rejected (listed in rejects.csv), 1 above
--max-reject-frac, 2 with --fail-fast at any rejected row."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from batch_helpers import BAD, GOOD, mixed_images

from tests.source_helpers import read_rejects, write_image
from unixlib.cli.common import REJECTED_STATUS
from unixlib.cli.main import main


def _folder(tmp_path: Path, names: list[str]) -> tuple[Path, Path]:
    """Images + a CSV (path, report, view) naming ``names``; ``lateral.png`` is a lateral view."""
    root = tmp_path / "images"
    mixed_images(root)
    write_image(root / "lateral.png")
    views = ["Lateral" if n == "lateral.png" else "PA" for n in names]
    csv = tmp_path / "data.csv"
    frame = pd.DataFrame({"path": names, "report": "FINDINGS: Clear lungs.", "view": views})
    frame.to_csv(csv, index=False)
    return root, csv


def _argv(root: Path, csv: Path, out: Path, *extra: str) -> list[str]:
    return [
        *("prepare", "--source", "folder", "--out", str(out), "--root", str(root)),
        *("--csv", str(csv), "--image-col", "path", "--report-col", "report"),
        *("--view-col", "view", "--image-size", "16", *extra),
    ]


def test_prepare_status_follows_the_rejects(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("UNIXLIB_PROGRESS", "off")
    names = [*GOOD[:2], "lateral.png", *BAD, "absent.png", *GOOD[2:]]
    root, csv = _folder(tmp_path, names)
    out = tmp_path / "out"
    assert main(_argv(root, csv, out, "--max-reject-frac", "0.9")) == REJECTED_STATUS
    manifest = pd.read_parquet(out / "manifest.parquet")
    assert manifest["id"].tolist() == [Path(n).stem for n in GOOD]  # 16-bit, RGBA, DICOM too
    rejects = read_rejects(out)
    assert rejects["lateral"] == ("view", "non-frontal view (Lateral)")  # by design
    assert rejects["absent"] == ("image", "file not found")
    for name, reason in BAD.items():
        stage, why = rejects[Path(name).stem]
        assert stage == "image" and why.startswith(reason), (name, why)
    captured = capsys.readouterr()
    assert "(1 excluded by design: non-frontal views; 6 rejected)" in captured.out
    assert captured.err.strip().endswith("(the rows whose stage is not 'view')")
    assert captured.err.startswith("6 inputs were rejected: see ")

    # a non-frontal view is no bad input: all used or excluded -> 0
    root, csv = _folder(tmp_path / "clean", ["gray8.png", "lateral.png", "scan.dcm"])
    assert main(_argv(root, csv, tmp_path / "clean_out")) == 0
    assert read_rejects(tmp_path / "clean_out") == {
        "lateral": ("view", "non-frontal view (Lateral)")
    }


def test_prepare_fail_fast_and_too_many_rejects(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("UNIXLIB_PROGRESS", "off")
    root, csv = _folder(tmp_path, ["gray8.png", "lateral.png", "notes.png", "empty.png"])
    out = tmp_path / "out"
    assert main(_argv(root, csv, out, "--fail-fast")) == 2
    err = capsys.readouterr().err
    assert err == (
        f"error: prepare: {csv}:4: not an image (not a format PIL reads, nor DICOM) "
        f"(--fail-fast; all 2 in {out / 'rejects.csv'})\n"
    )
    assert not (out / "manifest.parquet").exists()
    assert main(_argv(root, csv, tmp_path / "o2")) == 1  # 2 of 3 > the default 5%
    assert "2 of 3 rows rejected" in capsys.readouterr().err
    root, csv = _folder(tmp_path / "ok", ["gray8.png", "lateral.png"])
    assert main(_argv(root, csv, tmp_path / "o3", "--fail-fast")) == 0  # a view is no error
