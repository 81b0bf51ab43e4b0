"""Image-generation metrics on precomputed feature arrays (PAPER.md "Metrics", DESIGN.md 7).

Every function takes *features* (``(N, F)`` arrays from an image or text encoder run
elsewhere); which encoder made them (RadDino, BioViL-T or a reference encoder trained on the
train split) is for the caller's table to name. Rows are samples, columns are features.

- **FD** (Fréchet distance): ``|mu_r - mu_f|^2 + Tr(S_r + S_f - 2 (S_r S_f)^(1/2))`` between
  Gaussians fitted to real and generated features (sample covariance, ``N - 1``); torchmetrics.
- **KD** (kernel distance, KID): unbiased MMD^2 with the polynomial kernel
  ``(x.y / F + 1)^3``, mean and (population) std over 100 random subsets; torchmetrics.
- **PRDC**: precision, recall, density and coverage of Naeem et al. 2020 with ``k = 5`` nearest
  neighbours; the ``prdc`` package.
- **Alignment**: mean cosine between each generated image's embedding and its prompt's text
  embedding (same row = matched pair).
- **Per-pathology FD**: FD between the real test images positive (label == 1) for a class and
  the images generated from those same reports.
- **Faithfulness** (beyond the paper): does the image show what its report says? A reference
  classifier's AUROC of the prompting report's labels from the generated image, beside the
  same for real images and for shuffled report-image pairs. Synthetic data knows the truth,
  so this measures content rather than realism.

Conventions: label values follow ``unixlib.data.schema`` (1 positive; 0, -1 and NaN are not
positive); the paper's overall numbers average 4 consecutive shards (:func:`sharded_scores`).
Bad inputs raise ``ValueError``; a class with too few positives gives NaN, never an error.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import prdc as prdc_lib
import torch
from sklearn.metrics import roc_auc_score
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from unixlib.data.schema import LABELS

DISTRIBUTION_KEYS: tuple[str, ...] = (
    "fd",
    "kd",
    "kd_std",
    "precision",
    "recall",
    "density",
    "coverage",
)


class _PassThrough(nn.Module):
    """A "feature extractor" that returns its input: torchmetrics then sees our features.

    ``num_features`` lets torchmetrics size its state without a dummy forward pass.
    """

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _pair(
    real: np.ndarray, fake: np.ndarray, min_rows: int, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Check and convert two feature arrays ``(N, F)``, ``(M, F)`` to float64."""
    r, f = np.asarray(real, dtype=np.float64), np.asarray(fake, dtype=np.float64)
    if r.ndim != 2 or f.ndim != 2:
        raise ValueError(f"{what}: features must be 2-D (rows, features), got {r.shape}, {f.shape}")
    if r.shape[1] != f.shape[1]:
        raise ValueError(f"{what}: feature dims differ: real {r.shape[1]} vs fake {f.shape[1]}")
    if len(r) < min_rows or len(f) < min_rows:
        raise ValueError(f"{what}: needs >= {min_rows} rows each, got {len(r)} real, {len(f)} fake")
    if not (np.isfinite(r).all() and np.isfinite(f).all()):
        raise ValueError(f"{what}: features contain NaN or inf")
    return r, f


def frechet_distance(real: np.ndarray, fake: np.ndarray) -> float:
    """FD between real ``(N, F)`` and generated ``(M, F)`` features (N, M >= 2), in float64."""
    r, f = _pair(real, fake, 2, "frechet_distance")
    metric = FrechetInceptionDistance(feature=_PassThrough(r.shape[1]))
    metric.update(torch.from_numpy(r), real=True)
    metric.update(torch.from_numpy(f), real=False)
    return float(metric.compute())


def kernel_distance(
    real: np.ndarray,
    fake: np.ndarray,
    subsets: int = 100,
    subset_size: int | None = None,
    degree: int = 3,
    seed: int = 0,
) -> tuple[float, float]:
    """KD of real ``(N, F)`` vs generated ``(M, F)`` features: (mean, std) over ``subsets``.

    Each subset draws ``subset_size`` rows (default ``min(N, M)``) without replacement from each
    set; the kernel is ``(x.y / F + 1)^degree``. When ``N == M == subset_size`` every subset is
    the whole set, so one is computed (std 0). The draw is seeded and leaves torch's global
    random state untouched.
    """
    r, f = _pair(real, fake, 2, "kernel_distance")
    size = min(len(r), len(f)) if subset_size is None else subset_size
    if not 2 <= size <= min(len(r), len(f)):
        raise ValueError(f"kernel_distance: subset_size {size} not in [2, {min(len(r), len(f))}]")
    if size == len(r) == len(f):
        subsets = 1  # every "subset" is the whole set: MMD^2 is fixed and its std is 0
    with warnings.catch_warnings():
        # torchmetrics warns that KID keeps all features in memory; ours are already in memory.
        warnings.simplefilter("ignore", UserWarning)
        metric = KernelInceptionDistance(
            feature=_PassThrough(r.shape[1]), subsets=subsets, subset_size=size, degree=degree
        )
    metric.update(torch.from_numpy(r), real=True)
    metric.update(torch.from_numpy(f), real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # torchmetrics draws subsets with torch.randperm
        mean, std = metric.compute()
    return float(mean), float(std)


def prdc(real: np.ndarray, fake: np.ndarray, k: int = 5) -> dict[str, float]:
    """Precision, recall, density, coverage (Naeem et al. 2020) with ``k`` neighbours.

    ``real`` ``(N, F)`` and ``fake`` ``(M, F)`` need at least ``k + 2`` rows each (the package
    partitions each row's distances at index ``k + 1``: itself plus ``k`` neighbours).
    """
    r, f = _pair(real, fake, k + 2, "prdc")
    with contextlib.redirect_stdout(io.StringIO()):  # the package prints the set sizes
        out = prdc_lib.compute_prdc(real_features=r, fake_features=f, nearest_k=k)
    return {key: float(out[key]) for key in ("precision", "recall", "density", "coverage")}


def alignment_score(image_emb: np.ndarray, text_emb: np.ndarray) -> float:
    """Mean cosine between row i of ``image_emb`` ``(N, D)`` and row i of ``text_emb`` ``(N, D)``."""
    a, b = np.asarray(image_emb, dtype=np.float64), np.asarray(text_emb, dtype=np.float64)
    if a.ndim != 2 or a.shape != b.shape or len(a) == 0:
        raise ValueError(
            f"alignment_score: need two (N, D) arrays of one shape, got {a.shape}, {b.shape}"
        )
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    if (na == 0).any() or (nb == 0).any():
        raise ValueError("alignment_score: an embedding is all zeros (cosine undefined)")
    return float(np.mean((a * b).sum(axis=1) / (na * nb)))


def distribution_scores(
    real: np.ndarray, fake: np.ndarray, k: int = 5, kd_subsets: int = 100, seed: int = 0
) -> dict[str, float]:
    """FD, KD (mean and std) and PRDC of real ``(N, F)`` vs generated ``(M, F)`` features."""
    kd, kd_std = kernel_distance(real, fake, subsets=kd_subsets, seed=seed)
    return {"fd": frechet_distance(real, fake), "kd": kd, "kd_std": kd_std, **prdc(real, fake, k)}


def sharded_scores(
    real: np.ndarray, fake: np.ndarray, n_shards: int = 4, **kw: int
) -> dict[str, float]:
    """The paper's protocol: :func:`distribution_scores` on ``n_shards`` consecutive shards, mean.

    ``real`` and ``fake`` ``(N, F)`` are paired by row, so both are split at the same positions;
    ``kw`` goes to :func:`distribution_scores`.
    """
    if len(real) != len(fake):
        raise ValueError(
            f"sharded_scores: real and fake are paired by row, got {len(real)} vs {len(fake)}"
        )
    per_shard = shard_scores(real, fake, n_shards, **kw)
    return {key: float(np.mean([s[key] for s in per_shard])) for key in DISTRIBUTION_KEYS}


def shard_scores(
    real: np.ndarray, fake: np.ndarray, n_shards: int = 4, **kw: int
) -> list[dict[str, float]]:
    """:func:`distribution_scores` of each of ``n_shards`` consecutive shards, in order: each
    side cut by ``np.array_split`` as CheXGenBench cuts its image lists (``metrics/fid.py``),
    so row-paired sets are cut at the same positions; a set of another size (real validation
    images) into the same number of shards of its own."""
    if n_shards < 1:
        raise ValueError(f"shard_scores: n_shards must be >= 1, got {n_shards}")
    k = kw.get("k", 5)
    smallest = min(len(real), len(fake)) // n_shards  # np.array_split's smallest shard
    if smallest < k + 2:
        raise ValueError(
            f"shard_scores: a shard has {smallest} rows; PRDC needs at least k + 2 = {k + 2}"
        )
    pairs = zip(np.array_split(real, n_shards), np.array_split(fake, n_shards), strict=True)
    return [distribution_scores(r, f, **kw) for r, f in pairs]


def _positive(labels: pd.DataFrame, c: str) -> np.ndarray:
    """Boolean mask of rows whose label for class ``c`` is 1 (uncertain and NaN are not)."""
    if c not in labels.columns:
        raise ValueError(f"labels have no column {c!r}")
    return labels[c].to_numpy(dtype=np.float64) == 1


def per_pathology_fd(
    real: np.ndarray,
    fake: np.ndarray,
    labels: pd.DataFrame,
    classes: Sequence[str] = LABELS,
    min_count: int = 2,
) -> pd.DataFrame:
    """FD per class between real images positive for it and the images generated from them.

    ``real[i]`` ``(N, F)`` is test image i, ``fake[i]`` the image generated from report i, and
    ``labels`` (N rows) that report's labels. Columns ``class``, ``n`` (positives), ``fd`` (NaN
    when ``n < min_count``; FD itself needs 2 rows), in ``classes`` order.
    """
    r, f = _pair(real, fake, 0, "per_pathology_fd")
    if not len(r) == len(f) == len(labels):
        raise ValueError(
            f"per_pathology_fd: rows differ: {len(r)} real, {len(f)} fake, {len(labels)} labels"
        )
    rows = []
    for c in classes:
        mask = _positive(labels, c)
        n = int(mask.sum())
        fd = frechet_distance(r[mask], f[mask]) if n >= max(min_count, 2) else float("nan")
        rows.append({"class": c, "n": n, "fd": fd})
    return pd.DataFrame(rows, columns=["class", "n", "fd"])


def faithfulness(scores: np.ndarray, labels: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
    """Per-class AUROC of the prompting reports' labels from a classifier's image scores.

    ``scores`` ``(N, 14)`` are probabilities in ``LABELS`` column order; ``labels`` (N rows) are
    the prompting reports' labels; positives are label == 1, everything else negative. Columns
    ``class``, ``n_pos``, ``n_neg``, ``auroc`` (NaN when a class lacks positives or negatives).
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.shape != (len(labels), len(LABELS)):
        raise ValueError(
            f"faithfulness: scores must be ({len(labels)}, {len(LABELS)}), got {s.shape}"
        )
    rows = []
    for c in classes:
        if c not in LABELS:
            raise ValueError(f"faithfulness: unknown class {c!r}")
        y = _positive(labels, c)
        n_pos, n_neg = int(y.sum()), int((~y).sum())
        auroc = roc_auc_score(y, s[:, LABELS.index(c)]) if n_pos and n_neg else float("nan")
        rows.append({"class": c, "n_pos": n_pos, "n_neg": n_neg, "auroc": float(auroc)})
    return pd.DataFrame(rows, columns=["class", "n_pos", "n_neg", "auroc"])


def faithfulness_summary(
    generated: pd.DataFrame, real: pd.DataFrame, chance: pd.DataFrame, min_margin: float = 0.1
) -> pd.DataFrame:
    """Three :func:`faithfulness` tables side by side, with how far generated gets toward real.

    ``fraction_of_the_way = (auroc_generated - 0.5) / (auroc_real - 0.5)``: 1 means generated
    images carry their findings as well as real images do, 0 no better than chance. It is NaN
    where the classifier is within ``min_margin`` of chance on real images (it cannot serve as
    a yardstick there). ``chance`` is the shuffled-pairs table. A final ``mean`` row averages
    the AUROCs over the classes with a fraction, and its fraction is that of the means.
    """
    for name, t in (("real", real), ("chance", chance)):
        if list(t["class"]) != list(generated["class"]):
            raise ValueError(f"faithfulness_summary: {name} has other classes than generated")
    out = pd.DataFrame(
        {
            "class": generated["class"].to_numpy(),
            "n_pos": generated["n_pos"].to_numpy(),
            "auroc_generated": generated["auroc"].to_numpy(dtype=np.float64),
            "auroc_real": real["auroc"].to_numpy(dtype=np.float64),
            "auroc_shuffled": chance["auroc"].to_numpy(dtype=np.float64),
        }
    )
    out["fraction_of_the_way"] = fraction_of_the_way(out, min_margin)
    mean = out[out["fraction_of_the_way"].notna()].drop(columns="class").mean()
    mean["fraction_of_the_way"] = fraction_of_the_way(mean.to_frame().T, min_margin).iloc[0]
    return pd.concat([out, pd.DataFrame([{"class": "mean", **mean}])], ignore_index=True)


def fraction_of_the_way(table: pd.DataFrame, min_margin: float = 0.1) -> pd.Series:
    """(auroc_generated - 0.5) / (auroc_real - 0.5) per row, NaN where real is within
    ``min_margin`` of chance."""
    denom = table["auroc_real"].astype(float) - 0.5
    return ((table["auroc_generated"].astype(float) - 0.5) / denom).where(denom >= min_margin)


def shuffled_indices(n: int, seed: int) -> np.ndarray:
    """A seeded derangement of ``range(n)`` (``n >= 2``): ``out[i] != i`` for every i.

    Built as one random cycle (a random order, each element sent to the next), so images
    can be paired with other rows' reports.
    """
    if n < 2:
        raise ValueError(f"shuffled_indices: a derangement needs n >= 2, got {n}")
    order = np.random.default_rng(seed).permutation(n)
    out = np.empty(n, dtype=np.int64)
    out[order] = np.roll(order, -1)
    return out
