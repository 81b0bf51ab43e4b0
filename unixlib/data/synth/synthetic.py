"""SynthCXR: the built-in synthetic chest X-ray dataset (procedural images + raw reports + labels).

``SynthCXR(seed, size).sample(i)`` gives image ``i``: a frontal (PA or AP) radiograph drawn
procedurally at ``size`` x ``size`` (:mod:`unixlib.data.synth.render`), the findings drawn on
it, a raw MIMIC-style report (:mod:`unixlib.data.synth.reports`) and the 14 CheXpert labels
stated by that report. Everything is deterministic in ``(seed, index, size)`` and uses only
local generators seeded by ``np.random.default_rng((seed, index, stream))``; the streams are
0 findings + view, 1 anatomy, 2 texture + noise, 3 report, and one per finding identity, so
``render`` of a chosen spec shows the same patient as ``sample(index)``.

Finding distribution (per image): ~34% normal (some with support devices only), otherwise
one or two correlated scenarios: cardiac (cardiomegaly, edema, effusions, pacemaker),
infection (pneumonia or consolidation, a small effusion on the same side, atelectasis),
ICU (tubes and lines, basal atelectasis, effusion, edema, sometimes pneumothorax) and
thoracic (a nodule/mass, rib fractures with pneumothorax, pleural thickening, ...).
Pneumonia is drawn as an opacity (it implies ``lung_opacity``, not ``consolidation``); any
opacity-type finding makes ``lung_opacity`` positive; cardiomegaly does not by itself make
``enlarged_cardiomediastinum`` positive. Findings and severities: :mod:`unixlib.data.synth.findings`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from unixlib.data.schema import LABELS
from unixlib.data.synth.anatomy import sample_anatomy
from unixlib.data.synth.findings import REGIONS, SEVERITIES, SIDES, FindingSpec
from unixlib.data.synth.render import render_image
from unixlib.data.synth.reports import write_report
from unixlib.data.synth.wording import pick

__all__ = ["FindingSpec", "SynthCXR", "SynthSample", "gallery_rows", "sample_findings"]

NORMAL_FRACTION = 0.34
_STREAM_FINDINGS, _STREAM_ANATOMY, _STREAM_TEXTURE, _STREAM_REPORT, _STREAM_FINDING = (
    0,
    1,
    2,
    3,
    100,
)
_HEDGE_P = {"pneumonia": 0.45, "atelectasis": 0.2, "lung_opacity": 0.2, "support_devices": 0.0}


@dataclass(frozen=True, eq=False)
class SynthSample:
    """One synthetic study."""

    index: int
    image: np.ndarray  # (size, size) float32 in [0, 1]; 1 = bright (bone), 0 = air
    findings: tuple[FindingSpec, ...]
    labels: dict[str, float]  # over LABELS: 1 / 0 / -1 / NaN (see synth.reports)
    report_raw: str
    view: str  # "PA" or "AP"
    report_truth: str = ""  # the noise-free report a cleaner's output must agree with


def _severity(rng: np.random.Generator) -> str:
    return SEVERITIES[int(rng.choice(3, p=[0.45, 0.35, 0.2]))]


def _scenario(kind: str, rng: np.random.Generator) -> list[tuple[str, str, str]]:
    """(name, side, region) triples of one clinical scenario; severity/hedging come later."""
    p = rng.random
    lr = pick(rng, ("left", "right"))
    out: list[tuple[str, str, str]] = []
    if kind == "cardiac":
        if p() < 0.85:
            out.append(("cardiomegaly", "none", ""))
        if p() < 0.55:
            out.append(("edema", "bilateral", ""))
        if p() < 0.6:
            out.append(
                ("pleural_effusion", pick(rng, ("bilateral", "right", "bilateral", "left")), "")
            )
        if p() < 0.25:
            out.append(("support_devices", "left", "pacemaker"))
        if p() < 0.1 or not out:
            out.append(("enlarged_cardiomediastinum", "none", ""))
    elif kind == "infection":
        zone = pick(rng, ("lower", "lower", "middle", "upper"))
        side = "bilateral" if p() < 0.15 else lr
        out.append(("pneumonia" if p() < 0.5 else "consolidation", side, zone))
        if p() < 0.25:
            out.append(("pleural_effusion", lr if side != "bilateral" else side, ""))
        if p() < 0.2:
            out.append(("atelectasis", lr, "lower"))
    elif kind == "icu":
        if p() < 0.8:
            out.append(("support_devices", "none", "et_tube"))
        if p() < 0.6:
            out.append(("support_devices", "none", "ng_tube"))
        if p() < 0.7:
            out.append(("support_devices", lr, "central_line"))
        out.append(("atelectasis", pick(rng, ("left", "bilateral", "right")), "lower"))
        if p() < 0.4:
            out.append(("pleural_effusion", pick(rng, ("bilateral", "left", "right")), ""))
        if p() < 0.3:
            out.append(("edema", "bilateral", ""))
        if p() < 0.1:
            out.append(("pneumothorax", lr, ""))
    else:  # thoracic: one focal finding
        what = pick(
            rng,
            (
                "lung_lesion",
                "fracture",
                "pleural_other",
                "pneumothorax",
                "lung_opacity",
                "atelectasis",
                "enlarged_cardiomediastinum",
            ),
        )
        sides = [s for s in SIDES[what] if s != "bilateral" or p() < 0.3]
        regions = [r for r in REGIONS[what] if r]
        out.append((what, pick(rng, sides), pick(rng, regions) if regions else ""))
        if what == "fracture" and p() < 0.3:
            out.append(("pneumothorax", out[0][1], ""))
    return out


def sample_findings(rng: np.random.Generator) -> tuple[tuple[FindingSpec, ...], str]:
    """Draw (findings, view) for one study from the distribution in the module docstring."""
    triples: list[tuple[str, str, str]] = []
    if rng.random() < NORMAL_FRACTION:
        if rng.random() < 0.12:
            triples.append(("support_devices", "right", "central_line"))
    else:
        kinds = ("cardiac", "infection", "icu", "thoracic")
        n = 2 if rng.random() < 0.25 else 1
        for kind in rng.choice(kinds, size=n, replace=False, p=[0.3, 0.25, 0.15, 0.3]):
            triples += _scenario(str(kind), rng)
    specs: list[FindingSpec] = []
    seen: set[tuple[str, str]] = set()
    for name, side, region in triples:
        key = (name, region if name == "support_devices" else "")
        if key in seen:  # one instance per observation (per device kind)
            continue
        seen.add(key)
        hedged = rng.random() < _HEDGE_P.get(name, 0.12)
        sev = "mild" if hedged else _severity(rng)
        specs.append(FindingSpec(name, sev, side, hedged=hedged, region=region))
    devices = any(s.name == "support_devices" for s in specs)
    view = "AP" if rng.random() < (0.85 if devices else 0.25) else "PA"
    return tuple(specs), view


class SynthCXR:
    """Deterministic procedural chest X-ray dataset.

    Args:
        seed: dataset seed; (seed, index, size) fixes every sample bit for bit.
        size: image side in pixels (32..512).
    """

    def __init__(self, seed: int = 0, size: int = 64) -> None:
        if not 32 <= size <= 512:
            raise ValueError(f"SynthCXR size={size}: must be within 32..512 pixels")
        if seed < 0:
            raise ValueError(f"SynthCXR seed={seed}: must be >= 0 (numpy seeds are non-negative)")
        self.seed, self.size = int(seed), int(size)

    def _rng(self, index: int, *stream: int) -> np.random.Generator:
        if index < 0:
            raise ValueError(f"SynthCXR index={index}: must be >= 0")
        return np.random.default_rng((self.seed, index, *stream))

    def sample(self, index: int) -> SynthSample:
        """Study ``index``: image, findings, labels, raw report and view."""
        findings, view = sample_findings(self._rng(index, _STREAM_FINDINGS))
        report, labels, truth = write_report(findings, self._rng(index, _STREAM_REPORT), view)
        image = self.render(findings, index, view)
        return SynthSample(index, image, findings, labels, report, view, truth)

    def text(self, index: int) -> tuple[str, dict[str, float], str]:
        """Study ``index``'s ``(report_raw, labels, report_truth)`` without drawing the image
        (what text tests and the cleaning checks need, thousands at a time)."""
        findings, view = sample_findings(self._rng(index, _STREAM_FINDINGS))
        return write_report(findings, self._rng(index, _STREAM_REPORT), view)

    def render(
        self, findings: Sequence[FindingSpec], index: int = 0, view: str = "PA"
    ) -> np.ndarray:
        """(size, size) float32 image of patient ``index`` with exactly ``findings`` drawn."""
        if view not in ("PA", "AP"):
            raise ValueError(f"SynthCXR view={view!r}: must be 'PA' or 'AP'")
        anat = sample_anatomy(self._rng(index, _STREAM_ANATOMY), view)
        finding_rngs = [self._rng(index, _STREAM_FINDING, *_identity(s)) for s in findings]
        return render_image(
            anat, findings, self.size, self._rng(index, _STREAM_TEXTURE), finding_rngs
        )

    def report_for(self, findings: Sequence[FindingSpec], index: int = 0, view: str = "PA") -> str:
        """The raw report written for ``findings`` (same randomness as ``sample(index)``)."""
        return write_report(findings, self._rng(index, _STREAM_REPORT), view)[0]

    def labels_for(
        self, findings: Sequence[FindingSpec], index: int = 0, view: str = "PA"
    ) -> dict[str, float]:
        """The labels stated by ``report_for(findings, index, view)``."""
        return write_report(findings, self._rng(index, _STREAM_REPORT), view)[1]

    def generate(self, n: int, start: int = 0) -> Iterator[SynthSample]:
        """Samples ``start .. start + n - 1``."""
        for i in range(start, start + n):
            yield self.sample(i)


def _identity(spec: FindingSpec) -> tuple[int, int, int]:
    """Stream key of a finding: its observation, side and region (not its severity), so a
    mild and a severe instance of the same finding lie in the same place."""
    return (
        LABELS.index(spec.name),
        SIDES[spec.name].index(spec.side),
        REGIONS[spec.name].index(spec.region),
    )


def _variants(name: str, n: int) -> list[FindingSpec]:
    """n specs of one observation cycling through severities, sides and regions."""
    if name == "support_devices":
        kinds = [
            ("none", "et_tube"),
            ("left", "pacemaker"),
            ("right", "central_line"),
            ("none", "ng_tube"),
        ]
        return [
            FindingSpec(name, "moderate", kinds[i % 4][0], region=kinds[i % 4][1]) for i in range(n)
        ]
    sides, regions = SIDES[name], REGIONS[name]
    return [
        FindingSpec(
            name, SEVERITIES[(i + 1) % 3], sides[i % len(sides)], region=regions[i % len(regions)]
        )
        for i in range(n)
    ]


def gallery_rows(gen: SynthCXR, per_row: int = 4) -> dict[str, list[np.ndarray]]:
    """{"normal": [...], finding name: [...]} images for :func:`unixlib.viz.synth_gallery`:
    column j shows patient j, alone with one finding of varying severity/side/region."""
    rows = {"normal": [gen.render([], j) for j in range(per_row)]}
    for name in LABELS:
        if name != "no_finding":
            rows[name] = [gen.render([s], j) for j, s in enumerate(_variants(name, per_row))]
    return rows
