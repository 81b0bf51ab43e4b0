"""SynthCXR findings: the vocabulary of one finding instance and how each one is drawn.

A :class:`FindingSpec` names a CheXpert observation with a severity, a side and a region.
Conventions (also used by the report writer):

- ``severity`` is ``mild`` | ``moderate`` | ``severe``; ``small`` and ``large`` are accepted
  and stored as ``mild`` and ``severe`` (reports say small/moderate/large for effusion and
  pneumothorax, 6 mm nodule / 1.5 cm nodule / 4 cm mass for a lung lesion).
- ``side`` is the patient's side (``left`` is drawn on the image right), ``bilateral`` or
  ``none``; :data:`SIDES` lists what each observation allows.
- ``region`` is a lung zone (``upper``/``middle``/``lower``) for opacities, lesions and rib
  fractures, ``upper`` (apical cap) or ``lower`` (lateral) for pleural thickening, and the
  device kind (``et_tube``/``ng_tube``/``central_line``/``pacemaker``) for support devices;
  ``""`` selects :data:`DEFAULT_REGION`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.ndimage import gaussian_filter

from unixlib.data.schema import LABELS
from unixlib.data.synth import anatomy as an

SEVERITIES = ("mild", "moderate", "severe")
_SEVERITY_ALIASES = {"small": "mild", "large": "severe"}
_LR, _LRB = ("left", "right"), ("left", "right", "bilateral")
ZONES = ("upper", "middle", "lower")
DEVICES = ("et_tube", "ng_tube", "central_line", "pacemaker")

SIDES: dict[str, tuple[str, ...]] = {
    "enlarged_cardiomediastinum": ("none",),
    "cardiomegaly": ("none",),
    "lung_opacity": _LRB,
    "lung_lesion": _LR,
    "edema": ("bilateral",),
    "consolidation": _LRB,
    "pneumonia": _LRB,
    "atelectasis": _LRB,
    "pneumothorax": _LR,
    "pleural_effusion": _LRB,
    "pleural_other": _LRB,
    "fracture": _LR,
    "support_devices": ("none", "left", "right"),
}
REGIONS: dict[str, tuple[str, ...]] = {
    **{n: ("",) for n in SIDES},
    **{n: ZONES for n in ("lung_opacity", "lung_lesion", "consolidation", "pneumonia")},
    "atelectasis": ("middle", "lower"),
    "fracture": ZONES,
    "pleural_other": ("upper", "lower"),
    "support_devices": DEVICES,
}
DEFAULT_REGION = {n: r[0] if len(r) == 1 else "lower" for n, r in REGIONS.items()}
DEFAULT_REGION.update(lung_lesion="upper", fracture="middle", support_devices="et_tube")
# Findings seen as an opacity of the lung parenchyma: each makes lung_opacity positive.
OPACITY_FINDINGS = ("consolidation", "pneumonia", "atelectasis", "edema", "lung_lesion")


@dataclass(frozen=True)
class FindingSpec:
    """One finding instance (see the module docstring for the value conventions)."""

    name: str  # a LABELS entry other than no_finding
    severity: str  # "mild" | "moderate" | "severe" ("small"/"large" accepted)
    side: str  # "left" | "right" | "bilateral" | "none" (allowed values: SIDES[name])
    hedged: bool = False  # present, but the report only says it is possible (label -1)
    region: str = ""  # lung zone / pleural site / device kind; "" = DEFAULT_REGION[name]

    def __post_init__(self) -> None:
        if self.name not in SIDES:
            raise ValueError(f"FindingSpec.name {self.name!r}: not one of {sorted(SIDES)}")
        sev = _SEVERITY_ALIASES.get(self.severity, self.severity)
        if sev not in SEVERITIES:
            raise ValueError(f"FindingSpec.severity {self.severity!r}: use {SEVERITIES}")
        object.__setattr__(self, "severity", sev)
        if self.side not in SIDES[self.name]:
            raise ValueError(
                f"FindingSpec.side {self.side!r} for {self.name}: use {SIDES[self.name]}"
            )
        region = self.region or DEFAULT_REGION[self.name]
        if region not in REGIONS[self.name]:
            raise ValueError(
                f"FindingSpec.region {self.region!r} for {self.name}: use {REGIONS[self.name]}"
            )
        object.__setattr__(self, "region", region)
        if self.name == "support_devices" and (self.side == "none") != (
            region in ("et_tube", "ng_tube")
        ):
            raise ValueError(
                f"FindingSpec support_devices/{region}: side must be 'none' for tubes, 'left'/'right' for lines and pacemakers"
            )

    @property
    def level(self) -> int:
        """Severity as 0 (mild), 1 (moderate), 2 (severe)."""
        return SEVERITIES.index(self.severity)

    @property
    def sides(self) -> tuple[str, ...]:
        """The lungs involved: ('left',), ('right',), ('right', 'left') or ()."""
        return {"bilateral": ("right", "left"), "none": ()}.get(self.side, (self.side,))


assert set(SIDES) == set(LABELS) - {"no_finding"}


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


def _device(anat: an.Anatomy, spec: FindingSpec, rng, f: an.Frame, size: int) -> np.ndarray:
    """Radio-opaque support devices drawn along anatomical courses."""
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


def finding_layers(anat, f: an.Frame, findings, rngs, lungs, w: float, size: int) -> Layers:
    """Draw every finding into :class:`Layers` (see the module docstring for conventions)."""
    z = np.zeros_like(f.x)
    L = Layers(
        density=z.copy(), fluid=z.copy(), lucency=z.copy(), no_markings=z.copy(), metal=z.copy()
    )
    for spec, rng in zip(findings, rngs, strict=True):
        k, n = spec.level, spec.name
        for side in spec.sides:
            sm = _side_mask(f, side)
            if n in ("consolidation", "pneumonia", "lung_opacity"):
                c = _zone_centre(anat, side, spec.region)
                sigma = (0.08, 0.11, 0.15)[k] * (1.2 if n == "lung_opacity" else 1.0)
                blobs, amp = {"consolidation": (3, 1.0), "pneumonia": (6, 0.9)}.get(n, (4, 0.55))
                noise = 0.5 * an.smooth_noise(rng, 16 if n == "pneumonia" else 10, size)
                L.density += (
                    amp * (0.6 + 0.3 * k) * _blob(rng, f, side, c, sigma, blobs, noise) * lungs
                )
            elif n == "edema":
                bat = np.exp(
                    -(((f.a - 0.22) / (0.2 + 0.07 * k)) ** 2)
                    - ((f.y + 0.02) / (0.28 + 0.05 * k)) ** 2
                )
                retic = 0.35 * an.smooth_noise(rng, 40, size)
                L.density += (0.35 + 0.25 * k) * bat * (1.0 + retic) * lungs * sm
            elif n == "atelectasis":
                ca, cy = _zone_centre(anat, side, spec.region)
                tilt = rng.uniform(-0.15, 0.1)
                d = np.abs((f.y - cy - 0.04) - tilt * (f.a - ca))
                along = an.smooth_edge(0.2 - np.abs(f.a - ca), w)
                th = max((0.015, 0.028, 0.045)[k], 1.2 * f.px)
                band = an.smooth_edge(th - d, max(w * 0.5, f.px)) * along
                if k == 2:  # lobar collapse: a wedge of airless lung below the plate
                    band = np.maximum(band, 0.7 * along * an.smooth_edge(f.y - cy - 0.04, w))
                L.density += 0.7 * band * lungs * sm
            elif n == "pneumothorax":
                s = (0.12, 0.22, 0.34)[k]
                a0, y0 = 0.12, 0.42  # collapse towards the hilum / lower medial lung
                ca, cy = a0 + (f.a - a0) / (1 - s), y0 + (f.y - y0) / (1 - s)
                inner = an.lung_mask(anat, f, ca, cy, max(0.6 * f.px, 0.004))
                rim = lungs * (1.0 - inner) * sm
                L.no_markings = np.maximum(L.no_markings, rim)
                L.lucency += 0.16 * rim
                L.density += 0.3 * 4.0 * inner * (1.0 - inner) * sm * lungs  # visceral pleural line
            elif n == "pleural_effusion":
                cp, lw = anat.cp_y[side == "left"], anat.lung_w[side == "left"]
                dome = anat.dome_top[side == "left"]
                y_lat = cp - (0.12, 0.36, 0.66)[k]
                y_med = (cp + 0.12, dome + 0.1, dome - 0.12)[k]
                surf = y_lat + (y_med - y_lat) * (1.0 - np.clip(f.a / lw, 0, 1)) ** 2
                fl = an.smooth_edge(f.y - surf, 0.05) * an.smooth_edge(
                    an.lung_lateral(anat, f, f.y) + 0.01 - f.a, w
                )
                fl = (
                    fl
                    * an.smooth_edge(an.dome_y(anat, f, f.a) + 0.04 - f.y, w)
                    * an.smooth_edge(f.a - 0.03, w)
                )
                L.fluid = np.maximum(L.fluid, fl * sm)
            elif n == "pleural_other":
                t = (0.03, 0.045, 0.065)[k]
                if spec.region == "upper":
                    inner = an.lung_mask(anat, f, f.a, f.y - t, w)
                    zone = 1.0
                else:
                    inner = an.lung_mask(anat, f, f.a + t, f.y, w)
                    zone = an.smooth_edge(f.y + 0.25, 0.1)
                L.density += 0.55 * lungs * (1.0 - inner) * zone * sm
            elif n == "lung_lesion":
                ca, cy = _zone_centre(anat, side, spec.region)
                ca, cy = ca + rng.uniform(-0.1, 0.1), cy + rng.uniform(-0.06, 0.06)
                r = (0.035, 0.055, 0.1)[k]
                rr = np.hypot(f.a - ca, f.y - cy) * (1.0 + 0.08 * an.smooth_noise(rng, 12, size))
                L.density += 0.6 * an.smooth_edge(r - rr, w) * sm * lungs
            elif n == "fracture":
                first = {"upper": 2, "middle": 4, "lower": 6}[spec.region]
                pos = rng.uniform(0.42, 0.62)
                L.rib_breaks += [(side, pos + 0.03 * i, first + i) for i in range(k + 1)]
        if n == "support_devices":
            L.metal += _device(anat, spec, rng, f, size)
    return L
