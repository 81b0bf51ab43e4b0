"""SynthCXR anatomy: the normal frontal chest radiograph, drawn analytically.

Every structure is a closed-form function of normalised image coordinates ``(x, y)`` in
``[-1, 1]`` (x to the image right = the patient's LEFT, y downwards), so one code path
renders any square size and all edges are anti-aliased by a smoothstep whose width is at
least about one pixel. Densities add up in an *attenuation* map ``A`` (0 = air); the caller
turns it into brightness with ``1 - exp(-A)`` (see :mod:`unixlib.data.synth.render`).

Sides: a per-pixel side parameter is ``np.where(x > 0, left_value, right_value)`` because the
patient's left lung lies on the image right.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np


@dataclass(frozen=True)
class Anatomy:
    """Per-image anatomy and acquisition parameters (normalised units; x: patient-left > 0)."""

    rot: float  # in-plane rotation, radians (patient positioning)
    shift: tuple[float, float]  # (dx, dy) translation of the body in the field of view
    scale: float  # body size relative to the field of view
    lung_top: float  # y of the lung apices
    cp_y: tuple[float, float]  # y of the costophrenic angles (right, left)
    lung_w: tuple[float, float]  # lateral half-width of each lung at its base (right, left)
    dome_top: tuple[float, float]  # y of each hemidiaphragm dome's top (right, left)
    ctr: float  # cardiothoracic ratio (heart width / thoracic width); ~0.42-0.5 is normal
    heart_cy: float  # y of the heart's centre
    med_w: float  # half-width of the upper mediastinum
    clav_y: float  # y of the clavicles' medial heads (higher on AP views)
    rib_arch: float  # how much the posterior ribs arch upwards
    gain: float  # overall attenuation gain (exposure)
    gamma: float  # display gamma (contrast)
    noise: float  # quantum-noise standard deviation in output units


def sample_anatomy(rng: np.random.Generator, view: str) -> Anatomy:
    """Draw a plausible normal anatomy; AP (portable, supine-ish) views magnify the heart,
    sit the clavicles higher and give a shallower inspiration than PA views."""
    ap = view == "AP"
    u = rng.uniform
    dome_r = u(0.12, 0.22) + (0.05 if ap else 0.0)
    return Anatomy(
        rot=u(-0.05, 0.05),
        shift=(u(-0.04, 0.04), u(-0.03, 0.05)),
        scale=u(0.93, 1.04),
        lung_top=u(-0.78, -0.68),
        cp_y=(u(0.44, 0.52), u(0.46, 0.54)),
        lung_w=(u(0.70, 0.78), u(0.70, 0.78)),
        dome_top=(dome_r, dome_r + u(0.02, 0.07)),  # the left dome sits lower
        ctr=u(0.40, 0.48) + (0.04 if ap else 0.0),
        heart_cy=u(0.18, 0.24),
        med_w=u(0.10, 0.125),
        clav_y=u(-0.66, -0.58) - (0.06 if ap else 0.0),
        rib_arch=u(0.10, 0.16),
        gain=u(0.9, 1.1),
        gamma=u(0.85, 1.15),
        noise=u(0.008, 0.02),
    )


def widen(anat: Anatomy, ctr: float | None = None, med_factor: float = 1.0) -> Anatomy:
    """The same anatomy with a given cardiothoracic ratio and/or a widened mediastinum."""
    return replace(anat, ctr=anat.ctr if ctr is None else ctr, med_w=anat.med_w * med_factor)


def smooth_edge(d: np.ndarray, width: float) -> np.ndarray:
    """Smoothstep from 0 (d <= -width/2) to 1 (d >= width/2): a soft inside indicator."""
    t = d * (1.0 / width)
    t += 0.5
    np.clip(t, 0.0, 1.0, out=t)
    return t * t * (3.0 - 2.0 * t)


@dataclass
class Frame:
    """Body coordinates of every pixel for one image (after pose), plus derived lung geometry."""

    x: np.ndarray  # (size, size) body x, patient-left > 0
    y: np.ndarray  # (size, size) body y, downwards
    a: np.ndarray  # |x|: distance from the midline
    left: np.ndarray  # bool, pixel on the patient's left half
    px: float  # one pixel in body units (edge softness floor)

    def side(self, right: float, left: float) -> np.ndarray:
        """Per-pixel choice of a right-lung or left-lung parameter."""
        return np.where(self.left, left, right)


@lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    c = (np.arange(size, dtype=np.float32) + 0.5) / size * 2.0 - 1.0
    return np.meshgrid(c, c)  # (xx, yy)


def make_frame(anat: Anatomy, size: int) -> Frame:
    """Map image pixels to body coordinates through the pose (rotation, shift, scale)."""
    xx, yy = _grid(size)
    c, s = np.cos(anat.rot), np.sin(anat.rot)
    dx, dy = anat.shift
    x = ((c * xx + s * yy) - dx) / anat.scale
    y = ((-s * xx + c * yy) - dy) / anat.scale
    return Frame(x=x, y=y, a=np.abs(x), left=x > 0, px=2.0 / size / anat.scale)


def lung_lateral(anat: Anatomy, f: Frame, y: np.ndarray) -> np.ndarray:
    """Lateral lung edge |x| at height y: 0 at the apex, widest at the costophrenic angle."""
    cp, lw = f.side(*anat.cp_y), f.side(*anat.lung_w)
    u = np.clip((y - anat.lung_top) / (cp - anat.lung_top), 0.0, 1.0)
    return lw * np.sqrt(1.0 - (1.0 - u) ** 2.2)


def dome_y(anat: Anatomy, f: Frame, a: np.ndarray) -> np.ndarray:
    """Hemidiaphragm height at distance a from the midline (parabola through the dome top
    at |x| ~ 0.38 and the costophrenic angle at the lung's lateral edge)."""
    cp, lw, top = f.side(*anat.cp_y), f.side(*anat.lung_w), f.side(*anat.dome_top)
    ac = 0.38
    return top + (cp - top) * ((np.minimum(a, lw) - ac) / (lw - ac)) ** 2


def lung_mask(anat: Anatomy, f: Frame, a: np.ndarray, y: np.ndarray, width: float) -> np.ndarray:
    """Soft mask of both lungs (aerated space inside the rib cage, above the diaphragm)."""
    inside = smooth_edge(lung_lateral(anat, f, y) - a, width)
    above = smooth_edge(dome_y(anat, f, a) - y, width)
    medial = smooth_edge(a - 0.03, width)
    return inside * above * medial


def heart_mask(anat: Anatomy, f: Frame, width: float) -> np.ndarray:
    """Cardiac silhouette: a tilted ellipse resting on the diaphragm, two-thirds of its width
    to the patient's left of the midline (its width / thoracic width = ``anat.ctr``)."""
    thorax = sum(anat.lung_w) + 0.08  # inner rib-cage width
    w = anat.ctr * thorax
    cx = 0.17 * w  # the centre sits left of midline: 1/3 of the width lies right
    rx, ry, tilt = 0.5 * w / 0.97, 0.2 + 0.1 * w, 0.35  # the long axis points down-left
    c, s = np.cos(tilt), np.sin(tilt)
    u, v = f.x - cx, f.y - anat.heart_cy
    r = np.sqrt(((c * u - s * v) / rx) ** 2 + ((s * u + c * v) / ry) ** 2)
    return smooth_edge(1.0 - r, width / min(rx, ry))


def mediastinum_mask(anat: Anatomy, f: Frame, width: float) -> np.ndarray:
    """Upper mediastinum (great vessels) with the aortic knob on the patient's left."""
    hw = anat.med_w * (1.0 + 0.25 * np.clip((f.y + 0.5) / 0.5, 0.0, 1.0))
    band = smooth_edge(hw - np.abs(f.x - 0.02), width) * smooth_edge(anat.heart_cy - f.y, width)
    knob_r = 0.07 + 0.5 * (anat.med_w - 0.1)
    knob = smooth_edge(knob_r - np.hypot((f.x - anat.med_w - 0.01) * 1.3, f.y + 0.32), 2 * width)
    return np.maximum(band, knob)


def body_thickness(f: Frame, width: float) -> np.ndarray:
    """Soft-tissue path length: neck, sloping shoulders, chest wall and upper abdomen."""
    shoulder = smooth_edge(f.y + 0.8, 0.34)
    hw = 0.22 + (1.02 - 0.22) * shoulder + 0.05 * np.clip(f.y, 0.0, None)
    t = np.clip(1.0 - (f.a / hw) ** 2, 0.0, 1.0) ** 0.6
    return t * smooth_edge(hw - f.a, width)


def ribs(anat: Anatomy, f: Frame, breaks: list[tuple[str, float, int]]) -> np.ndarray:
    """Posterior rib arcs (bright cortical margins) on both sides, as one periodic pattern in
    a warped 'rib coordinate'. ``breaks`` holds (side, lateral position, rib index) of
    fractures: each adds a cortical gap and a step-off in that rib."""
    lw = f.side(*anat.lung_w)
    t = np.clip((f.a - 0.04) / (lw + 0.12), 0.0, 1.0)
    # Posterior ribs leave the spine rising slightly, then arc down along the lateral wall.
    s = f.y - anat.rib_arch / 0.13 * (-0.32 * t + 0.6 * t * t)
    starts = anat.lung_top - 0.1 + np.cumsum(np.r_[0.0, 0.105 + 0.012 * np.arange(10)])
    phase = np.interp(s, starts, np.arange(len(starts), dtype=np.float32))
    gap = np.zeros_like(f.x)
    for side, pos, k in breaks:
        on_side = f.left if side == "left" else ~f.left
        near = on_side & (np.abs(phase - k - 0.25) < 0.6)
        phase = phase + 0.35 * (near & (f.a > pos))  # step-off of the lateral fragment
        gap = np.maximum(gap, near * smooth_edge(0.012 - np.abs(f.a - pos), f.px))
    frac = phase - np.floor(phase)
    bw = 0.42  # rib height as a fraction of one rib period
    inside = smooth_edge(np.minimum(frac, bw - frac), f.px * 6)
    cortex = 0.55 + 0.45 * np.abs(2.0 * frac / bw - 1.0) ** 3
    cage = smooth_edge(lw + 0.1 - f.a, 0.05) * smooth_edge(dome_y(anat, f, f.a) + 0.12 - f.y, 0.1)
    keep = (phase > 0.2) & (phase < len(starts) - 1)
    return inside * cortex * cage * keep * (1.0 - 0.9 * gap)


def clavicles(anat: Anatomy, f: Frame, width: float) -> np.ndarray:
    """S-shaped clavicles from the sternal notch out to the shoulders."""
    x0 = 0.07
    yc = anat.clav_y - 0.32 * (f.a - x0) + 0.3 * (f.a - 0.3) ** 2 - 0.03
    span = smooth_edge(f.a - x0, width) * smooth_edge(0.62 - f.a, width)
    return smooth_edge(0.027 - np.abs(f.y - yc), width) * span


def spine(f: Frame, width: float) -> np.ndarray:
    """Thoracic spine: vertebral bodies with end plates, brighter pedicles either side."""
    body = smooth_edge(0.065 - np.abs(f.x - 0.01), width)
    plates = 0.75 + 0.25 * np.cos(2 * np.pi * (f.y + 1.0) / 0.11) ** 8
    pedicles = smooth_edge(0.018 - np.abs(np.abs(f.x - 0.01) - 0.045), width) * 0.5
    return body * plates + pedicles * body


def segment_distance(f: Frame, p0: tuple[float, float], p1: tuple[float, float]) -> np.ndarray:
    """Distance of every pixel (body coords) to the segment p0-p1."""
    (x0, y0), (x1, y1) = p0, p1
    dx, dy = x1 - x0, y1 - y0
    t = np.clip(((f.x - x0) * dx + (f.y - y0) * dy) / (dx * dx + dy * dy), 0.0, 1.0)
    return np.hypot(f.x - x0 - t * dx, f.y - y0 - t * dy)


def trachea(f: Frame, width: float) -> np.ndarray:
    """Air column of the trachea down to the carina, then the two main bronchi (the right
    one steeper and shorter)."""
    col = smooth_edge(0.028 - segment_distance(f, (0.0, -1.2), (0.0, -0.3)), width)
    right = smooth_edge(0.02 - segment_distance(f, (0.0, -0.3), (-0.1, -0.17)), width)
    left = smooth_edge(0.018 - segment_distance(f, (0.0, -0.3), (0.14, -0.2)), width)
    return np.maximum(col, np.maximum(right, left))


def gastric_bubble(anat: Anatomy, f: Frame, width: float) -> np.ndarray:
    """Stomach gas under the left hemidiaphragm."""
    r = np.hypot((f.x - 0.42) / 0.11, (f.y - anat.dome_top[1] - 0.12) / 0.06)
    return smooth_edge(1.0 - r, width / 0.06)


@lru_cache(maxsize=32)
def _interp_matrix(n: int, size: int) -> np.ndarray:
    """(size, n) Gaussian-kernel interpolation from an n-node grid to size pixels."""
    pos = (np.arange(size) + 0.5) / size
    nodes = (np.arange(n) + 0.5) / n
    w = np.exp(-(((pos[:, None] - nodes[None, :]) * n) ** 2) / 0.8)
    return (w / w.sum(1, keepdims=True)).astype(np.float32)


def upsample(img: np.ndarray, size: int) -> np.ndarray:
    """(n, n) -> (size, size) by separable Gaussian-kernel interpolation."""
    m = _interp_matrix(img.shape[0], size)
    return m @ img @ m.T


def smooth_noise(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """(size, size) zero-mean, unit-ish smooth noise with about n blobs per side; the random
    draws do not depend on ``size``, so the texture is the same at every resolution."""
    out = upsample(rng.standard_normal((n, n)).astype(np.float32), size)
    return out / (out.std() + 1e-6)
