"""What every data source shares: the candidate row, views, splits and the report check.

A source yields one :class:`Candidate` per input row (per image for image datasets). A
candidate either carries a rejection found by the source itself (a lateral view, a missing
report file, a bad label) or is checked and cached by ``prepare.prepare``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from unixlib.data.schema import LABELS, SPLITS
from unixlib.data.text.reports import report_body

# Reject stages. "view" rows are deliberate filtering (frontal views only, as the paper),
# not data errors: they are recorded in rejects.csv but do not count towards max_reject_frac.
STAGE_VIEW = "view"
STAGE_METADATA = "metadata"
STAGE_LABELS = "labels"
STAGE_REPORT = "report"
STAGE_IMAGE = "image"
FILTER_STAGES = frozenset({STAGE_VIEW})

DEFAULT_SPLIT_FRACTIONS: tuple[float, float, float] = (0.8, 0.1, 0.1)

# Free-form view strings -> the manifest's view vocabulary (PA / AP / FRONTAL / LATERAL / LL /
# UNKNOWN).
# Keys are upper-cased and whitespace-collapsed; anything else (incl. "") is UNKNOWN.
_VIEW_ALIASES: dict[str, str] = {
    "PA": "PA",
    "POSTEROANTERIOR": "PA",
    "AP": "AP",
    "ANTEROPOSTERIOR": "AP",
    "AP SUPINE": "AP",
    "AP ERECT": "AP",
    "AP UPRIGHT": "AP",
    "AP SEMI-ERECT": "AP",
    "FRONTAL": "FRONTAL",
    "LATERAL": "LATERAL",
    "LAT": "LATERAL",
    "XTABLE LATERAL": "LATERAL",
    "LL": "LL",
}


def no_labels() -> dict[str, float]:
    """All 14 labels NaN ("not mentioned"/unknown: the labeler fills them later)."""
    return dict.fromkeys(LABELS, math.nan)


@dataclass
class Candidate:
    """One input row on its way into the manifest.

    ``image`` is the original image file, an in-memory float (H, W) image in [0, 1]
    (synthetic data), or ``None`` for a text-only row (kept with ``image_path == ""``).
    ``ref`` names the input in rejects.csv (a file path or a source-specific key).
    ``reject`` set by the source means: record ``(reject_stage, reject)`` and skip the row.
    ``task`` / ``report_gen``: the optional manifest columns (``schema``; defaults: both
    tasks, generation prompt = the cleaned report).
    """

    id: str
    ref: str
    view: str = "UNKNOWN"
    split: str = ""
    report_raw: str = ""
    labels: Mapping[str, float] = field(default_factory=no_labels)
    image: Path | np.ndarray | None = None
    require_report: bool = True
    reject: str | None = None
    reject_stage: str = ""
    task: str = "both"
    report_gen: str = ""

    def rejected(self, stage: str, reason: str) -> Candidate:
        """Mark this candidate rejected by the source (``stage``, ``reason``); returns self."""
        self.reject_stage, self.reject = stage, reason
        return self


def normalize_view(raw: object) -> str:
    """Map a view string ("PA", "AP Supine", "Lateral", "not stated", NaN) to the vocabulary."""
    if not isinstance(raw, str):
        return "UNKNOWN"
    return _VIEW_ALIASES.get(" ".join(raw.upper().split()), "UNKNOWN")


def hash_split(key: str, fractions: tuple[float, float, float] = DEFAULT_SPLIT_FRACTIONS) -> str:
    """Deterministic train/validate/test assignment from a key (row id or patient/study id).

    The first 8 bytes of SHA-256(key) as a uniform number u in [0, 1): train if
    u < f_train, validate if u < f_train + f_validate, else test. Independent of row order,
    Python's hash seed and the other rows, so adding data never moves an existing row.
    """
    if len(fractions) != 3 or min(fractions) < 0 or not math.isclose(sum(fractions), 1.0):
        raise ValueError(
            f"split fractions must be 3 non-negative numbers summing to 1: {fractions}"
        )
    u = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") / 2.0**64
    if u < fractions[0]:
        return SPLITS[0]
    if u < fractions[0] + fractions[1]:
        return SPLITS[1]
    return SPLITS[2]


def normalize_split(raw: object) -> str | None:
    """ "train" / "validate" / "test" (also "val", "valid", "validation"); None if unknown."""
    if not isinstance(raw, str):
        return None
    value = raw.strip().lower()
    if value in ("val", "valid", "validation"):
        return "validate"
    return value if value in SPLITS else None


def report_problem(text: object) -> str | None:
    """Why a report is unusable for training, or None when it is usable.

    Usable: it has content by :func:`reports.report_body` (FINDINGS or IMPRESSION text, or free
    text with no section header at all); a text whose headers are only INDICATION /
    COMPARISON / ... has no findings to learn from.
    """
    if not isinstance(text, str) or not text.strip():
        return "empty report"
    if any(report_body(text)):
        return None
    return "report has neither FINDINGS nor IMPRESSION content"
