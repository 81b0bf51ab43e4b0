"""Generation tables: paper Tables 3 and 4 from the image sets' features, every number with its
95% bootstrap interval over studies, the real-image reference, and the paired comparisons.

Every image set is aligned with the test split row by row (see :mod:`unixlib.eval.image_eval`):
image i of every set was made for test study i, so a resample takes the same studies of the real
test images and of every set. FD, KD and PRDC use the "centred" interval (a resample repeats
studies, which pulls these statistics away from their value; see :mod:`unixlib.eval.uncertainty`).

KD follows CheXGenBench (``metrics/fid.py``), the protocol behind the paper's numbers: a degree-3
polynomial kernel and a subset size of ``min(N, M)``, so with as many generated as real images
each of its 100 subsets is the whole set and KD is the unbiased MMD^2 of the two sets.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from unixlib.data.schema import LABELS
from unixlib.eval.generation import (
    distribution_scores,
    frechet_distance,
    kernel_distance,
    per_pathology_fd,
)
from unixlib.eval.generation import shard_scores as per_shard_scores
from unixlib.eval.intervals import verdict
from unixlib.eval.resample_auroc import Auroc, FaithfulnessFraction
from unixlib.eval.resample_prdc import PRDC
from unixlib.eval.resample_shards import ShardMean, bootstrap_shards
from unixlib.eval.resample_stats import FrechetDistance, KernelDistance, Mean
from unixlib.eval.uncertainty import DEFAULT_RESAMPLING, Resampling, bootstrap, paired_difference
from unixlib.experiments import paper_rows
from unixlib.viz.tables import FROM_PAPER, SOURCE_COL, THIS_RUN

PRDC_KEYS = ("precision", "recall", "density", "coverage")
KD_NOTE = "KD: degree-3 polynomial kernel, subset size min(N, M) as CheXGenBench"


def _stats() -> dict[str, Callable[..., float]]:
    """The statistics of Table 3's distribution columns, by column name (all vectorised over
    resamples; PRDC computes its distance matrices once per set)."""
    return {"FD": FrechetDistance(), "KD": KernelDistance(), **{k: PRDC(k) for k in PRDC_KEYS}}


def _cells(key: str, value: float, low: float, high: float) -> dict[str, float]:
    return {key: value, f"{key}_low": low, f"{key}_high": high}


def set_scores(
    real: np.ndarray, fake: np.ndarray, align: np.ndarray | None, r: Resampling
) -> dict[str, float]:
    """FD, KD, alignment, precision, recall, density, coverage of one set against the real test
    features (paired by row), each with its interval (``X``, ``X_low``, ``X_high``)."""
    out: dict[str, float] = {}
    for key, stat in _stats().items():
        iv = bootstrap(stat, real, fake, n_resamples=r.n_resamples, seed=r.seed, level=r.level)
        out.update(_cells(key, iv.value, iv.low, iv.high))
    if align is not None:
        iv = bootstrap(Mean(), align, n_resamples=r.n_resamples, seed=r.seed, level=r.level)
        out.update(_cells("align", iv.value, iv.low, iv.high))
    return out


def shard_scores(
    real: np.ndarray, fake: np.ndarray, n_shards: int, r: Resampling = DEFAULT_RESAMPLING
) -> dict[str, float]:
    """The paper's protocol: the mean over ``n_shards`` consecutive shards of FD, KD and PRDC,
    each with its interval (a stratified bootstrap: every shard redrawn from its own studies)."""
    out: dict[str, float] = {}
    for key, stat in _stats().items():
        shards = ShardMean(stat, n_shards)
        iv = bootstrap_shards(shards, real, fake, n_resamples=r.n_resamples, seed=r.seed)
        out.update(_cells(key, iv.value, iv.low, iv.high))
    return out


DIST_KEYS = ("fd", "kd", "precision", "recall", "density", "coverage")


def shard_table(
    real_feats: np.ndarray,
    sets: Mapping[str, np.ndarray],
    n_shards: int = 4,
    seed: int = 0,
) -> pd.DataFrame:
    """Table 3's distribution scores per shard, beside their mean (the paper's number: it
    averages 4 consecutive shards, CheXGenBench's ``tools/combine_shards.py``) and the pooled
    score on the whole test set: one row per (set, shard), columns ``images, shard, rows``
    (rows of the set in that shard) and ``DIST_KEYS`` (KD as CheXGenBench: 100 subsets of
    ``min(N, M)``). Row-paired sets are cut at the same positions as the real test features;
    a set of another size into shards of its own (``eval.generation.shard_scores``)."""
    rows = []
    for name, feats in sets.items():
        shards = per_shard_scores(real_feats, feats, n_shards, seed=seed)
        sizes = [len(part) for part in np.array_split(feats, n_shards)]
        for i, (scores, n) in enumerate(zip(shards, sizes, strict=True)):
            rows.append([name, f"shard {i + 1} of {n_shards}", n, *(scores[k] for k in DIST_KEYS)])
        mean = [float(np.mean([sc[k] for sc in shards])) for k in DIST_KEYS]
        rows.append([name, f"mean of {n_shards} shards", len(feats), *mean])
        pooled = distribution_scores(real_feats, feats, seed=seed)
        rows.append([name, "whole test set", len(feats), *(pooled[k] for k in DIST_KEYS)])
    return pd.DataFrame(rows, columns=["images", "shard", "rows", *DIST_KEYS])


def table3(
    real: np.ndarray,
    sets: Mapping[str, np.ndarray],
    align: Mapping[str, np.ndarray],
    resolution: Mapping[str, int],
    encoder_name: str,
    n_shards: int = 4,
    r: Resampling = DEFAULT_RESAMPLING,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Paper Table 3: per set, its distribution scores against the real test features and its
    alignment, on the whole test set (with intervals) and as the paper's mean over ``n_shards``
    consecutive shards; the real test images' own alignment (the ceiling); and, apart, the
    paper's rows (quoted, RadDino / BioViL-T). ``align``: set name -> (N,) per-row cosines."""
    rows = []
    for name, feats in sets.items():
        head = {"images": name, "res": resolution.get(name, np.nan), "encoder": encoder_name}
        whole = set_scores(real, feats, align.get(name), r)
        rows.append({**head, "protocol": "whole test set", **whole})
        sharded = shard_scores(real, feats, n_shards, r)
        rows.append({**head, "protocol": f"mean of {n_shards} shards", **sharded})
    for name in [k for k in align if k not in sets]:  # real test images: alignment ceiling
        iv = bootstrap(Mean(), align[name], n_resamples=r.n_resamples, seed=r.seed)
        head = {"images": name, "res": np.nan, "encoder": encoder_name}
        rows.append({**head, "protocol": "alignment with their own reports"})
        rows[-1].update(_cells("align", iv.value, iv.low, iv.high))
    table = pd.DataFrame(rows).assign(**{SOURCE_COL: THIS_RUN}).astype({"res": "Int64"})
    quoted = [
        {"images": m, "res": res, "protocol": "mean of 4 shards", "encoder": "RadDino / BioViL-T"}
        | dict(zip(("FD", "KD", "align", *PRDC_KEYS), values, strict=True))
        for m, _params, res, *values in paper_rows.TABLE3
    ]
    return table, pd.DataFrame(quoted).assign(**{SOURCE_COL: FROM_PAPER})


def real_reference(
    real: np.ndarray, sets: Mapping[str, np.ndarray], n_splits: int = 10, seed: int = 0
) -> pd.DataFrame:
    """How far real images are from real images, at half the test set: the test studies are
    split at random into two disjoint halves A and B, ``n_splits`` times; "real vs real" is FD
    / KD of A's real images against B's, and each set's row is A's real images against the
    images that set made for B's studies, so both compare N/2 with N/2 images. Mean, min and
    max over the splits. (Not a floor for the whole-set numbers: FD grows as samples shrink.)"""
    rng = np.random.default_rng(seed)
    half = len(real) // 2
    scores: dict[str, list[tuple[float, float]]] = {"real vs real": []}
    for _ in range(n_splits):
        order = rng.permutation(len(real))
        a, b = order[:half], order[half : 2 * half]
        scores["real vs real"].append(_fd_kd(real[a], real[b]))
        for name, feats in sets.items():
            scores.setdefault(name, []).append(_fd_kd(real[a], feats[b]))
    rows = []
    for name, pairs in scores.items():
        fd, kd = np.array(pairs).T
        row = {"images": name, "studies per half": half, "splits": n_splits}
        for key, v in (("FD", fd), ("KD", kd)):
            row.update({key: v.mean(), f"{key}_min": v.min(), f"{key}_max": v.max()})
        rows.append(row)
    return pd.DataFrame(rows)


def _fd_kd(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    return frechet_distance(a, b), kernel_distance(a, b)[0]


def compare(
    real: np.ndarray,
    sets: Mapping[str, np.ndarray],
    align: Mapping[str, np.ndarray],
    pairs: list[tuple[str, str]],
    r: Resampling = DEFAULT_RESAMPLING,
) -> tuple[pd.DataFrame, list[str]]:
    """Paired comparisons on the same studies, e.g. the model vs shuffled reports: FD and KD
    (lower is better) and alignment (higher is better); the difference with its interval and
    p-value, and one verdict sentence each."""
    records, sentences = [], []
    measures = [("FD", FrechetDistance(), False), ("KD", KernelDistance(), False)]
    for a, b in pairs:
        for key, stat, higher in measures:
            c = paired_difference(
                stat, (real, sets[a]), (real, sets[b]), n_resamples=r.n_resamples, seed=r.seed
            )
            records.append({"metric": key, "a": a, "b": b, **c.as_dict()})
            sentences.append(f"{key}: {verdict(a, b, c, higher, digits=3)}")
        if a in align and b in align:
            c = paired_difference(Mean(), align[a], align[b], r.n_resamples, r.seed)
            records.append({"metric": "align", "a": a, "b": b, **c.as_dict()})
            sentences.append(f"align: {verdict(a, b, c, True, digits=3)}")
    return pd.DataFrame(records), sentences


def table4(
    real: np.ndarray,
    sets: Mapping[str, np.ndarray],
    labels: pd.DataFrame,
    resolution: Mapping[str, int],
    encoder_name: str,
    r: Resampling = DEFAULT_RESAMPLING,
    min_count: int = 2,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Paper Table 4: FD per pathology between the real test images positive for a class and
    the images of the same rows, per set and class (long form: ``images, class, n, FD,
    FD_low, FD_high``); and, apart, the paper's rows (quoted, wide, the paper's order)."""
    order = list(paper_rows.TABLE4_ORDER)
    rows = []
    for name, feats in sets.items():
        fd = per_pathology_fd(real, feats, labels, order, min_count).set_index("class")
        for c in order:
            mask = labels[c].to_numpy(dtype=float) == 1
            head = {"images": name, "res": resolution.get(name, np.nan), "class": c}
            n = int(mask.sum())
            if n < max(min_count, 2):
                rows.append({**head, "n": n, "FD": np.nan})
                continue
            pair = (real[mask], feats[mask])
            iv = bootstrap(FrechetDistance(), *pair, n_resamples=r.n_resamples, seed=r.seed)
            rows.append({**head, "n": n, **_cells("FD", float(fd.at[c, "fd"]), iv.low, iv.high)})
    table = pd.DataFrame(rows).assign(encoder=encoder_name, **{SOURCE_COL: THIS_RUN})
    quoted = [
        {"images": m, "res": res, **dict(zip(order, values, strict=True))}
        for m, res, values in paper_rows.TABLE4
    ]
    quoted = pd.DataFrame(quoted).assign(encoder="RadDino", **{SOURCE_COL: FROM_PAPER})
    return table.astype({"res": "Int64"}), quoted


def faithfulness_intervals(
    table: pd.DataFrame,
    probs: Mapping[str, np.ndarray],
    labels: pd.DataFrame,
    columns: Mapping[str, str],
    r: Resampling = DEFAULT_RESAMPLING,
) -> pd.DataFrame:
    """``image_eval.faithfulness_table``'s table with intervals: each class's AUROC of each
    image set (``columns``: table column -> set name in ``probs``) and the ``mean`` row's
    fraction of the way from chance to real images, resampled over the same studies."""
    out = table.copy()
    positive = (labels[list(LABELS)].to_numpy(dtype=float) == 1).astype(int)  # (N, 14)
    for column, name in columns.items():
        for i, row in out.iterrows():
            if row["class"] not in LABELS:
                continue
            stat = Auroc(LABELS.index(row["class"]))
            iv = bootstrap(stat, probs[name], positive, n_resamples=r.n_resamples, seed=r.seed)
            out.loc[i, [f"{column}_low", f"{column}_high"]] = iv.low, iv.high
    mean = out.index[out["class"] == "mean"]
    if len(mean):
        judged = out["class"].isin(LABELS) & out["fraction_of_the_way"].notna()
        classes = out.loc[judged, "class"].tolist()  # the classes the mean row averages
        model, real = columns["auroc_generated"], columns["auroc_real"]
        stat = FaithfulnessFraction(classes)
        iv = bootstrap(
            stat, probs[model], probs[real], labels, n_resamples=r.n_resamples, seed=r.seed
        )
        out.loc[mean, ["fraction_of_the_way_low", "fraction_of_the_way_high"]] = iv.low, iv.high
    return out
