"""The ``mimic`` source: MIMIC-CXR-JPG (or MIMIC-CXR DICOM) -> candidates, one per image.

Expected layout (PhysioNet, MIMIC-CXR-JPG 2.0/2.1)::

    <csv_root>/mimic-cxr-2.0.0-metadata.csv[.gz]   dicom_id, subject_id, study_id, ViewPosition
    <csv_root>/mimic-cxr-2.0.0-split.csv[.gz]      dicom_id, study_id, subject_id, split
    <csv_root>/mimic-cxr-2.0.0-chexpert.csv[.gz]   subject_id, study_id, 14 CheXpert columns
    <root>/files/p10/p10000032/s50414267/<dicom_id>.jpg      (.dcm for MIMIC-CXR DICOM)
    <reports_root>/files/p10/p10000032/s50414267.txt        (mimic-cxr-reports.zip, unzipped)

Row id = ``dicom_id``; split = the official split; labels = the CheXpert CSV's values
(1 / 0 / -1 / empty -> NaN; a study missing from the CSV gets all-NaN labels, which the
labeler fills later). Frontal views only (the paper trains on frontal images): with
``frontal_only`` (default) every image whose ViewPosition is not exactly PA or AP (LATERAL, LL,
AP AXIAL, empty, ...) is recorded as a ``view`` reject "non-frontal view (<ViewPosition>)".

``test_annotations`` (the ``release-eval`` profile): the LLaVA-Rad / CheXGenBench test annotation
CSV (``LLAVARAD_ANNOTATIONS_TEST.csv``, columns ``path`` = ``files/p../p../s../<dicom_id>.jpg``
relative to the MIMIC-CXR-JPG root and ``annotated_prompt``), the 4,352 test report-image pairs
the paper's generation tables use. With it the test split is exactly those images and each one's
report is its annotated prompt (the text the images are generated from); a test image the CSV
does not list is rejected ("not in the test annotations"), and a listed image absent from the
metadata is an error. Train and validate rows are unchanged.

``gen_annotations`` (the ``paper`` profile): the LLaVA-Rad / CheXGenBench annotation CSV of the
training (and validation) images, same columns, e.g. ``LLAVARAD_ANNOTATIONS_TRAIN.csv``: the
paper's *generation* training set (237,387 pairs), an annotation set of its own beside the
*understanding* set (163,344 pairs: the MIMIC-CXR reports, cleaned by notebook 01). With it every
non-test row says which set it is in (the manifest's optional ``task`` column, ``schema``): a
listed image is in both (``task`` "both": its report trains understanding, its annotated prompt,
``report_gen``, verbatim, trains generation), an unlisted one in the understanding set only
("und"), and a listed image whose report file is missing in the generation set only ("gen").
An image it lists that the official split puts in the test split is an error (it would train on
a test image). Without it both tasks train on every row's cleaned report.

Test rows with ``test_annotations`` also get ``report_gen`` = the annotated prompt: notebook 05
generates from it verbatim, as the release does (``eval/base/dataset.py`` reads
``annotated_prompt`` and feeds it to the model unchanged).

These are the test pairs of the **generation** tables (3-4) only. The paper's **understanding**
table (Table 2) uses another MIMIC-CXR test set: the 2,365 frontal pairs of the official
repository's ``eval/data/understanding/test_data.json``, each with its own prompt and reference.
Give it as the source argument ``understanding_test`` (``release-eval`` does): ``prepare`` then
reads it with :mod:`.understanding_test` (strict; image paths relative to ``root``) and writes
``understanding_test.parquet`` beside the manifest, on which notebook 05 computes Table 2. The
training and generation rows do not change. Without it (``smoke``, ``realcxr``, ``paper``),
Table 2 is on the test split like every other table.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from unixlib.data.schema import CHEXPERT_NAMES, FRONTAL_VIEWS, LABELS
from unixlib.data.sources.common import (
    STAGE_LABELS,
    STAGE_METADATA,
    STAGE_REPORT,
    STAGE_VIEW,
    Candidate,
    normalize_split,
    normalize_view,
)

METADATA_CSV = "mimic-cxr-2.0.0-metadata.csv"
SPLIT_CSV = "mimic-cxr-2.0.0-split.csv"
CHEXPERT_CSV = "mimic-cxr-2.0.0-chexpert.csv"
_VALID_LABELS = frozenset({1.0, 0.0, -1.0})


def candidates(
    root: str | Path,
    reports_root: str | Path | None = None,
    csv_root: str | Path | None = None,
    image_format: str = "jpg",
    frontal_only: bool = True,
    test_annotations: str | Path | None = None,
    gen_annotations: str | Path | None = None,
) -> Iterator[Candidate]:
    """Yield one candidate per row of the metadata CSV.

    Args:
        root: folder holding ``files/`` with the images.
        reports_root: folder holding ``files/`` with the report ``.txt`` files (default root).
        csv_root: folder holding the three CSVs (default root).
        image_format: ``"jpg"`` (MIMIC-CXR-JPG) or ``"dcm"`` (MIMIC-CXR DICOM).
        frontal_only: reject images whose ViewPosition is not PA/AP (module doc).
        test_annotations: the LLaVA-Rad / CheXGenBench test CSV (module doc), or None.
        gen_annotations: the LLaVA-Rad / CheXGenBench training CSV: the generation training
            set (module doc), or None.
    """
    if image_format not in ("jpg", "dcm"):
        raise ValueError(f"image_format must be 'jpg' or 'dcm', got {image_format!r}")
    root = Path(root)
    reports_root = Path(reports_root) if reports_root is not None else root
    csv_root = Path(csv_root) if csv_root is not None else root
    meta = _read_csv(csv_root, METADATA_CSV, ("dicom_id", "subject_id", "study_id", "ViewPosition"))
    splits = _read_csv(csv_root, SPLIT_CSV, ("dicom_id", "split"))
    labels = _read_csv(csv_root, CHEXPERT_CSV, ("subject_id", "study_id", *CHEXPERT_NAMES.values()))
    split_of = dict(zip(splits["dicom_id"], splits["split"], strict=True))
    gen = _annotated_prompts(gen_annotations, meta) if gen_annotations else None
    if gen is not None:
        _no_test_images(gen, split_of, gen_annotations)
    release = _Release(
        root=root,
        reports_root=reports_root,
        image_format=image_format,
        frontal_only=frontal_only,
        split_of=split_of,
        labels_of={
            (str(row["subject_id"]), str(row["study_id"])): row
            for row in labels.to_dict(orient="records")
        },
        prompts=_annotated_prompts(test_annotations, meta) if test_annotations else None,
        gen_prompts=gen,
    )
    for row in meta.to_dict(orient="records"):
        yield _candidate(row, release)


@dataclass(frozen=True)
class _Release:
    """What turns one metadata row into a candidate: paths, options and the CSV lookups."""

    root: Path  # holds files/ with the images
    reports_root: Path  # holds files/ with the reports
    image_format: str  # "jpg" | "dcm"
    frontal_only: bool
    split_of: dict[str, object]  # dicom_id -> the split CSV's value (not yet normalised)
    labels_of: dict[tuple[str, str], dict[str, object]]  # (subject, study) -> CheXpert row
    prompts: dict[str, str] | None  # dicom_id -> annotated prompt (test annotations) or None
    gen_prompts: dict[str, str] | None = None  # the same for the generation training set


def _annotated_prompts(path: str | Path, meta: pd.DataFrame) -> dict[str, str]:
    """The test annotations (:func:`read_test_annotations`); every image they name must be in
    the metadata (ValueError otherwise: the CSV belongs to another release)."""
    prompts = read_test_annotations(path)
    unknown = set(prompts) - set(meta["dicom_id"].astype(str))
    if unknown:
        raise ValueError(
            f"{path}: {len(unknown)} annotated images are not in "
            f"{METADATA_CSV}, e.g. {sorted(unknown)[:3]}"
        )
    return prompts


def _no_test_images(prompts: dict[str, str], split_of: dict[str, object], path: str | Path) -> None:
    """ValueError when the training annotations name an image of the official test split."""
    test = sorted(i for i in prompts if normalize_split(split_of.get(i)) == "test")
    if test:
        raise ValueError(
            f"{path}: {len(test)} annotated training images are in the official test split, "
            f"e.g. {test[:3]} (the generation training set must not hold test images; use "
            "CheXGenBench's LLAVARAD_ANNOTATIONS_TRAIN.csv)"
        )


def _candidate(row: dict[str, object], release: _Release) -> Candidate:
    """The candidate of one metadata row, rejected with its reason at the first check it fails:
    view, split, test annotation, labels, report (in that order)."""
    dicom_id, subject, study = (str(row[k]) for k in ("dicom_id", "subject_id", "study_id"))
    study_dir = f"files/p{subject[:2]}/p{subject}/s{study}"
    image = release.root / study_dir / f"{dicom_id}.{release.image_format}"
    cand = Candidate(
        id=dicom_id, ref=str(image), view=normalize_view(row["ViewPosition"]), image=image
    )
    raw_view = row["ViewPosition"] if isinstance(row["ViewPosition"], str) else ""
    if release.frontal_only and raw_view.strip() not in FRONTAL_VIEWS:
        return cand.rejected(STAGE_VIEW, f"non-frontal view ({raw_view.strip() or 'missing'})")
    split = normalize_split(release.split_of.get(dicom_id))
    if split is None:
        reason = f"no valid split in {SPLIT_CSV} ({release.split_of.get(dicom_id)!r})"
        return cand.rejected(STAGE_METADATA, reason)
    cand.split = split
    if release.prompts is not None and split == "test":
        if dicom_id not in release.prompts:
            return cand.rejected(STAGE_METADATA, "not in the test annotations")
        cand.report_raw = cand.report_gen = release.prompts[dicom_id]
    gen_prompt = None
    if release.gen_prompts is not None and split != "test":
        gen_prompt = release.gen_prompts.get(dicom_id)
        cand.task, cand.report_gen = ("both", gen_prompt) if gen_prompt is not None else ("und", "")
    label_row = release.labels_of.get((subject, study))
    if label_row is not None:
        try:
            cand.labels = _chexpert_labels(label_row)
        except ValueError as err:
            return cand.rejected(STAGE_LABELS, str(err))
    if cand.report_raw:  # the annotated prompt of a test image
        return cand
    report_path = release.reports_root / f"{study_dir}.txt"
    if not report_path.is_file() and gen_prompt is not None:  # generation set only
        cand.task, cand.require_report = "gen", False
        return cand
    if not report_path.is_file():
        return cand.rejected(STAGE_REPORT, f"report file not found ({report_path})")
    cand.report_raw = report_path.read_text(encoding="utf-8", errors="replace")
    return cand


def read_test_annotations(path: str | Path) -> dict[str, str]:
    """``{dicom_id: annotated_prompt}`` of a LLaVA-Rad / CheXGenBench annotation CSV."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"LLaVA-Rad annotation CSV not found: {path}")
    frame = pd.read_csv(path, dtype=str)
    missing = {"path", "annotated_prompt"} - set(frame.columns)
    if missing:
        raise ValueError(
            f"{path}: missing columns {sorted(missing)} (LLaVA-Rad annotations have "
            "path, annotated_prompt)"
        )
    return {
        Path(p).stem: str(t) for p, t in zip(frame["path"], frame["annotated_prompt"], strict=True)
    }


def _read_csv(folder: Path, name: str, required: tuple[str, ...]) -> pd.DataFrame:
    """Read ``name`` or ``name.gz``; ids stay strings (leading zeros, no float conversion)."""
    for path in (folder / name, folder / f"{name}.gz"):
        if path.is_file():
            frame = pd.read_csv(path, dtype={"dicom_id": str, "subject_id": str, "study_id": str})
            missing = [c for c in required if c not in frame.columns]
            if missing:
                raise ValueError(f"{path}: missing columns {missing}")
            return frame
    raise FileNotFoundError(f"{folder / name}(.gz) not found (MIMIC-CXR-JPG CSV)")


def _chexpert_labels(row: dict[str, object]) -> dict[str, float]:
    """CheXpert CSV row -> {snake_case label: 1/0/-1/NaN}; other values raise ValueError."""
    out: dict[str, float] = {}
    for name in LABELS:
        value = row[CHEXPERT_NAMES[name]]
        value = float(value) if value is not None else math.nan
        if not (math.isnan(value) or value in _VALID_LABELS):
            raise ValueError(f"invalid CheXpert value {value!r} for {CHEXPERT_NAMES[name]}")
        out[name] = value
    return out
