"""Reports templated from labels, for image datasets that have labels but no reports.

DESIGN.md §4 allows it ("Where a dataset has labels but no reports, reports may be templated from
labels (say so)"). A templated report states each positive CheXpert class with one of a few
phrasings, and the normal statements for the structures no finding touches, in the paper's
``FINDINGS: ... IMPRESSION: ...`` form. The phrasing is a pure function of the row id, so a
rebuild gives the same text. These are NOT radiology reports: the understanding task then learns
to name labels in sentences, and its scores say how well the labels are read from the image,
nothing about report writing. Our rule labeler reads every template back to the labels it came
from (tests/test_label_reports.py).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping

# Positive statement(s) per class; the labeler's mention phrases are in each.
POSITIVE: dict[str, tuple[str, ...]] = {
    "enlarged_cardiomediastinum": (
        "The cardiomediastinal silhouette is enlarged.",
        "Widened mediastinum.",
    ),
    "cardiomegaly": ("The heart is enlarged.", "Cardiomegaly is present."),
    "lung_opacity": ("There is an opacity in the lung.", "Patchy airspace opacity."),
    "lung_lesion": ("A pulmonary nodule is seen.", "There is a lung mass."),
    "edema": ("There is pulmonary edema.", "Findings of pulmonary edema."),
    "consolidation": ("There is consolidation.", "Focal consolidation is present."),
    "pneumonia": ("Findings are consistent with pneumonia.", "There is pneumonia."),
    "atelectasis": ("There is atelectasis.", "Bibasilar atelectasis."),
    "pneumothorax": ("There is a pneumothorax.", "A pneumothorax is present."),
    "pleural_effusion": ("There is a pleural effusion.", "Pleural effusion is present."),
    "pleural_other": ("There is pleural thickening.", "Pleural thickening is seen."),
    "fracture": ("There is a rib fracture.", "A fracture is seen."),
    "support_devices": ("Support devices are in place.", "A catheter is in place."),
}
# Normal statements, each dropped when a positive class concerns its structure.
NORMAL: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("The heart size is normal.", ("cardiomegaly", "enlarged_cardiomediastinum")),
    (
        "The lungs are clear.",
        ("lung_opacity", "lung_lesion", "edema", "consolidation", "pneumonia", "atelectasis"),
    ),
    (
        "There is no pleural effusion or pneumothorax.",
        ("pleural_effusion", "pneumothorax", "pleural_other"),
    ),
)
NORMAL_IMPRESSION = "No acute cardiopulmonary process."


def _pick(options: tuple[str, ...], key: str) -> str:
    h = int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big")
    return options[h % len(options)]


def report_from_labels(labels: Mapping[str, float], key: str) -> str:
    """``FINDINGS: ... IMPRESSION: ...`` stating the positive (1.0) classes of ``labels``;
    uncertain (-1) and unknown (NaN) classes are not mentioned. ``key`` (the row id) picks the
    phrasings. All-NaN labels give "" (nothing to state)."""
    known = [v for v in labels.values() if v is not None and not math.isnan(v)]
    if not known:
        return ""
    positive = [c for c in POSITIVE if labels.get(c) == 1.0]
    found = [_pick(POSITIVE[c], f"{key}:{c}") for c in positive]
    normal = [text for text, spoiled_by in NORMAL if not set(spoiled_by) & set(positive)]
    findings = " ".join(found + normal)
    impression = " ".join(found) if found else NORMAL_IMPRESSION
    return f"FINDINGS: {findings} IMPRESSION: {impression}"
