"""The ``folder`` source: any folder of images described by a CSV ("bring your own data").

One candidate per CSV row. Columns are named by the caller:

- ``image_col`` (required): image path, relative to ``root`` (or absolute);
- ``report_col``: report text. When given, every row needs a usable report (an empty report
  or one with headers but no FINDINGS/IMPRESSION text is a ``report`` reject); when not given,
  ``report_raw`` is "" and no report is required (image-only data, e.g. for generation
  metrics or labels-only training);
- ``labels_col``: findings, ``labels_sep``-separated (default ``|``), named in CheXpert
  spelling ("Pleural Effusion"), the manifest's snake_case ("pleural_effusion") or NIH
  ChestX-ray14 spelling (:data:`NIH_TO_LABEL`). A named finding -> 1.0, every other class ->
  0.0 (the column lists *all* findings of the image, as NIH's does). An empty cell -> all NaN
  (unlabelled). A name that is not known -> ``labels`` reject naming it; ``label_map`` adds
  names (value = a LABELS name, or None for "a finding with no CheXpert class");
- ``split_col``: train/validate/test (also val/valid/validation); without it,
  :func:`hash_split` of ``group_col`` (e.g. a patient id, so a patient's images share a split)
  or else of the row id;
- ``view_col``: PA/AP/Lateral/... (:func:`normalize_view`); without it UNKNOWN. With
  ``frontal_only`` (default) LATERAL/LL rows are ``view`` rejects; UNKNOWN rows are kept;
- ``id_col``: row id; without it the image path without its suffix;
- ``template_reports``: without ``report_col``, write each row's report from its labels
  (:mod:`unixlib.data.text.label_reports`; said plainly there: these are not radiology reports).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import pandas as pd

from unixlib.data.schema import CHEXPERT_NAMES, LABELS, NEGATIVE, POSITIVE
from unixlib.data.sources.common import (
    DEFAULT_SPLIT_FRACTIONS,
    STAGE_IMAGE,
    STAGE_LABELS,
    STAGE_METADATA,
    STAGE_VIEW,
    Candidate,
    hash_split,
    no_labels,
    normalize_split,
    normalize_view,
)
from unixlib.data.text.label_reports import report_from_labels

# NIH ChestX-ray14 finding -> CheXpert class (None: a finding CheXpert has no class for).
# Emphysema, Fibrosis and Hernia (hiatal) have no CheXpert counterpart: such a row gets 0 for
# all 14 classes (it is not "No Finding" either). Pleural thickening is CheXpert's main
# "Pleural Other" finding; Infiltration is reported as opacity; Mass and Nodule are lesions.
NIH_TO_LABEL: dict[str, str | None] = {
    "Atelectasis": "atelectasis",
    "Cardiomegaly": "cardiomegaly",
    "Consolidation": "consolidation",
    "Edema": "edema",
    "Effusion": "pleural_effusion",
    "Emphysema": None,
    "Fibrosis": None,
    "Hernia": None,
    "Infiltration": "lung_opacity",
    "Mass": "lung_lesion",
    "Nodule": "lung_lesion",
    "Pleural_Thickening": "pleural_other",
    "Pneumonia": "pneumonia",
    "Pneumothorax": "pneumothorax",
    "No Finding": "no_finding",
}


def candidates(
    root: str | Path,
    csv: str | Path,
    image_col: str,
    report_col: str | None = None,
    labels_col: str | None = None,
    split_col: str | None = None,
    view_col: str | None = None,
    id_col: str | None = None,
    group_col: str | None = None,
    split_fractions: tuple[float, float, float] = DEFAULT_SPLIT_FRACTIONS,
    frontal_only: bool = True,
    labels_sep: str = "|",
    label_map: Mapping[str, str | None] | None = None,
    template_reports: bool = False,
) -> Iterator[Candidate]:
    """Yield one candidate per row of ``csv`` (columns as in the module docstring)."""
    root = Path(root)
    frame = pd.read_csv(csv, dtype=str, keep_default_na=False)  # empty cell -> ""
    named = [image_col, report_col, labels_col, split_col, view_col, id_col, group_col]
    missing = [c for c in named if c is not None and c not in frame.columns]
    if missing:
        raise ValueError(f"{csv}: no column(s) {missing}; columns are {list(frame.columns)}")
    names = _name_table(label_map or {})
    if template_reports and (report_col or not labels_col):
        raise ValueError("template_reports needs labels_col and no report_col")

    for line, row in enumerate(frame.to_dict(orient="records"), start=2):  # 1 = header
        image_value = row[image_col].strip()
        if id_col:
            row_id = row[id_col].strip()
        else:  # the image path without suffix; a row without image path is named by its line
            row_id = str(Path(image_value).with_suffix("")) if image_value else f"line-{line}"
        cand = Candidate(
            id=row_id,
            ref=f"{csv}:{line}",
            view=normalize_view(row[view_col]) if view_col else "UNKNOWN",
            report_raw=row[report_col] if report_col else "",
            require_report=report_col is not None,
            image=root / image_value,
        )
        if not row_id:
            yield cand.rejected(STAGE_METADATA, f"empty id in column {id_col!r}")
        elif not image_value:
            yield cand.rejected(STAGE_IMAGE, f"empty image path in column {image_col!r}")
        elif frontal_only and cand.view in ("LATERAL", "LL"):
            yield cand.rejected(STAGE_VIEW, f"non-frontal view ({row[view_col]})")
        else:
            cand = _fill(
                cand, row, names, labels_col, labels_sep, split_col, group_col, split_fractions
            )
            if template_reports and cand.labels is not None:
                cand.report_raw = report_from_labels(cand.labels, cand.id)
            yield cand


def _fill(
    cand: Candidate,
    row: dict[str, str],
    names: dict[str, str | None],
    labels_col: str | None,
    labels_sep: str,
    split_col: str | None,
    group_col: str | None,
    split_fractions: tuple[float, float, float],
) -> Candidate:
    """Set split and labels from the row, or mark the candidate rejected."""
    if split_col:
        split = normalize_split(row[split_col])
        if split is None:
            return cand.rejected(STAGE_METADATA, f"invalid split {row[split_col]!r}")
        cand.split = split
    else:
        key = row[group_col].strip() if group_col else cand.id
        cand.split = hash_split(key or cand.id, split_fractions)
    if labels_col:
        try:
            cand.labels = parse_labels(row[labels_col], names, labels_sep)
        except KeyError as err:
            return cand.rejected(STAGE_LABELS, err.args[0])
    return cand


def parse_labels(
    cell: str, names: Mapping[str, str | None] | None = None, sep: str = "|"
) -> dict[str, float]:
    """``"Effusion|Mass"`` -> pleural_effusion = lung_lesion = 1, the other 12 = 0.

    ``names`` maps :func:`_key`-normalised names to LABELS (default: CheXpert + NIH names).
    An empty cell gives all NaN. Raises KeyError (message = the reject reason) for an unknown name.
    """
    names = _name_table({}) if names is None else names
    found = [part.strip() for part in cell.split(sep) if part.strip()]
    if not found:
        return no_labels()
    out = dict.fromkeys(LABELS, NEGATIVE)
    for name in found:
        key = _key(name)
        if key not in names:
            raise KeyError(f"unknown label name {name!r} (add it with label_map)")
        label = names[key]
        if label is not None:
            out[label] = POSITIVE
    return out


def _key(name: str) -> str:
    """Spelling-insensitive key: "Pleural_Thickening" == "pleural thickening"."""
    return " ".join(name.replace("_", " ").lower().split())


def _name_table(extra: Mapping[str, str | None]) -> dict[str, str | None]:
    """Every accepted label spelling (normalised) -> LABELS name or None."""
    table: dict[str, str | None] = {}
    for label in LABELS:
        table[_key(label)] = label
        table[_key(CHEXPERT_NAMES[label])] = label
    for source_names in (NIH_TO_LABEL, extra):
        for name, label in source_names.items():
            if label is not None and label not in LABELS:
                raise ValueError(f"label_map: {name!r} -> {label!r} is not one of {LABELS}")
            table[_key(name)] = label
    return table
