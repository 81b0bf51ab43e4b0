"""SynthCXR findings drawn into the image: what each finding adds to the attenuation map.

:func:`adjust_anatomy` applies the findings that change the anatomy itself (heart size,
mediastinal width, a raised dome); :func:`finding_layers` draws every other finding into
:class:`Layers`, which :func:`unixlib.data.synth.render.render_image` composes with the normal
anatomy. Each finding draws on each of its sides (``FindingSpec.sides``) with its own
generator, in a fixed order of calls: moving a draw changes the image. Conventions (side,
region, severity): :mod:`unixlib.data.synth.findings`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from unixlib.data.synth import anatomy as an
from unixlib.data.synth.devices import draw_device
from unixlib.data.synth.findings import FindingSpec


@dataclass
class Layers:
    """Everything findings add to the attenuation map (arrays are (size, size))."""

    density: np.ndarray  # extra tissue density (opacities, pleural line, thickening)
    fluid: np.ndarray  # 0..1 pleural fluid replacing aerated lung
    lucency: np.ndarray  # extra air (pneumothorax)
    no_markings: np.ndarray  # 0..1 where lung markings are absent (pneumothorax)
    metal: np.ndarray  # radio-opaque devices
    rib_breaks: list[tuple[str, float, int]] = field(default_factory=list)


def adjust_anatomy(anat: an.Anatomy, findings: Sequence[FindingSpec]) -> an.Anatomy:
    """Findings that change the anatomy itself: heart size, mediastinal width, a dome raised
    by lobar collapse (volume loss)."""
    for s in findings:
        if s.name == "cardiomegaly":
            anat = an.widen(anat, ctr=max(anat.ctr, (0.57, 0.63, 0.70)[s.level]))
        elif s.name == "enlarged_cardiomediastinum":
            anat = an.widen(anat, med_factor=(1.5, 1.8, 2.1)[s.level])
        elif s.name == "atelectasis" and s.level == 2:
            top = list(anat.dome_top)
            for side in s.sides:
                top[side == "left"] -= 0.07
            anat = replace(anat, dome_top=(top[0], top[1]))
    return anat


def _zone_centre(anat: an.Anatomy, side: str, zone: str) -> tuple[float, float]:
    """(|x|, y) of a lung zone's centre on one side."""
    dome = anat.dome_top[side == "left"]
    return {"upper": (0.38, -0.42), "middle": (0.45, -0.08), "lower": (0.5, dome - 0.1)}[zone]


def _side_mask(f: an.Frame, side: str) -> np.ndarray:
    return f.left if side == "left" else ~f.left


def _blob(rng, f, side, centre, sigma, n, noise) -> np.ndarray:
    """Cluster of n Gaussians around centre, broken up by smooth noise: an opacity patch."""
    out = np.zeros_like(f.x)
    for _ in range(n):
        ca = centre[0] + rng.normal(0, sigma * 0.6)
        cy = centre[1] + rng.normal(0, sigma * 0.6)
        s = sigma * rng.uniform(0.6, 1.1)
        out += np.exp(-((f.a - ca) ** 2 + (f.y - cy) ** 2) / (2 * s * s))
    out = np.clip(out, 0.0, 1.0) * np.clip(1.0 + noise, 0.2, 1.6)
    return out * _side_mask(f, side)


@dataclass(frozen=True)
class _Scene:
    """What every finding is drawn against (arrays are (size, size))."""

    anat: an.Anatomy  # the anatomy after adjust_anatomy
    f: an.Frame  # body coordinates of each pixel
    lungs: np.ndarray  # 0..1 lung fields
    w: float  # edge softness, body units
    size: int  # image side, pixels


Rng = np.random.Generator


def _draw_airspace(L: Layers, s: _Scene, spec: FindingSpec, side: str, rng: Rng) -> None:
    """Consolidation, pneumonia or a plain opacity: a noisy patch of Gaussians in a lung zone."""
    k, n = spec.level, spec.name
    c = _zone_centre(s.anat, side, spec.region)
    sigma = (0.08, 0.11, 0.15)[k] * (1.2 if n == "lung_opacity" else 1.0)
    blobs, amp = {"consolidation": (3, 1.0), "pneumonia": (6, 0.9)}.get(n, (4, 0.55))
    noise = 0.5 * an.smooth_noise(rng, 16 if n == "pneumonia" else 10, s.size)
    L.density += amp * (0.6 + 0.3 * k) * _blob(rng, s.f, side, c, sigma, blobs, noise) * s.lungs


def _draw_edema(L: Layers, s: _Scene, spec: FindingSpec, side: str, rng: Rng) -> None:
    """Perihilar 'bat-wing' haze with a reticular texture, wider with severity."""
    f, k = s.f, spec.level
    bat = np.exp(
        -(((f.a - 0.22) / (0.2 + 0.07 * k)) ** 2) - ((f.y + 0.02) / (0.28 + 0.05 * k)) ** 2
    )
    retic = 0.35 * an.smooth_noise(rng, 40, s.size)
    L.density += (0.35 + 0.25 * k) * bat * (1.0 + retic) * s.lungs * _side_mask(f, side)


def _draw_atelectasis(L: Layers, s: _Scene, spec: FindingSpec, side: str, rng: Rng) -> None:
    """A tilted plate of collapsed lung; severe: with a wedge of airless lung below it."""
    f, k, w = s.f, spec.level, s.w
    ca, cy = _zone_centre(s.anat, side, spec.region)
    tilt = rng.uniform(-0.15, 0.1)
    d = np.abs((f.y - cy - 0.04) - tilt * (f.a - ca))
    along = an.smooth_edge(0.2 - np.abs(f.a - ca), w)
    th = max((0.015, 0.028, 0.045)[k], 1.2 * f.px)
    band = an.smooth_edge(th - d, max(w * 0.5, f.px)) * along
    if k == 2:  # lobar collapse: a wedge of airless lung below the plate
        band = np.maximum(band, 0.7 * along * an.smooth_edge(f.y - cy - 0.04, w))
    L.density += 0.7 * band * s.lungs * _side_mask(f, side)


def _draw_pneumothorax(L: Layers, s: _Scene, spec: FindingSpec, side: str, rng: Rng) -> None:
    """The lung shrunk towards the hilum: an air rim without markings, and the pleural line."""
    f, sm = s.f, _side_mask(s.f, side)
    collapse = (0.12, 0.22, 0.34)[spec.level]  # fraction of the lung's extent lost
    a0, y0 = 0.12, 0.42  # collapse towards the hilum / lower medial lung
    ca, cy = a0 + (f.a - a0) / (1 - collapse), y0 + (f.y - y0) / (1 - collapse)
    inner = an.lung_mask(s.anat, f, ca, cy, max(0.6 * f.px, 0.004))
    rim = s.lungs * (1.0 - inner) * sm
    L.no_markings = np.maximum(L.no_markings, rim)
    L.lucency += 0.16 * rim
    L.density += 0.3 * 4.0 * inner * (1.0 - inner) * sm * s.lungs  # visceral pleural line


def _draw_effusion(L: Layers, s: _Scene, spec: FindingSpec, side: str, rng: Rng) -> None:
    """Pleural fluid filling the costophrenic angle up to a meniscus, higher with severity."""
    anat, f, k, w = s.anat, s.f, spec.level, s.w
    cp, lw = anat.cp_y[side == "left"], anat.lung_w[side == "left"]
    dome = anat.dome_top[side == "left"]
    y_lat = cp - (0.12, 0.36, 0.66)[k]
    y_med = (cp + 0.12, dome + 0.1, dome - 0.12)[k]
    surf = y_lat + (y_med - y_lat) * (1.0 - np.clip(f.a / lw, 0, 1)) ** 2
    fl = an.smooth_edge(f.y - surf, 0.05) * an.smooth_edge(
        an.lung_lateral(anat, f, f.y) + 0.01 - f.a, w
    )
    fl = (
        fl * an.smooth_edge(an.dome_y(anat, f, f.a) + 0.04 - f.y, w) * an.smooth_edge(f.a - 0.03, w)
    )
    L.fluid = np.maximum(L.fluid, fl * _side_mask(f, side))


def _draw_thickening(L: Layers, s: _Scene, spec: FindingSpec, side: str, rng: Rng) -> None:
    """Pleural thickening: a band inside the apex (region ``upper``) or the lateral wall."""
    anat, f, w = s.anat, s.f, s.w
    t = (0.03, 0.045, 0.065)[spec.level]
    if spec.region == "upper":
        inner = an.lung_mask(anat, f, f.a, f.y - t, w)
        zone = 1.0
    else:
        inner = an.lung_mask(anat, f, f.a + t, f.y, w)
        zone = an.smooth_edge(f.y + 0.25, 0.1)
    L.density += 0.55 * s.lungs * (1.0 - inner) * zone * _side_mask(f, side)


def _draw_lesion(L: Layers, s: _Scene, spec: FindingSpec, side: str, rng: Rng) -> None:
    """A round nodule or mass with a slightly irregular edge, near a lung zone's centre."""
    f = s.f
    ca, cy = _zone_centre(s.anat, side, spec.region)
    ca, cy = ca + rng.uniform(-0.1, 0.1), cy + rng.uniform(-0.06, 0.06)
    r = (0.035, 0.055, 0.1)[spec.level]
    rr = np.hypot(f.a - ca, f.y - cy) * (1.0 + 0.08 * an.smooth_noise(rng, 12, s.size))
    L.density += 0.6 * an.smooth_edge(r - rr, s.w) * _side_mask(f, side) * s.lungs


def _draw_fracture(L: Layers, s: _Scene, spec: FindingSpec, side: str, rng: Rng) -> None:
    """``level + 1`` consecutive rib breaks (drawn by anatomy.ribs), from the region's rib."""
    first = {"upper": 2, "middle": 4, "lower": 6}[spec.region]
    pos = rng.uniform(0.42, 0.62)
    L.rib_breaks += [(side, pos + 0.03 * i, first + i) for i in range(spec.level + 1)]


# Finding name -> how it is drawn on one side; support devices are drawn once (draw_device).
_DRAW_ON_SIDE: dict[str, Callable[[Layers, _Scene, FindingSpec, str, Rng], None]] = {
    "consolidation": _draw_airspace,
    "pneumonia": _draw_airspace,
    "lung_opacity": _draw_airspace,
    "edema": _draw_edema,
    "atelectasis": _draw_atelectasis,
    "pneumothorax": _draw_pneumothorax,
    "pleural_effusion": _draw_effusion,
    "pleural_other": _draw_thickening,
    "lung_lesion": _draw_lesion,
    "fracture": _draw_fracture,
}


def finding_layers(
    anat: an.Anatomy,
    f: an.Frame,
    findings: Sequence[FindingSpec],
    rngs: Sequence[Rng],
    lungs: np.ndarray,
    w: float,
    size: int,
) -> Layers:
    """Draw every finding into :class:`Layers`.

    Args:
        anat: the anatomy after :func:`adjust_anatomy`.
        f: the frame of ``anat`` at ``size`` (body coordinates of each pixel).
        findings: what to draw; ``rngs``: one generator per finding, same order.
        lungs: (size, size) 0..1 lung fields of ``anat``.
        w: edge softness in body units; size: image side in pixels.
    """
    z = np.zeros_like(f.x)
    L = Layers(
        density=z.copy(), fluid=z.copy(), lucency=z.copy(), no_markings=z.copy(), metal=z.copy()
    )
    scene = _Scene(anat, f, lungs, w, size)
    for spec, rng in zip(findings, rngs, strict=True):
        draw = _DRAW_ON_SIDE.get(spec.name)
        if draw is not None:
            for side in spec.sides:
                draw(L, scene, spec, side, rng)
        if spec.name == "support_devices":
            L.metal += draw_device(anat, spec, rng, f, size)
    return L
