"""Table 3 per shard (issue 22 item 1): the paper averages 4 consecutive shards; the per-shard
numbers, their mean and the pooled whole-test-set number are all reported."""

from __future__ import annotations

import numpy as np
import pytest

from unixlib.eval.generation import distribution_scores
from unixlib.experiments.generation_tables import DIST_KEYS, shard_table


def _feats(n: int, shift: float, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(shift, 1.0, (n, 4))


def test_each_shard_its_mean_and_the_pool() -> None:
    real = _feats(42, 0.0, 0)
    sets = {"model": _feats(42, 0.5, 1), "real (validation)": _feats(30, 0.0, 2)}
    table = shard_table(real, sets, n_shards=3, seed=1)
    model = table[table["images"] == "model"].set_index("shard")
    assert list(model.index) == [
        "shard 1 of 3",
        "shard 2 of 3",
        "shard 3 of 3",
        "mean of 3 shards",
        "whole test set",
    ]
    assert model["rows"].tolist() == [14, 14, 14, 42, 42]
    # shard 2 of the model's images is rows 14-27 of both sides (consecutive, row-paired)
    second = distribution_scores(real[14:28], sets["model"][14:28], seed=1)
    assert model.loc["shard 2 of 3", list(DIST_KEYS)].tolist() == pytest.approx(
        [second[k] for k in DIST_KEYS]
    )
    shards = model.iloc[:3][list(DIST_KEYS)].to_numpy(float)
    assert model.loc["mean of 3 shards", list(DIST_KEYS)].to_numpy(float) == pytest.approx(
        shards.mean(axis=0)
    )
    pooled = distribution_scores(real, sets["model"], seed=1)
    assert model.loc["whole test set", "fd"] == pytest.approx(pooled["fd"])
    # the validation images (another size) are cut into shards of their own
    val = table[table["images"] == "real (validation)"]
    assert val["rows"].tolist() == [10, 10, 10, 30, 30]
    first = distribution_scores(real[:14], sets["real (validation)"][:10], seed=1)
    assert val.iloc[0]["fd"] == pytest.approx(first["fd"])
