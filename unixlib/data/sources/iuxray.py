"""The ``iuxray`` source: IU X-ray (Open-i) XML reports + the user's PNG images.

Input: ``reports_dir`` with the Open-i ``ecgen-radiology/*.xml`` files, each one study::

    <uId id="CXR1"/>
    <AbstractText Label="COMPARISON">None.</AbstractText>   (also INDICATION, FINDINGS, IMPRESSION)
    <MeSH><major>Cardiomegaly/mild</major>...</MeSH>
    <parentImage id="CXR1_1_IM-0001-3001">...</parentImage>   (one per image)

and ``image_dir`` with ``<parentImage id>.png`` (the Open-i PNG dump's names).

Decisions (IU has neither a view tag nor an official split):

- One candidate per parentImage found in ``image_dir``, id = the image id. A study none of
  whose images is found (or that lists none) stays usable for text work: one text-only row,
  id = the uId, ``image_path == ""``, counted as ``n_text_only`` by ``prepare``. Images missing
  from a study that has other images present are ``image`` rejects ("file not found").
- ``report_raw`` is rebuilt from the XML sections as ``"COMPARISON: ...\\nINDICATION: ...\\n
  FINDINGS: ...\\nIMPRESSION: ..."`` (empty sections left out); a study with neither FINDINGS
  nor IMPRESSION text is a ``report`` reject.
- View: ``UNKNOWN`` unless ``views_csv`` (columns ``image_id, view``, e.g. the community
  ``indiana_projections.csv`` renamed) says otherwise; its "Lateral" rows become LATERAL and
  are ``view`` rejects with ``frontal_only``, its "Frontal" rows become FRONTAL (PA vs AP is
  not recorded), which training uses. Without a views CSV every image is UNKNOWN: kept in the
  manifest (text work, or a later views CSV) but not trained on, since it may be lateral.
- Split: :func:`hash_split` of the study uId with ``split_fractions`` (default 0.8/0.1/0.1), so
  all images of one study share a split.
- Labels: the human MeSH annotation (``<MeSH><major>`` terms joined by ``|``) through
  :func:`unixlib.data.text.iu_mesh.mesh_to_labels` (1 for a mapped finding, 0 for the others); a
  study without MeSH terms or indexed "No Indexing" gets all-NaN labels, which the labeler
  fills from the report text later.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from unixlib.data.schema import LABELS
from unixlib.data.sources.common import (
    DEFAULT_SPLIT_FRACTIONS,
    STAGE_METADATA,
    STAGE_VIEW,
    Candidate,
    hash_split,
    no_labels,
    normalize_view,
)
from unixlib.data.text.iu_mesh import NO_INDEXING, mesh_terms, mesh_to_labels

# Sections copied into report_raw, in this order.
SECTIONS: tuple[str, ...] = ("COMPARISON", "INDICATION", "FINDINGS", "IMPRESSION")


def candidates(
    reports_dir: str | Path,
    image_dir: str | Path | None = None,
    views_csv: str | Path | None = None,
    split_fractions: tuple[float, float, float] = DEFAULT_SPLIT_FRACTIONS,
    frontal_only: bool = True,
) -> Iterator[Candidate]:
    """Yield candidates for every ``*.xml`` in ``reports_dir`` (sorted by file name).

    Args:
        reports_dir: the ``ecgen-radiology`` folder of XML reports.
        image_dir: the folder of ``<image id>.png`` files; None = text only (every study
            becomes one text-only row).
        views_csv: optional CSV with columns ``image_id`` and ``view``.
        split_fractions: train/validate/test fractions for :func:`hash_split`.
        frontal_only: reject images the views CSV marks lateral (LATERAL/LL).
    """
    reports_dir = Path(reports_dir)
    xml_files = sorted(reports_dir.glob("*.xml"))
    if not xml_files:
        raise FileNotFoundError(f"no *.xml reports in {reports_dir}")
    views = _read_views(Path(views_csv)) if views_csv is not None else {}
    image_root = Path(image_dir) if image_dir is not None else None
    for xml_path in xml_files:
        try:
            study = _parse(xml_path)
        except (ET.ParseError, ValueError) as err:
            yield Candidate(id=xml_path.stem, ref=str(xml_path)).rejected(
                STAGE_METADATA, f"unreadable report XML ({err})"
            )
            continue
        uid, report, mesh, image_ids = study
        split = hash_split(uid, split_fractions)
        labels = _mesh_labels(mesh)
        if image_root is None or not any((image_root / f"{i}.png").is_file() for i in image_ids):
            yield Candidate(
                id=uid, ref=str(xml_path), split=split, report_raw=report, labels=labels
            )
            continue
        for image_id in image_ids:
            image = image_root / f"{image_id}.png"
            cand = Candidate(
                id=image_id,
                ref=str(image),
                view=views.get(image_id, "UNKNOWN"),
                split=split,
                report_raw=report,
                labels=labels,
                image=image,
            )
            if frontal_only and cand.view in ("LATERAL", "LL"):
                cand.rejected(STAGE_VIEW, f"non-frontal view ({cand.view})")
            yield cand  # a missing file becomes an "image" reject in prepare


def _parse(xml_path: Path) -> tuple[str, str, str, list[str]]:
    """(uId, report_raw, MeSH major terms joined by "|", parentImage ids) of one Open-i report."""
    root = ET.parse(xml_path).getroot()
    uid_node = root.find(".//uId")
    if uid_node is None or not uid_node.get("id"):
        raise ValueError("no <uId id=...>")
    texts = {name: "" for name in SECTIONS}
    for node in root.iter("AbstractText"):
        label = (node.get("Label") or "").upper()
        if label in texts:
            texts[label] = " ".join("".join(node.itertext()).split())
    report = "\n".join(f"{name}: {texts[name]}" for name in SECTIONS if texts[name])
    mesh = "|".join(" ".join((node.text or "").split()) for node in root.iter("major"))
    image_ids = [node.get("id", "") for node in root.iter("parentImage") if node.get("id")]
    return uid_node.get("id", ""), report, mesh, image_ids


def _mesh_labels(mesh: str) -> dict[str, float]:
    """14 labels from MeSH terms; classes the MeSH mapping does not cover stay NaN."""
    labels = no_labels()
    if not mesh.strip("| ") or any(h == NO_INDEXING for h, _ in mesh_terms(mesh)):
        return labels
    labels.update({name: v for name, v in mesh_to_labels(mesh).items() if name in LABELS})
    return labels


def _read_views(path: Path) -> dict[str, str]:
    """image_id -> normalized view from a CSV with columns ``image_id`` and ``view``."""
    frame = pd.read_csv(path, dtype=str)
    missing = {"image_id", "view"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path}: missing columns {sorted(missing)}")
    return {
        str(i): normalize_view(v) for i, v in zip(frame["image_id"], frame["view"], strict=True)
    }
