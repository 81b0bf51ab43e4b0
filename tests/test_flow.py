"""Flow-matching conventions, sampler, CFG, timestep embedder, sin-cos table, patchify."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from unixlib.model.flow import (
    TimestepEmbedder,
    euler_sample,
    guided_velocity,
    interpolate,
    patchify,
    sample_train_timesteps,
    sampling_timesteps,
    shift_timesteps,
    sincos_2d_table,
    unpatchify,
    velocity_target,
)


def _pair(seed: int = 0, shape: tuple[int, ...] = (3, 4, 2, 2)) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g), torch.randn(shape, generator=g)


def test_interpolant_endpoints_data_at_0_noise_at_1() -> None:
    x0, eps = _pair()
    assert torch.equal(interpolate(x0, eps, 0.0), x0)
    assert torch.equal(interpolate(x0, eps, 1.0), eps)
    mid = interpolate(x0, eps, torch.tensor([0.0, 0.5, 1.0]))
    assert torch.equal(mid[0], x0[0]) and torch.equal(mid[2], eps[2])
    assert torch.allclose(mid[1], 0.5 * (x0[1] + eps[1]))


def test_velocity_target_is_time_derivative_of_the_path() -> None:
    x0, eps = _pair(1)
    h = 1e-3
    numeric = (interpolate(x0, eps, 0.3 + h) - interpolate(x0, eps, 0.3)) / h
    assert torch.allclose(numeric, velocity_target(x0, eps), atol=1e-3)
    assert torch.equal(velocity_target(x0, eps), eps - x0)


def test_interpolate_rejects_bad_shapes() -> None:
    x0, eps = _pair()
    with pytest.raises(ValueError, match="differ in shape"):
        interpolate(x0, eps[:2], 0.5)
    with pytest.raises(ValueError, match="scalar or shape"):
        interpolate(x0, eps, torch.ones(2))


def test_shift_values_hand_computed() -> None:
    t = torch.tensor([0.0, 0.25, 0.5, 1.0])
    # s=3: 3t / (1 + 2t) -> 0, 0.75/1.5, 1.5/2, 3/3
    assert torch.allclose(shift_timesteps(t, 3.0), torch.tensor([0.0, 0.5, 0.75, 1.0]))
    assert torch.equal(shift_timesteps(t, 1.0), t)
    with pytest.raises(ValueError, match="shift must be > 0"):
        shift_timesteps(t, 0.0)


def test_sampling_grid_hand_computed() -> None:
    assert torch.allclose(sampling_timesteps(5, 1.0), torch.tensor([1.0, 0.75, 0.5, 0.25, 0.0]))
    # shifted with s=3: 0.75 -> 2.25/2.5 = 0.9, 0.5 -> 0.75, 0.25 -> 0.5
    assert torch.allclose(sampling_timesteps(5, 3.0), torch.tensor([1.0, 0.9, 0.75, 0.5, 0.0]))
    with pytest.raises(ValueError, match="steps must be >= 2"):
        sampling_timesteps(1, 3.0)


def test_train_timesteps_are_shifted_logit_normal_and_seeded() -> None:
    a = sample_train_timesteps(1000, 1.0, torch.Generator().manual_seed(7))
    z = torch.randn(1000, generator=torch.Generator().manual_seed(7))
    assert torch.allclose(a, torch.sigmoid(z))
    b = sample_train_timesteps(1000, 3.0, torch.Generator().manual_seed(7))
    assert torch.allclose(b, shift_timesteps(torch.sigmoid(z), 3.0))
    assert a.shape == (1000,) and a.min() > 0 and a.max() < 1
    assert b.mean() > a.mean() + 0.1  # s > 1 moves mass towards noise
    with pytest.raises(ValueError, match="n must be >= 1"):
        sample_train_timesteps(0)


def test_euler_with_true_velocity_of_linear_path_recovers_data() -> None:
    x0, eps = _pair(2)
    calls: list[float] = []

    def constant_velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        calls.append(float(t))
        return eps - x0

    out = euler_sample(constant_velocity, eps, sampling_timesteps(7, 3.0))
    assert torch.allclose(out, x0, atol=1e-5)
    assert len(calls) == 6 and calls[0] == 1.0 and calls[-1] > 0.0

    # The marginal velocity for a single data point is (x - x0) / t: Euler is exact on it too.
    out = euler_sample(lambda x, t: (x - x0) / t, eps, sampling_timesteps(4, 1.0))
    assert torch.allclose(out, x0, atol=1e-5)


def test_euler_rejects_increasing_grid() -> None:
    with pytest.raises(ValueError, match="strictly decreasing"):
        euler_sample(lambda x, t: x, torch.zeros(1), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=">= 2 points"):
        euler_sample(lambda x, t: x, torch.zeros(1), torch.tensor([1.0]))


def test_cfg_interval_on_off_and_renorm_bound() -> None:
    v_c = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    v_u = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    # outside (0.4, 1.0]: no guidance, both at the open lower edge and below it
    assert torch.equal(guided_velocity(v_c, v_u, 0.4, 2.0), v_c)
    assert torch.equal(guided_velocity(v_c, v_u, 0.1, 2.0), v_c)
    # inside, no renorm: v_u + 2 (v_c - v_u)
    raw = guided_velocity(v_c, v_u, 1.0, 2.0, renorm=False)
    assert torch.allclose(raw, torch.tensor([[6.0, 8.0], [1.0, 0.0]]))
    # renorm per sample: sample 0 has |v_cfg| = 10 > |v_c| = 5 -> halved; sample 1 unchanged
    out = guided_velocity(v_c, v_u, 0.7, 2.0)
    assert torch.allclose(out, torch.tensor([[3.0, 4.0], [1.0, 0.0]]), atol=1e-6)
    x = torch.randn(4, 5, 3, generator=torch.Generator().manual_seed(3))
    y = torch.randn(4, 5, 3, generator=torch.Generator().manual_seed(4))
    out = guided_velocity(x, y, 0.9, 4.0)
    assert bool((out.flatten(1).norm(dim=1) <= x.flatten(1).norm(dim=1) + 1e-5).all())


def test_timestep_embedder_sinusoid_and_shapes() -> None:
    emb = TimestepEmbedder.sinusoid(torch.tensor([0.0, 1.0]), 4)
    # half = 2, freqs = [1, 10000^(-1/2) = 0.01]; layout [cos, cos, sin, sin]
    want = torch.tensor([[1.0, 1.0, 0.0, 0.0], [math.cos(1), math.cos(0.01), math.sin(1), 0.01]])
    assert torch.allclose(emb, want, atol=1e-6)
    assert TimestepEmbedder.sinusoid(torch.tensor([0.5]), 5).shape == (1, 5)
    module = TimestepEmbedder(hidden=32)
    assert module(torch.rand(6)).shape == (6, 32)
    assert set(module.state_dict()) == {"mlp.0.weight", "mlp.0.bias", "mlp.2.weight", "mlp.2.bias"}
    with pytest.raises(ValueError, match="1-D"):
        module(torch.rand(2, 3))


def test_sincos_table_tiny_hand_values() -> None:
    table = sincos_2d_table(
        4, 2
    )  # per axis dim 2, omega = [1]: [sin(col), cos(col), sin(row), cos(row)]
    s, c = math.sin(1.0), math.cos(1.0)
    want = torch.tensor(
        [[0, 1, 0, 1], [s, c, 0, 1], [0, 1, s, c], [s, c, s, c]], dtype=torch.float32
    )
    assert torch.allclose(table, want, atol=1e-7)
    with pytest.raises(ValueError, match="multiple of 4"):
        sincos_2d_table(6, 2)


def test_sincos_table_matches_mae_formula() -> None:
    """Independent numpy transcription of the MAE/DiT recipe (meshgrid with w first)."""
    dim, grid = 8, 3

    def one_d(d: int, pos: np.ndarray) -> np.ndarray:
        omega = 1.0 / 10000 ** (np.arange(d // 2, dtype=np.float64) / (d / 2.0))
        out = np.einsum("m,d->md", pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    mesh = np.stack(np.meshgrid(np.arange(grid), np.arange(grid)), axis=0)  # [w, h]
    ref = np.concatenate([one_d(dim // 2, mesh[0]), one_d(dim // 2, mesh[1])], axis=1)
    assert np.allclose(sincos_2d_table(dim, grid).numpy(), ref, atol=1e-6)


def test_patchify_order_and_round_trip() -> None:
    lat = torch.arange(2 * 2 * 4 * 6, dtype=torch.float32).reshape(2, 2, 4, 6)
    tokens = patchify(lat, 2)
    assert tokens.shape == (2, 6, 8)
    # token 1 = patch (row 0, col 1); features ordered (patch row, patch col, channel)
    x = lat[0]
    want = torch.stack([x[:, 0, 2], x[:, 0, 3], x[:, 1, 2], x[:, 1, 3]]).reshape(-1)
    assert torch.equal(tokens[0, 1], want)
    assert torch.equal(unpatchify(tokens, 2, 4, 6), lat)
    assert torch.equal(unpatchify(patchify(lat, 1), 1, 4, 6), lat)
    with pytest.raises(ValueError, match="not divisible"):
        patchify(lat, 4)
    with pytest.raises(ValueError, match="do not tile"):
        unpatchify(tokens, 2, 4, 8)
