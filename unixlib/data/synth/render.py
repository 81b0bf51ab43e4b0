"""SynthCXR rendering: normal anatomy + findings -> one (size, size) float32 image in [0, 1].

The anatomy (:mod:`unixlib.data.synth.anatomy`) and every finding add densities to an
attenuation map ``A``; brightness is ``1 - exp(-gain * A)`` followed by a display gamma and
quantum noise, so overlapping structures combine the way they do on a radiograph (a rib over
lung shows, a rib over the heart barely does). Findings (see :mod:`unixlib.data.synth.layers`)
either change the anatomy (cardiomegaly, widened mediastinum) or add/remove density.

Randomness comes from separate generators (anatomy, texture, one per finding), so adding a
finding never changes anything else in the picture: ``render([])`` and
``render([cardiomegaly])`` with the same seeds differ only around the heart.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from unixlib.data.synth import anatomy as an
from unixlib.data.synth import layers as fl
from unixlib.data.synth.findings import FindingSpec


def lung_markings(rng: np.random.Generator, f: an.Frame, size: int) -> np.ndarray:
    """Branching vessel shadows radiating from each hilum, tapering to the periphery."""
    out = np.zeros_like(f.x)
    breaks = an.smooth_noise(rng, 12, size)  # segments vessels so they do not run unbroken
    for sgn in (-1.0, 1.0):
        hx, hy = 0.2 * sgn, -0.08
        dx, dy = f.x - hx, f.y - hy
        r = np.sqrt(dx * dx + dy * dy)
        theta = np.arctan2(dy, dx)
        streak = np.zeros_like(f.x)
        for bins, wob, weight in ((70, 0.6, 1.0), (160, 1.4, 0.7)):
            table = rng.standard_normal(bins + 1).astype(np.float32)
            table[-1] = table[0]  # wrap around the circle
            idx = (theta / (2 * np.pi) + 0.5 + wob * 0.04 * np.sin(6.0 * r)) * bins % bins
            lo = idx.astype(np.int32)
            t = idx - lo
            v = table[lo] * (1 - t) + table[lo + 1] * t
            streak += weight * np.clip(v - 0.4, 0.0, None)
        out += streak * np.exp(-r / 0.32) * (0.6 + 0.4 * np.tanh(breaks))
    hila = sum(
        np.exp(-(((f.x - 0.2 * s) / 0.07) ** 2 + ((f.y + 0.08) / 0.1) ** 2)) for s in (-1, 1)
    )
    return 1.2 * out + 0.5 * hila


def render_image(
    anat: an.Anatomy,
    findings: Sequence[FindingSpec],
    size: int,
    texture_rng: np.random.Generator,
    finding_rngs: Sequence[np.random.Generator],
) -> np.ndarray:
    """Render one radiograph.

    Args:
        anat: the normal anatomy of this image (pose, sizes, exposure).
        findings: what to draw; each item has ``name``, ``severity``, ``side``, ``region``.
        size: output side length in pixels.
        texture_rng: generator for lung texture and noise (independent of the findings).
        finding_rngs: one generator per finding, same order as ``findings``.

    Returns:
        (size, size) float32 in [0, 1]; 1 = bright (bone/metal), 0 = air.
    """
    anat = fl.adjust_anatomy(anat, findings)
    f = an.make_frame(anat, size)
    w = max(0.015, 2.0 * f.px)  # edge softness: ~one pixel at low resolution

    lungs = an.lung_mask(anat, f, f.a, f.y, w)
    heart = an.heart_mask(anat, f, 2 * w)
    med = an.mediastinum_mask(anat, f, 2 * w)
    body = an.body_thickness(f, w)
    below = an.smooth_edge(f.y - an.dome_y(anat, f, f.a), w) * an.smooth_edge(
        f.side(*anat.lung_w) - f.a, 0.25
    )

    # Vessel shadows are soft: draw them at up to 128 px and interpolate (saves ~half the time).
    small = min(size, 128)
    markings = lung_markings(texture_rng, an.make_frame(anat, small), small)
    if small < size:
        markings = an.upsample(markings, size)
    mottle = an.smooth_noise(texture_rng, 24, size)
    fine = an.smooth_noise(texture_rng, min(56, size // 2), size)  # parenchymal reticulation
    layers = fl.finding_layers(anat, f, findings, finding_rngs, lungs, w, size)

    aerated = lungs * (1.0 - med) * (1.0 - 0.9 * heart) * (1.0 - layers.fluid)
    A = 0.95 * body + 0.3 * below * body  # chest wall and upper abdomen
    # Air in the lungs; less towards the bases, where breasts and diaphragm overlap.
    A = A - 0.62 * aerated * (0.75 + 0.25 * body) * (1.0 - 0.25 * np.clip(f.y + 0.2, 0.0, 1.0))
    A = A - layers.lucency * lungs
    A = (
        A
        + 0.6 * np.maximum(med, heart * (1.0 - below))
        + 0.32 * layers.fluid * (1.0 - below) * body
    )
    A = A + 0.22 * markings * aerated * (1.0 - layers.no_markings)
    A = A + 0.02 * mottle * body + 0.05 * np.abs(fine) * aerated
    A = A + 0.2 * an.ribs(anat, f, layers.rib_breaks) * body * (0.55 + 0.45 * lungs)
    A = A + 0.35 * an.clavicles(anat, f, w) + 0.1 * an.spine(f, w) * body
    A = A - 0.35 * an.trachea(f, w) - 0.45 * an.gastric_bubble(anat, f, w) * body
    A = A + layers.density * body + layers.metal

    img = 1.0 - np.exp(-anat.gain * 1.25 * np.clip(A, 0.0, None))
    img = np.clip(img, 0.0, 1.0) ** anat.gamma
    img = img + anat.noise * texture_rng.standard_normal(img.shape).astype(np.float32)
    return np.clip(img, 0.0, 1.0).astype(np.float32)
