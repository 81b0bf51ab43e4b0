"""Generation tables: paper Tables 3 and 4 from the image sets' features.

Every image set is aligned with the test split row by row (see :mod:`unixlib.eval.image_eval`);
this module scores each set against the real test features with
:mod:`unixlib.eval.generation` and lays the numbers out beside the paper's quoted rows.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from unixlib.eval.generation import (
    distribution_scores,
    per_pathology_fd,
    shard_scores,
    sharded_scores,
)
from unixlib.experiments import paper_rows
from unixlib.viz.tables import FROM_PAPER, SOURCE_COL, THIS_RUN

DIST_KEYS = ("fd", "kd", "precision", "recall", "density", "coverage")


def table3(
    real_feats: np.ndarray,
    sets: Mapping[str, np.ndarray],
    alignment: Mapping[str, float],
    resolution: Mapping[str, int],
    encoder_name: str,
    n_shards: int = 4,
    kd_subsets: int = 100,
    seed: int = 0,
) -> pd.DataFrame:
    """Paper Table 3: FD, KD, alignment, precision, recall, density, coverage of each set's
    features against the real test features; on the whole test set and as the paper's mean over
    ``n_shards`` consecutive shards; then the paper's rows (quoted, RadDino / BioViL-T)."""
    rows = []
    for name, feats in sets.items():
        for protocol in ("whole test set", f"mean of {n_shards} shards"):
            if protocol == "whole test set":
                s = distribution_scores(real_feats, feats, kd_subsets=kd_subsets, seed=seed)
            else:
                s = _sharded(real_feats, feats, n_shards, kd_subsets=kd_subsets, seed=seed)
            rows.append(
                [name, resolution.get(name, np.nan), protocol, encoder_name, THIS_RUN]
                + [s["fd"], s["kd"], alignment.get(name, np.nan)]
                + [s[k] for k in ("precision", "recall", "density", "coverage")]
            )
    for name in [k for k in alignment if k not in sets]:  # real test images: alignment ceiling
        rows.append(
            [
                name,
                np.nan,
                "alignment with their own reports",
                encoder_name,
                THIS_RUN,
                np.nan,
                np.nan,
                alignment[name],
            ]
            + [np.nan] * 4
        )
    for model, _params, res, *values in paper_rows.TABLE3:
        rows.append([model, res, "mean of 4 shards", "RadDino / BioViL-T", FROM_PAPER, *values])
    cols = ["images", "res", "protocol", "encoder", SOURCE_COL, "FD", "KD", "align"]
    table = pd.DataFrame(rows, columns=[*cols, "precision", "recall", "density", "coverage"])
    return table.astype({"res": "Int64"})


def _sharded(real: np.ndarray, fake: np.ndarray, n_shards: int, **kw) -> dict[str, float]:
    """The paper's shard protocol; a set of another size than the test split (the real
    validation images) is cut into the same number of consecutive shards of its own."""
    if len(real) == len(fake):
        return sharded_scores(real, fake, n_shards, **kw)
    pairs = zip(np.array_split(real, n_shards), np.array_split(fake, n_shards), strict=True)
    scores = [distribution_scores(r, f, **kw) for r, f in pairs]
    return {k: float(np.mean([sc[k] for sc in scores])) for k in scores[0]}


def shard_table(
    real_feats: np.ndarray,
    sets: Mapping[str, np.ndarray],
    n_shards: int = 4,
    kd_subsets: int = 100,
    seed: int = 0,
) -> pd.DataFrame:
    """Table 3's distribution scores per shard, beside their mean (the paper's number: it
    averages 4 consecutive shards, CheXGenBench's ``tools/combine_shards.py``) and the pooled
    score on the whole test set: one row per (set, shard), columns ``images, shard, rows``
    (rows of the set in that shard) and ``DIST_KEYS``. Row-paired sets are cut at the same
    positions as the real test features; the real validation images into shards of their
    own (``eval.generation.shard_scores``)."""
    rows = []
    for name, feats in sets.items():
        kw = dict(kd_subsets=kd_subsets, seed=seed)
        shards = shard_scores(real_feats, feats, n_shards, **kw)
        sizes = [len(part) for part in np.array_split(feats, n_shards)]
        for i, (scores, n) in enumerate(zip(shards, sizes, strict=True)):
            rows.append([name, f"shard {i + 1} of {n_shards}", n, *(scores[k] for k in DIST_KEYS)])
        mean = [float(np.mean([sc[k] for sc in shards])) for k in DIST_KEYS]
        rows.append([name, f"mean of {n_shards} shards", len(feats), *mean])
        pooled = distribution_scores(real_feats, feats, **kw)
        rows.append([name, "whole test set", len(feats), *(pooled[k] for k in DIST_KEYS)])
    return pd.DataFrame(rows, columns=["images", "shard", "rows", *DIST_KEYS])


def table4(
    real_feats: np.ndarray,
    sets: Mapping[str, np.ndarray],
    labels: pd.DataFrame,
    resolution: Mapping[str, int],
    encoder_name: str,
    min_count: int = 2,
) -> pd.DataFrame:
    """Paper Table 4: FD per pathology between the real test images positive for a class and
    the images of the same rows, per set; columns in the paper's order, with each class's
    positive count in a row of its own; then the paper's rows (quoted)."""
    order = list(paper_rows.TABLE4_ORDER)
    rows = []
    counts = None
    for name, feats in sets.items():
        fd = per_pathology_fd(real_feats, feats, labels, order, min_count).set_index("class")
        counts = fd["n"]
        rows.append([name, resolution.get(name, np.nan), encoder_name, THIS_RUN, *fd["fd"][order]])
    if counts is not None:
        rows.insert(0, ["n positive (test)", np.nan, "", THIS_RUN, *counts[order].astype(float)])
    for model, res, values in paper_rows.TABLE4:
        rows.append([model, res, "RadDino", FROM_PAPER, *values])
    table = pd.DataFrame(rows, columns=["images", "res", "encoder", SOURCE_COL, *order])
    return table.astype({"res": "Int64"})
