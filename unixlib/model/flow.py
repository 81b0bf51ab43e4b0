"""Flow matching for the generation branch: interpolant, timesteps, Euler sampler, CFG.

Conventions (PAPER.md "Flow matching and sampling"; the official UniX / BAGEL code agrees):

- ``t = 0`` is data, ``t = 1`` is noise: ``x_t = (1 - t) x0 + t eps`` and the network predicts
  the velocity ``v = dx_t/dt = eps - x0``, which points from data to noise.
- Training draws ``t = shift(sigmoid(N(0, 1)))`` with ``shift(t) = s t / (1 + (s - 1) t)``
  (``s > 1`` moves mass towards the noisy end; the released config trains with ``s = 1``).
- Sampling walks ``t = shift(linspace(1, 0, N))`` (``s = 3`` in the release) with ``N - 1``
  Euler steps ``x <- x - v (t_i - t_{i+1})``.
- Classifier-free guidance on the text is applied only while ``interval[0] < t <= interval[1]``
  (the shifted ``t``), followed by a global renormalisation that never lets the guided
  velocity be longer than the conditional one.

Also here: the DiT timestep embedder, the fixed 2-D sin-cos position table of the latent
tokens and the (un)patchify of latents, i.e. everything that turns latents into tokens.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

__all__ = [
    "TimestepEmbedder",
    "euler_sample",
    "guided_velocity",
    "interpolate",
    "patchify",
    "sample_train_timesteps",
    "sampling_timesteps",
    "shift_timesteps",
    "sincos_2d_table",
    "unpatchify",
    "velocity_target",
]


def shift_timesteps(t: Tensor, shift: float) -> Tensor:
    """Time shift ``s t / (1 + (s - 1) t)``: identity for ``s = 1``; fixes 0 and 1.

    Args:
        t: any shape, values in [0, 1].
        shift: ``s > 0``.
    """
    if shift <= 0:
        raise ValueError(f"shift must be > 0, got {shift}")
    return shift * t / (1 + (shift - 1) * t)


def sample_train_timesteps(
    n: int,
    shift: float = 1.0,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Training timesteps ``shift(sigmoid(z))``, ``z ~ N(0, 1)`` (logit-normal): (n,) float32.

    The draw happens on the generator's device (so a CPU generator is reproducible whatever
    the model's device) and is then moved to ``device``.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    draw_device = generator.device if generator is not None else device
    z = torch.randn(n, generator=generator, device=draw_device)
    return shift_timesteps(torch.sigmoid(z), shift).to(device if device is not None else z.device)


def sampling_timesteps(steps: int, shift: float) -> Tensor:
    """The sampling grid ``shift(linspace(1, 0, steps))``: (steps,), from 1 down to 0.

    ``steps`` grid points give ``steps - 1`` Euler steps (the release: 50 points, 49 steps).
    """
    if steps < 2:
        raise ValueError(f"steps must be >= 2 (a start and an end point), got {steps}")
    return shift_timesteps(torch.linspace(1.0, 0.0, steps), shift)


def _broadcast_t(t: Tensor | float, like: Tensor) -> Tensor:
    """``t`` as (B, 1, ..., 1) against ``like`` (B, ...); a scalar applies to every sample."""
    t = torch.as_tensor(t, dtype=like.dtype, device=like.device)
    if t.dim() == 0:
        return t
    if t.dim() != 1 or t.shape[0] != like.shape[0]:
        raise ValueError(f"t must be a scalar or shape ({like.shape[0]},), got {tuple(t.shape)}")
    return t.reshape(-1, *([1] * (like.dim() - 1)))


def interpolate(x0: Tensor, noise: Tensor, t: Tensor | float) -> Tensor:
    """``x_t = (1 - t) x0 + t noise``; ``t`` is a scalar or (B,) broadcast over (B, ...)."""
    if x0.shape != noise.shape:
        raise ValueError(f"x0 {tuple(x0.shape)} and noise {tuple(noise.shape)} differ in shape")
    t = _broadcast_t(t, x0)
    return (1 - t) * x0 + t * noise


def velocity_target(x0: Tensor, noise: Tensor) -> Tensor:
    """The flow-matching target ``v = d x_t / dt = noise - x0`` (points from data to noise)."""
    return noise - x0


def cfg_active(t: Tensor | float, scale: float, interval: tuple[float, float]) -> bool:
    """Whether guidance changes the velocity at ``t``: ``scale != 1`` and t in the interval
    ``(interval[0], interval[1]]``. Outside it the sampler needs no unconditional forward."""
    return scale != 1.0 and interval[0] < float(t) <= interval[1]


def guided_velocity(
    v_cond: Tensor,
    v_uncond: Tensor,
    t: Tensor | float,
    scale: float,
    interval: tuple[float, float] = (0.4, 1.0),
    renorm: bool = True,
) -> Tensor:
    """Classifier-free guidance with an interval on ``t`` and global renormalisation.

    ``v_cfg = v_uncond + scale (v_cond - v_uncond)`` while ``interval[0] < t <= interval[1]``,
    else ``v_cond``. With ``renorm``, each sample is rescaled by
    ``min(1, ||v_cond|| / ||v_cfg||)``, the norms taken over all its tokens and channels
    (the release's "global" renorm with ``cfg_renorm_min = 0``; it computes one norm over the
    whole batch because it samples one image at a time; per sample is the same for B = 1).

    Args:
        v_cond, v_uncond: (B, ...) velocities with and without the text condition.
        t: the current (shifted) timestep, one value for the whole batch.
        scale: guidance scale (1.0 returns ``v_cond``).
    """
    if v_cond.shape != v_uncond.shape:
        raise ValueError(
            f"v_cond {tuple(v_cond.shape)} and v_uncond {tuple(v_uncond.shape)} differ"
        )
    if not cfg_active(t, scale, interval):
        return v_cond
    v_cfg = v_uncond + scale * (v_cond - v_uncond)
    if not renorm:
        return v_cfg
    norm_cond = v_cond.flatten(1).norm(dim=1)  # (B,)
    norm_cfg = v_cfg.flatten(1).norm(dim=1)  # (B,)
    factor = (norm_cond / (norm_cfg + 1e-8)).clamp(max=1.0)  # 1e-8: as the release
    return v_cfg * factor.reshape(-1, *([1] * (v_cfg.dim() - 1)))


def euler_sample(
    velocity_fn: Callable[[Tensor, Tensor], Tensor], x1: Tensor, timesteps: Tensor
) -> Tensor:
    """Integrate ``dx/dt = v`` from ``timesteps[0]`` (noise) to ``timesteps[-1]`` (data).

    Args:
        velocity_fn: ``(x, t) -> v`` with ``t`` a 0-d tensor shared by the batch.
        x1: (B, ...) the starting noise.
        timesteps: (N,) strictly decreasing, e.g. :func:`sampling_timesteps`.
    Returns:
        x0: (B, ...) after ``N - 1`` steps ``x <- x - v (t_i - t_{i+1})``.
    """
    if timesteps.dim() != 1 or timesteps.numel() < 2:
        raise ValueError(f"timesteps must be 1-D with >= 2 points, got {tuple(timesteps.shape)}")
    if not bool((timesteps[1:] < timesteps[:-1]).all()):
        raise ValueError("timesteps must be strictly decreasing (noise at t=1 -> data at t=0)")
    x = x1
    for t_now, t_next in itertools.pairwise(timesteps):
        v = velocity_fn(x, t_now)
        x = x - v * (t_now - t_next)
    return x


class TimestepEmbedder(nn.Module):
    """DiT timestep embedder: sinusoid ``[cos, sin]`` of ``t`` -> Linear-SiLU-Linear.

    ``t`` enters **unscaled**, in [0, 1]: the release (BAGEL's ``modeling_utils.TimestepEmbedder``,
    called as ``time_embedder(packed_timesteps)`` on the sigmoid/shifted flow time) does not
    multiply by 1000 as DiT's integer diffusion steps would. Frequencies are
    ``max_period ** (-k / half)`` for ``k < half``, so with t in [0, 1] the low-frequency half
    of the features is nearly constant; we keep that for weight compatibility.

    State-dict names ``mlp.0`` / ``mlp.2`` match the release.
    """

    def __init__(self, hidden: int, freq_dim: int = 256, max_period: float = 10000.0) -> None:
        super().__init__()
        self.freq_dim = freq_dim
        self.max_period = max_period
        self.mlp = nn.Sequential(nn.Linear(freq_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

    @staticmethod
    def sinusoid(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
        """(N,) timesteps -> (N, dim) ``[cos(t f_k), sin(t f_k)]`` (zero-padded if dim is odd)."""
        half = dim // 2
        k = torch.arange(half, dtype=torch.float32, device=t.device)
        freqs = torch.exp(-math.log(max_period) * k / half)  # (half,)
        args = t.float()[:, None] * freqs[None]  # (N, half)
        emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)  # (N, 2 * half)
        if dim % 2:
            emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
        return emb

    def forward(self, t: Tensor) -> Tensor:
        """(N,) flow times in [0, 1] -> (N, hidden)."""
        if t.dim() != 1:
            raise ValueError(f"t must be 1-D (one time per token or sample), got {tuple(t.shape)}")
        freq = self.sinusoid(t, self.freq_dim, self.max_period)  # (N, freq_dim)
        return self.mlp(freq.to(self.mlp[0].weight.dtype))  # (N, hidden)


def _sincos_1d(dim: int, pos: Tensor) -> Tensor:
    """(M,) positions -> (M, dim) ``[sin(pos w_k), cos(pos w_k)]``, ``w_k = 10000^(-2k/dim)``."""
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim / 2))  # (dim/2,)
    out = pos.double()[:, None] * omega[None]  # (M, dim/2)
    return torch.cat([torch.sin(out), torch.cos(out)], dim=1)


def sincos_2d_table(dim: int, grid: int) -> Tensor:
    """Fixed 2-D sin-cos position table (MAE / DiT ``get_2d_sincos_pos_embed``): (grid^2, dim).

    Row ``id = row * grid + col``. As in MAE/DiT (and hence the release), the first half of
    the channels encodes the **column** and the second half the row, each as ``[sin, cos]``.
    Computed in float64, returned as float32.
    """
    if dim % 4:
        raise ValueError(f"dim must be a multiple of 4 for a 2-D sin-cos table, got {dim}")
    if grid < 1:
        raise ValueError(f"grid must be >= 1, got {grid}")
    idx = torch.arange(grid * grid)
    row, col = idx // grid, idx % grid
    table = torch.cat([_sincos_1d(dim // 2, col), _sincos_1d(dim // 2, row)], dim=1)
    return table.float()  # (grid^2, dim)


def patchify(latents: Tensor, p: int) -> Tensor:
    """(B, C, h, w) latents -> (B, (h/p)(w/p), p*p*C) tokens in row-major patch order.

    The per-token feature order is (patch row, patch col, channel), as the release's
    ``einsum("chpwq->hwpqc")``, so released ``vae2llm``/``llm2vae`` weights apply unchanged.
    """
    b, c, h, w = latents.shape
    if h % p or w % p:
        raise ValueError(f"latent size {h}x{w} is not divisible by patch size {p}")
    x = latents.reshape(b, c, h // p, p, w // p, p)
    x = torch.einsum("bchpwq->bhwpqc", x)  # (B, h/p, w/p, p, p, C)
    return x.reshape(b, (h // p) * (w // p), p * p * c)


def unpatchify(tokens: Tensor, p: int, h: int, w: int) -> Tensor:
    """Inverse of :func:`patchify`: (B, (h/p)(w/p), p*p*C) -> (B, C, h, w)."""
    b, n, d = tokens.shape
    if h % p or w % p or n != (h // p) * (w // p) or d % (p * p):
        raise ValueError(f"tokens {tuple(tokens.shape)} do not tile a {h}x{w} latent with p={p}")
    c = d // (p * p)
    x = tokens.reshape(b, h // p, w // p, p, p, c)
    x = torch.einsum("bhwpqc->bchpwq", x)  # (B, C, h/p, p, w/p, p)
    return x.reshape(b, c, h, w)
