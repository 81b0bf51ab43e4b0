"""Image-set measures of the generation evaluation: alignment and finding faithfulness.

Every image set is aligned with the test split row by row: set ``s``'s image ``i`` was generated
from a report chosen for test row ``i`` (its own report for the models, another row's for the
shuffled baseline, none for unconditional samples). So each measure pairs row ``i`` with the
same things in every set, the test image's features, its report and its labels, and the rows
differ only in how the image was made. The reference rows:

* ``real (validation)``: held-out real images, the best FD / KD / PRDC any generator can expect;
  for alignment, per-pathology FD and faithfulness the real *test* images are the ceiling;
* ``shuffled reports``: images made from other rows' reports, the chance level of every measure
  that pairs an image with its report;
* ``unconditional``: no report at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from unixlib.data.schema import LABELS
from unixlib.eval.generation import (
    alignment_score,
    faithfulness,
    faithfulness_summary,
    fraction_of_the_way,
)

# The classes whose faithfulness the smoke target averages (large, drawable findings).
FAITHFULNESS_CLASSES = (
    "cardiomegaly",
    "pleural_effusion",
    "lung_opacity",
    "edema",
    "support_devices",
)


def alignment_scores(
    image_embeds: Mapping[str, np.ndarray], text_embeds: np.ndarray
) -> dict[str, float]:
    """Mean image-text cosine of every set against the test reports of the same rows."""
    return {name: alignment_score(emb, text_embeds) for name, emb in image_embeds.items()}


def alignment_rows(image_emb: np.ndarray, text_emb: np.ndarray) -> np.ndarray:
    """(N,) cosine of image i with report i: the per-study terms whose mean is
    :func:`~unixlib.eval.generation.alignment_score` (what its interval resamples)."""
    a, b = np.asarray(image_emb, dtype=np.float64), np.asarray(text_emb, dtype=np.float64)
    if a.ndim != 2 or a.shape != b.shape or len(a) == 0:
        raise ValueError(
            f"alignment_rows: need two (N, D) arrays of one shape, got {a.shape}, {b.shape}"
        )
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    if (na == 0).any() or (nb == 0).any():
        raise ValueError("alignment_rows: an embedding is all zeros (cosine undefined)")
    return (a * b).sum(axis=1) / (na * nb)


def faithfulness_table(
    probs: Mapping[str, np.ndarray],
    labels: pd.DataFrame,
    model: str,
    real: str = "real (test)",
    shuffled: str = "shuffled reports",
    classes: Sequence[str] = LABELS,
) -> pd.DataFrame:
    """Finding faithfulness of ``model``'s images: the reference classifier's per-class AUROC
    against the prompting reports' labels, beside the real test images (ceiling) and the
    shuffled-report images (chance). ``probs``: set name -> (N, 14) probabilities."""
    scored = {k: faithfulness(probs[k], labels, classes) for k in (model, real, shuffled)}
    return faithfulness_summary(scored[model], scored[real], scored[shuffled])


def mean_fraction(summary: pd.DataFrame, classes: Sequence[str] = FAITHFULNESS_CLASSES) -> float:
    """How far the model's images go from chance (0) to real images (1), on the mean AUROC
    over ``classes``: ``(mean generated - 0.5) / (mean real - 0.5)``."""
    rows = summary[summary["class"].isin(list(classes))]
    means = rows[["auroc_generated", "auroc_real"]].mean().to_frame().T
    return float(fraction_of_the_way(means, min_margin=0.0).iloc[0])
