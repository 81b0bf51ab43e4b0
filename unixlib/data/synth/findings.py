"""SynthCXR findings: the vocabulary of one finding instance (how each one is drawn:
:mod:`unixlib.data.synth.layers`; how it is said: :mod:`unixlib.data.synth.phrases`).

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

from dataclasses import dataclass

from unixlib.data.schema import LABELS

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
