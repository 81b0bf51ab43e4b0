"""The run's cache of encoder outputs on fixed image sets: a hit only for the same encoder
(class, settings, weights), the same kind of output and the same pixels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from unixlib.experiments.feature_cache import FeatureCache, encoder_digest


class _Encoder:
    """A stand-in encoder that counts its forward passes."""

    def __init__(self, seed: int = 0, size: int = 8) -> None:
        torch.manual_seed(seed)
        self.net = nn.Linear(size * size, 3)
        self.norm = nn.BatchNorm1d(3)  # a 0-dim buffer (num_batches_tracked) in the digest
        self.size = size
        self.count = {"calls": 0}  # a dict: not a setting of the encoder

    @property
    def calls(self) -> int:
        return self.count["calls"]

    @torch.no_grad()
    def image_features(self, images: torch.Tensor) -> np.ndarray:
        self.count["calls"] += 1
        return self.net(images.flatten(1)).numpy()


def _images(n: int = 5, size: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(seed))


def test_a_second_lookup_computes_nothing_and_returns_the_same_array(tmp_path):
    enc, images = _Encoder(), _images()
    cache = FeatureCache(tmp_path)
    first = cache.get("features", enc, enc.image_features, images)
    again = FeatureCache(tmp_path).get("features", enc, enc.image_features, images.clone())
    assert enc.calls == 1 and cache.misses == 1
    assert np.array_equal(first, again) and first.dtype == again.dtype == np.float32
    assert len(list(tmp_path.glob("features-*.npy"))) == 1
    assert not list(tmp_path.glob("*.tmp"))  # written atomically


@pytest.mark.parametrize(
    "change",
    ["weights", "setting", "pixels", "rows", "resolution", "kind"],
)
def test_anything_that_differs_is_a_miss(tmp_path, change):
    enc, images = _Encoder(), _images()
    cache = FeatureCache(tmp_path)
    cache.get("features", enc, enc.image_features, images)
    kind = "features"
    if change == "weights":  # retrained encoders: same class, same settings, other weights
        with torch.no_grad():
            enc.net.weight.add_(1e-6)
    elif change == "setting":
        enc.size = 9  # a plain setting (e.g. raddino_resize) is part of the key
    elif change == "pixels":
        images = images.clone()
        images[0, 0, 0, 0] += 1e-3
    elif change == "rows":
        images = images[:4]  # another n_test
    elif change == "resolution":
        enc, images = _Encoder(size=4), _images(size=4)
    else:
        kind = "probs"
    key_before = enc.calls
    FeatureCache(tmp_path).get(kind, enc, enc.image_features, images)
    assert enc.calls == key_before + 1
    assert len(list(tmp_path.glob("*.npy"))) == 2


def test_no_directory_computes_every_time_and_bad_kinds_are_refused(tmp_path):
    enc, images = _Encoder(), _images()
    cache = FeatureCache(None)
    cache.get("features", enc, enc.image_features, images)
    cache.get("features", enc, enc.image_features, images)
    assert enc.calls == 2 and cache.misses == 2 and cache.hits == 0
    with pytest.raises(ValueError, match="kind must be one of"):
        FeatureCache(tmp_path).get("logits", enc, enc.image_features, images)


def test_encoder_digest_sees_weights_not_identity():
    a, b = _Encoder(seed=0), _Encoder(seed=0)
    assert encoder_digest(a) == encoder_digest(b)
    assert encoder_digest(_Encoder(seed=1)) != encoder_digest(a)


def test_encoders_route_each_kind_through_the_run_cache(tmp_path):
    """Notebooks 05 and 06 ask ``Encoders.fixed`` for the real images' outputs: the second
    notebook's lookups run no encoder, and get the first one's arrays."""
    from unixlib.experiments.evaluation_inputs import Encoders

    ref, feats = _Encoder(seed=0), _Encoder(seed=1)
    ref.image_probs = ref.image_embed = ref.image_features  # counted on ref
    images = _images()

    def run_notebook():
        enc = Encoders(ref, feats, None, {}, FeatureCache(tmp_path))
        kinds = ("features", "reference_features", "probs", "embed")
        return {k: enc.fixed(k, images) for k in kinds}, enc.cache

    first, cache = run_notebook()
    assert (ref.calls, feats.calls, cache.misses) == (3, 1, 4)
    second, cache = run_notebook()
    assert (ref.calls, feats.calls, cache.hits) == (3, 1, 4)
    assert all(np.array_equal(first[k], second[k]) for k in first)
    assert np.array_equal(first["features"], feats.image_features(images))
