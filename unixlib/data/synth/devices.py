"""SynthCXR support devices: radio-opaque tubes, lines and pacemakers drawn along their
anatomical courses (body coordinates, see :mod:`unixlib.data.synth.anatomy`) as thin smooth
curves, rasterised into the image's pixel grid."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from unixlib.data.synth import anatomy as an
from unixlib.data.synth.findings import FindingSpec


def _body_to_pixel(anat: an.Anatomy, pts: np.ndarray, size: int) -> np.ndarray:
    """(n, 2) body (x, y) -> (n, 2) pixel (col, row), the inverse of make_frame's pose."""
    c, s = np.cos(anat.rot), np.sin(anat.rot)
    p = pts[:, 0] * anat.scale + anat.shift[0]
    q = pts[:, 1] * anat.scale + anat.shift[1]
    xx, yy = c * p - s * q, s * p + c * q
    return np.stack([(xx + 1) / 2 * size - 0.5, (yy + 1) / 2 * size - 0.5], 1)


def _path(ctrl: list[tuple[float, float]]) -> np.ndarray:
    """Smooth curve through control points (Chaikin corner cutting, ends kept)."""
    p = np.asarray(ctrl, dtype=np.float64)
    for _ in range(4):
        q = 0.75 * p[:-1] + 0.25 * p[1:]
        r = 0.25 * p[:-1] + 0.75 * p[1:]
        p = np.vstack([p[:1], np.stack([q, r], 1).reshape(-1, 2), p[-1:]])
    return p


def _draw_paths(anat, paths, size: int, width: float) -> np.ndarray:
    """Rasterise polylines (body coords) as lines ~width (body units, >= 1 px) wide, peak 1."""
    canvas = np.zeros((size, size), np.float32)
    for p in paths:
        seg = np.linalg.norm(np.diff(p, axis=0), axis=1)
        t = np.r_[0, np.cumsum(seg)]
        n = max(2, int(t[-1] * size * 2))  # ~4 samples per pixel
        tt = np.linspace(0, t[-1], n)
        pts = np.stack([np.interp(tt, t, p[:, 0]), np.interp(tt, t, p[:, 1])], 1)
        px = np.rint(_body_to_pixel(anat, pts, size)).astype(int)
        ok = (px >= 0).all(1) & (px < size).all(1)
        canvas[px[ok, 1], px[ok, 0]] = 1.0
    sigma = max(0.5, width * size / 4)
    return np.clip(gaussian_filter(canvas, sigma) * np.sqrt(2 * np.pi) * sigma, 0.0, 1.0)


def draw_device(
    anat: an.Anatomy, spec: FindingSpec, rng: np.random.Generator, f: an.Frame, size: int
) -> np.ndarray:
    """(size, size) metal density of one support device (``spec.region``: the device kind)
    drawn along its anatomical course, jittered a little by ``rng``."""
    j = lambda: rng.uniform(-0.02, 0.02)  # noqa: E731 - small per-image course jitter
    sg = 1.0 if spec.side == "left" else -1.0
    if spec.region == "et_tube":
        tip = -0.4 + j()
        return 1.3 * _draw_paths(anat, [_path([(j(), -1.1), (0.0, -0.7), (0.0, tip)])], size, 0.02)
    if spec.region == "ng_tube":
        d = anat.dome_top[1]
        ctrl = [
            (j(), -1.1),
            (0.03, -0.5),
            (0.06, 0.1),
            (0.12, d + 0.12),
            (0.35, d + 0.22),
            (0.45, d + 0.15),
        ]
        return 1.1 * _draw_paths(anat, [_path(ctrl)], size, 0.014)
    if spec.region == "central_line":
        ctrl = [
            (0.32 * sg, -1.1),
            (0.2 * sg, -0.72),
            (0.06 * sg, -0.5 + j()),
            (-0.05, -0.32),
            (-0.05, -0.12 + j()),
        ]
        return 1.1 * _draw_paths(anat, [_path(ctrl)], size, 0.012)
    gx, gy = 0.5 * sg + j(), -0.56 + j()
    box = an.smooth_edge(
        1.0 - ((np.abs(f.x - gx) / 0.09) ** 4 + (np.abs(f.y - gy) / 0.065) ** 4), 0.2
    )
    start = [(gx - 0.05 * sg, gy), (0.25 * sg, -0.63), (0.08 * sg, -0.5), (-0.04, -0.3)]
    leads = [
        _path([*start, (-0.07, 0.05)]),
        _path([*start, (-0.05, 0.1), (0.15, anat.heart_cy + 0.12)]),
    ]
    return 2.5 * box + 1.1 * _draw_paths(anat, leads, size, 0.012)
