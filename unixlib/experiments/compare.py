"""``python -m unixlib compare A B``: two evaluations of the same test studies, side by side.

A user who changes something (a setting, a schedule, a model) evaluates both versions with
``python -m unixlib evaluate`` (or notebook 05) and asks: is the new one better, or is the
difference noise? Each evaluation folder holds ``generated_reports.csv`` (Table 2's rows: one
report per study for the model and each baseline) and ``generated_images.npz`` (one image per
test study per set). This module pairs the two folders study by study (the ids must match) and
compares the models' outputs with a paired bootstrap over the studies: F1 of the reports always,
and, given the run directory whose reference encoders and real test images to use, FD, KD and
alignment of the images. One table, one verdict per measure; "A beats B" only when the interval
of the difference excludes zero.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from unixlib.eval import image_eval, report_eval
from unixlib.eval.intervals import Comparison, verdict
from unixlib.eval.resample_stats import F1, FrechetDistance, KernelDistance, Mean
from unixlib.eval.uncertainty import DEFAULT_RESAMPLING, Resampling, paired_difference

__all__ = ["Resampling", "compare_images", "compare_reports", "compare_runs", "table"]
from unixlib.eval.understanding import binarize

REPORTS, IMAGES = "generated_reports.csv", "generated_images.npz"
MODEL = "UniX (this run)"


@dataclass(frozen=True)
class Measured:
    """One measure of the comparison: its name, direction, display scale, and the result."""

    measure: str
    higher_is_better: bool
    scale: float
    comparison: Comparison


def _reports(folder: Path) -> pd.DataFrame:
    path = Path(folder) / REPORTS
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `python -m unixlib evaluate` first")
    frame = pd.read_csv(path, keep_default_na=False)
    if MODEL not in frame.columns or "reference" not in frame.columns:
        raise ValueError(f"{path}: expected the columns id, reference and {MODEL!r}")
    return frame


def compare_reports(a: Path, b: Path, r: Resampling = DEFAULT_RESAMPLING) -> list[Measured]:
    """Micro / macro F1-14 (uncertain as positive) of the two models' reports, paired."""
    ra, rb = _reports(a), _reports(b)
    if list(ra["id"].astype(str)) != list(rb["id"].astype(str)):
        raise ValueError("the two evaluations' reports are not on the same studies (ids differ)")
    label = report_eval.memoized(None)

    def labels(texts: pd.Series) -> np.ndarray:
        return binarize(report_eval.label_reports(texts.tolist(), label), "positive")

    ref, ya, yb = labels(ra["reference"]), labels(ra[MODEL]), labels(rb[MODEL])
    out = []
    for name, stat in (("micro-F1-14", F1("micro")), ("macro-F1-14", F1("macro"))):
        c = paired_difference(stat, (ref, ya), (ref, yb), r.n_resamples, r.seed, r.level)
        out.append(Measured(name, True, 100.0, c))
    return out


def load_images(folder: Path, set_name: str) -> tuple[list[str], np.ndarray]:
    """(study ids, (N, H, W) images in [0, 1]) of one set of an evaluation folder."""
    path = Path(folder) / IMAGES
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `python -m unixlib evaluate` first")
    data = np.load(path)
    if set_name not in data:
        raise ValueError(f"{path} has no image set {set_name!r} (sets: {sorted(data.files)})")
    return [str(i) for i in data["ids"]], data[set_name].astype(np.float32) / 255


def compare_images(
    images_a: np.ndarray,
    images_b: np.ndarray,
    real: np.ndarray,
    features: Callable[[np.ndarray], np.ndarray],
    align: Callable[[np.ndarray], np.ndarray] | None = None,
    r: Resampling = DEFAULT_RESAMPLING,
) -> list[Measured]:
    """FD and KD of two image sets against the real test features ``real`` (N, F), and the
    image-text alignment (``align``: images -> (N,) cosines with the studies' reports), all
    paired by study."""
    fa, fb = features(images_a), features(images_b)
    out = []
    for name, stat in (("FD", FrechetDistance()), ("KD", KernelDistance())):
        c = paired_difference(stat, (real, fa), (real, fb), r.n_resamples, r.seed, r.level)
        out.append(Measured(name, False, 1.0, c))
    if align is not None:
        c = paired_difference(Mean(), align(images_a), align(images_b), r.n_resamples, r.seed)
        out.append(Measured("alignment", True, 1.0, c))
    return out


def table(rows: list[Measured], name_a: str, name_b: str) -> tuple[pd.DataFrame, list[str]]:
    """One row per measure (A, B and A - B with their intervals, the p-value) and the verdicts;
    F1 in %."""
    records, sentences = [], []
    for m in rows:
        flat = m.comparison.as_dict()
        for key in [k for k in flat if k.startswith(("a_", "b_", "diff_"))]:
            flat[key] *= m.scale
        records.append({"measure": m.measure, "A": name_a, "B": name_b, **flat})
        said = verdict(name_a, name_b, m.comparison, m.higher_is_better, 3, m.scale)
        sentences.append(f"{m.measure}: {said}")
    return pd.DataFrame(records), sentences


def alignment_rows(encoders, texts: list[str]) -> Callable[[np.ndarray], np.ndarray]:
    """images -> (N,) cosine of image i with report i under the reference contrastive model."""
    text = encoders.text_embed(texts)
    return lambda images: image_eval.alignment_rows(encoders.image_embed(images), text)


def compare_runs(
    a: Path,
    b: Path,
    run_dir: str | None = None,
    set_name: str = "UniX_stage_3",
    r: Resampling = DEFAULT_RESAMPLING,
) -> tuple[pd.DataFrame, list[str]]:
    """Everything :func:`compare_reports` and, with ``run_dir`` (the run whose cached
    reference encoders and real test images to measure with), :func:`compare_images` say."""
    from unixlib.config import project_path
    from unixlib.eval.encoders import ReferenceEncoders
    from unixlib.experiments.evaluation import EvalSettings, load_inputs

    rows = compare_reports(a, b, r)
    if run_dir:
        ids_a, images_a = load_images(a, set_name)
        ids_b, images_b = load_images(b, set_name)
        if ids_a != ids_b:
            raise ValueError("the two evaluations' images are not on the same studies")
        inputs = load_inputs(EvalSettings(run_dir=run_dir))
        position = {str(i): k for k, i in enumerate(inputs.test["id"])}
        missing = [i for i in ids_a if i not in position]
        if missing:
            raise ValueError(f"{len(missing)} studies of the images are not test rows of {run_dir}")
        rows_used = [position[i] for i in ids_a]
        encoders = ReferenceEncoders.load(
            project_path(run_dir) / "eval" / "reference_encoders", inputs.tokenizer
        )
        size = encoders.cfg.image_size
        real = encoders.image_features(inputs.images("test", size)[rows_used])
        texts = [inputs.references[k] for k in rows_used]
        align = alignment_rows(encoders, texts)
        rows += compare_images(images_a, images_b, real, encoders.image_features, align, r)
    return table(rows, Path(a).name or str(a), Path(b).name or str(b))
