"""The FINDINGS and IMPRESSION sentences of each SynthCXR finding, one writer per finding.

Every writer takes ``(spec, rng)`` and returns ``((findings_text, labels), (impression_text,
labels))``: the labels are those its sentence states (1, or -1 when ``spec.hedged``, for the
finding; opacity-type findings also state ``lung_opacity`` 1). Writers draw from ``rng`` only
through :func:`~unixlib.data.synth.wording.pick` (a device's distance with ``rng.integers``),
in the order written here: moving a draw changes every report after it. The phrasing rules
are :mod:`unixlib.data.synth.phrases`'.
"""

from __future__ import annotations

import numpy as np

from unixlib.data.synth.findings import FindingSpec
from unixlib.data.synth.wording import (
    FIRST_RIB,
    NODULE_SIZE,
    ORDINAL,
    SEV_ADJ,
    SEV_ADV,
    SIZE,
    Said,
    base,
    cap,
    location,
    pick,
)

Sentences = tuple[Said, Said]  # (FINDINGS sentence(s), IMPRESSION sentence), with labels


def _label(spec: FindingSpec) -> float:
    """The label a sentence about ``spec`` asserts: -1 (uncertain) when hedged, else 1."""
    return -1.0 if spec.hedged else 1.0


def _choose(
    spec: FindingSpec, rng: np.random.Generator, positive: list[str], hedged: list[str]
) -> str:
    """The FINDINGS wording: one of ``hedged`` for a hedged finding, else one of ``positive``."""
    return pick(rng, hedged if spec.hedged else positive)


def cardiomegaly(spec: FindingSpec, rng: np.random.Generator) -> Sentences:
    """Cardiomegaly graded by severity."""
    n, k, lab = spec.name, spec.level, _label(spec)
    pos = [
        f"{cap(SEV_ADJ[k])} cardiomegaly.",
        f"The heart is {SEV_ADV[k]} enlarged.",
        f"There is {SEV_ADJ[k]} enlargement of the cardiac silhouette.",
    ]
    hed = [
        "Possible mild cardiomegaly.",
        "The heart may be mildly enlarged.",
        "Cardiomegaly cannot be excluded.",
    ]
    imp = f"{cap(SEV_ADJ[k])} cardiomegaly." if not spec.hedged else "Possible cardiomegaly."
    return (_choose(spec, rng, pos, hed), {n: lab}), (imp, {n: lab})


def mediastinal_widening(spec: FindingSpec, rng: np.random.Generator) -> Sentences:
    """A widened mediastinum (``enlarged_cardiomediastinum``)."""
    n, k, lab = spec.name, spec.level, _label(spec)
    pos = [
        f"The mediastinum is {SEV_ADV[k]} widened.",
        f"{cap(SEV_ADJ[k])} widening of the mediastinum.",
        f"{cap(SEV_ADJ[k])} mediastinal widening.",
    ]
    hed = ["Possible mediastinal widening.", "Mediastinal widening cannot be excluded."]
    imp = "Widened mediastinum." if not spec.hedged else "Possible mediastinal widening."
    return (_choose(spec, rng, pos, hed), {n: lab}), (imp, {n: lab})


def edema(spec: FindingSpec, rng: np.random.Generator) -> Sentences:
    """Pulmonary edema; the FINDINGS sentence also states the perihilar opacities."""
    n, k, lab = spec.name, spec.level, _label(spec)
    both = {n: lab, "lung_opacity": 1.0}  # the FINDINGS sentence names the opacities too
    pos = [
        f"{cap(SEV_ADJ[k])} pulmonary edema with bilateral perihilar opacities.",
        f"There is {SEV_ADJ[k]} pulmonary edema, with hazy bilateral perihilar opacities.",
        f"Bilateral perihilar opacities in a bat-wing distribution, consistent with {SEV_ADJ[k]} pulmonary edema.",
    ]
    hed = [
        "Hazy bilateral perihilar opacities. Mild pulmonary edema cannot be excluded.",
        "Bilateral hazy opacities. Possible mild pulmonary edema.",
    ]
    imp = (
        f"{cap(SEV_ADJ[k])} pulmonary edema."
        if not spec.hedged
        else "Possible mild pulmonary edema."
    )
    return (_choose(spec, rng, pos, hed), both), (imp, {n: lab})


def pleural_effusion(spec: FindingSpec, rng: np.random.Generator) -> Sentences:
    """A small / moderate / large pleural effusion, one-sided or bilateral."""
    n, side, sz, lab = spec.name, spec.side, SIZE[spec.level], _label(spec)
    pl = "effusions" if side == "bilateral" else "effusion"
    pos = [
        f"{cap(sz)} {side} pleural {pl}.",
        f"There is a {sz} {side} pleural {pl}."
        if pl == "effusion"
        else f"There are {sz} bilateral pleural effusions.",
        f"{cap(sz)} layering {side} pleural {pl}.",
    ]
    hed = [
        f"Possible small {side} pleural {pl}.",
        f"A small {side} pleural {pl} cannot be excluded.",
    ]
    imp = (
        f"{cap(sz)} {side} pleural {pl}."
        if not spec.hedged
        else f"Possible small {side} pleural {pl}."
    )
    return (_choose(spec, rng, pos, hed), {n: lab}), (imp, {n: lab})


def pneumothorax(spec: FindingSpec, rng: np.random.Generator) -> Sentences:
    """A small / moderate / large pneumothorax on one side."""
    n, side, sz, lab = spec.name, spec.side, SIZE[spec.level], _label(spec)
    pos = [
        f"{cap(sz)} {side} pneumothorax.",
        f"There is a {sz} {side} apical pneumothorax.",
        f"{cap(sz)} {side} pneumothorax with a visible pleural line.",
    ]
    hed = [
        f"Possible tiny {side} apical pneumothorax.",
        f"A small {side} pneumothorax cannot be excluded.",
    ]
    imp = (
        f"{cap(sz)} {side} pneumothorax."
        if not spec.hedged
        else f"Possible small {side} pneumothorax."
    )
    return (_choose(spec, rng, pos, hed), {n: lab}), (imp, {n: lab})


def airspace_disease(spec: FindingSpec, rng: np.random.Generator) -> Sentences:
    """Consolidation or pneumonia: an opacity in a lobe, read as that diagnosis."""
    dx, loc, lab = spec.name, location(spec), _label(spec)  # dx: the diagnosis
    opac = {dx: lab, "lung_opacity": 1.0}
    pos = [
        f"Dense opacity in the {loc} consistent with {dx}.",
        f"Focal opacity in the {loc}, consistent with {dx}.",
    ]
    if dx == "consolidation":
        pos.append(f"There is a {SEV_ADJ[spec.level]} consolidative opacity in the {loc}.")
    hed = [
        f"Opacity in the {loc}. {cap(dx)} cannot be excluded.",
        f"Patchy opacity in the {loc}. This may represent {dx}.",
        f"Patchy opacity in the {loc}. Findings are concerning for {dx}.",
    ]
    if not spec.hedged:
        imp, imp_lab = f"{cap(loc)} {dx}.", {dx: lab}
    else:  # the hedged impression names the opacity, which is certain
        imp, imp_lab = f"{cap(loc)} opacity. {cap(dx)} cannot be excluded.", opac
    return (_choose(spec, rng, pos, hed), opac), (imp, imp_lab)


def lung_opacity(spec: FindingSpec, rng: np.random.Generator) -> Sentences:
    """An opacity in a lobe, without a diagnosis."""
    n, loc, lab = spec.name, location(spec), _label(spec)
    pos = [
        f"Patchy opacity in the {loc}.",
        f"Ill-defined opacity in the {loc}.",
        f"{cap(SEV_ADJ[spec.level])} hazy opacity in the {loc}.",
    ]
    hed = [f"Possible faint opacity in the {loc}.", f"Questionable opacity in the {loc}."]
    imp = f"{cap(loc)} opacity." if not spec.hedged else f"Possible {loc} opacity."
    return (_choose(spec, rng, pos, hed), {n: lab}), (imp, {n: lab})


def atelectasis(spec: FindingSpec, rng: np.random.Generator) -> Sentences:
    """Basal atelectasis: subsegmental, plate-like or lobar with volume loss (severity)."""
    n, where, lab = spec.name, base(spec), _label(spec)
    kind = (
        "subsegmental atelectasis",
        "plate-like atelectasis",
        "lobar atelectasis with volume loss",
    )[spec.level]
    opac = {n: lab, "lung_opacity": 1.0}
    pos = [
        f"Linear opacity at the {where} consistent with {kind}.",
        f"Opacity at the {where}, consistent with {kind}.",
    ]
    hed = [
        f"Streaky opacity at the {where}. This may represent atelectasis.",
        f"Opacity at the {where}. Atelectasis cannot be excluded.",
    ]
    imp = f"{cap(where)} atelectasis." if not spec.hedged else f"Possible {where} atelectasis."
    return (_choose(spec, rng, pos, hed), opac), (imp, {n: lab})


def lung_lesion(spec: FindingSpec, rng: np.random.Generator) -> Sentences:
    """A nodule (mild, moderate) or mass (severe) in a lobe; its size is drawn first."""
    n, k, lab = spec.name, spec.level, _label(spec)
    loc, size = location(spec), pick(rng, list(NODULE_SIZE[k]))  # drawn before the sentence
    what = "mass" if k == 2 else "nodule"
    both = {n: lab, "lung_opacity": 1.0}
    pos = [
        # Not "nodular opacity" alone: indexers (and our labeler) read that as an opacity.
        f"There is a {size} rounded opacity in the {loc}, representing a pulmonary {what}.",
        f"A {size} rounded opacity in the {loc} is consistent with a pulmonary {what}.",
    ]
    hed = [
        f"Rounded opacity in the {loc}. A pulmonary nodule cannot be excluded.",
        f"Rounded opacity in the {loc}. This may represent a pulmonary nodule.",
    ]
    imp = (
        f"{size} {loc} pulmonary {what}."
        if not spec.hedged
        else f"Possible {loc} pulmonary nodule."
    )
    return (_choose(spec, rng, pos, hed), both), (cap(imp), {n: lab})


def rib_fracture(spec: FindingSpec, rng: np.random.Generator) -> Sentences:
    """``level + 1`` consecutive ribs broken, from the first rib of the region."""
    n, k, side, lab = spec.name, spec.level, spec.side, _label(spec)
    ribs = ORDINAL[FIRST_RIB[spec.region] : FIRST_RIB[spec.region] + k + 1]
    rib_words = ribs[0] if k == 0 else ", ".join(ribs[:-1]) + f" and {ribs[-1]}"
    pl = "rib" if k == 0 else "ribs"
    fr = "fracture" if k == 0 else "fractures"
    pos = [
        f"Acute {fr} of the {side} {rib_words} {pl}.",
        f"There {'is a' if k == 0 else 'are'} minimally displaced {fr} of the {side} {rib_words} {pl}.",
    ]
    hed = [f"Possible nondisplaced fracture of the {side} {ribs[0]} rib."]
    imp = f"{cap(side)} rib {fr}." if not spec.hedged else f"Possible {side} rib fracture."
    return (_choose(spec, rng, pos, hed), {n: lab}), (imp, {n: lab})


def pleural_thickening(spec: FindingSpec, rng: np.random.Generator) -> Sentences:
    """Apical (region ``upper``) or lateral pleural thickening (``pleural_other``)."""
    n, side, lab = spec.name, spec.side, _label(spec)
    where = "apical " if spec.region == "upper" else ""
    pos = [
        f"{cap(SEV_ADJ[spec.level])} {side} {where}pleural thickening.",
        f"There is {side} {where}pleural thickening.",
    ]
    hed = [f"Possible {side} {where}pleural thickening."]
    imp = (
        f"{cap(side)} {where}pleural thickening."
        if not spec.hedged
        else f"Possible {side} pleural thickening."
    )
    return (_choose(spec, rng, pos, hed), {n: lab}), (imp, {n: lab})


def support_device(spec: FindingSpec, rng: np.random.Generator) -> Sentences:
    """A support device's position (never hedged: ``_HEDGE_P`` is 0 for devices)."""
    lab = {"support_devices": 1.0}
    if spec.region == "et_tube":
        cm = int(rng.integers(3, 7))
        s = pick(
            rng,
            [
                f"Endotracheal tube terminates {cm} cm above the carina.",
                f"An endotracheal tube is in place with its tip {cm} cm above the carina.",
            ],
        )
        imp = "Endotracheal tube in standard position."
    elif spec.region == "ng_tube":
        s = pick(
            rng,
            [
                "A nasogastric tube courses below the diaphragm with its tip in the stomach.",
                "Enteric tube tip is in the stomach.",
            ],
        )
        imp = "Nasogastric tube in the stomach."
    elif spec.region == "central_line":
        s = pick(
            rng,
            [
                f"{cap(spec.side)} internal jugular central venous catheter terminates in the mid SVC.",
                f"{cap(spec.side)}-sided central venous catheter with tip in the SVC.",
            ],
        )
        imp = "Central venous catheter in standard position."
    else:
        s = pick(
            rng,
            [
                f"{cap(spec.side)}-sided pacemaker with leads terminating in the right atrium and right ventricle.",
                f"Dual-lead {spec.side} chest wall pacemaker with leads in standard position.",
            ],
        )
        imp = "Pacemaker leads in standard position."
    return (s, lab), (imp, lab)
