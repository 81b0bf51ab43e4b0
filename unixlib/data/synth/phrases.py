"""SynthCXR phrase bank: the sentences a report may say about each finding, with the labels
each sentence asserts.

Every template is paired with the labels it states, so the report writer derives the
ground-truth labels from exactly the text it wrote. Phrasing follows CheXpert's labeler:
positives are plain declaratives (no "may", "possible", "or", "suspicious", "stable heart",
"vascular congestion", "blunting", "obscured" next to a positive finding); hedges use the
standard uncertainty cues ("possible", "cannot be excluded", "may represent",
"concerning for"); negatives are "no X". Every sentence about an opacity-type finding
(consolidation, pneumonia, atelectasis, edema, lung lesion) also states the opacity, so
``lung_opacity`` is positive whenever one of them is present (CheXpert convention).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from unixlib.data.synth.findings import FindingSpec

Said = tuple[str, dict[str, float]]  # (sentence(s), {label: 1 / -1 / 0})

SEV_ADJ = ("mild", "moderate", "severe")
SEV_ADV = ("mildly", "moderately", "markedly")
SIZE = ("small", "moderate", "large")
NODULE_SIZE = (("6 mm", "8 mm"), ("1.5 cm", "2 cm"), ("4 cm", "5 cm"))
ORDINAL = ("third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth")
FIRST_RIB = {"upper": 0, "middle": 2, "lower": 4}  # index into ORDINAL


def location(spec: FindingSpec) -> str:
    """Lobe/zone words: 'right lower lobe', 'lingula', 'bilateral lower lobes', ..."""
    if spec.side == "bilateral":
        return {"upper": "bilateral upper lobes", "middle": "bilateral mid lungs"}.get(
            spec.region, "bilateral lower lobes"
        )
    if spec.region == "middle":
        return "right middle lobe" if spec.side == "right" else "lingula"
    return f"{spec.side} {spec.region} lobe"


def base(spec: FindingSpec) -> str:
    """Basal location words for atelectasis."""
    if spec.region == "middle":
        return "right middle lobe" if spec.side == "right" else "lingula"
    return "lung bases" if spec.side == "bilateral" else f"{spec.side} lung base"


def _cap(s: str) -> str:
    return s[0].upper() + s[1:]


def pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    """One of ``options``, uniformly (the SynthCXR modules' one way of choosing a phrase)."""
    return options[int(rng.integers(len(options)))]


def describe(spec: FindingSpec, rng: np.random.Generator) -> tuple[Said, Said]:
    """(FINDINGS sentence(s), IMPRESSION sentence) for one finding, with their labels."""
    n, k, h = spec.name, spec.level, spec.hedged
    lab = -1.0 if h else 1.0
    side = spec.side
    if n == "cardiomegaly":
        pos = [
            f"{_cap(SEV_ADJ[k])} cardiomegaly.",
            f"The heart is {SEV_ADV[k]} enlarged.",
            f"There is {SEV_ADJ[k]} enlargement of the cardiac silhouette.",
        ]
        hed = [
            "Possible mild cardiomegaly.",
            "The heart may be mildly enlarged.",
            "Cardiomegaly cannot be excluded.",
        ]
        imp = f"{_cap(SEV_ADJ[k])} cardiomegaly." if not h else "Possible cardiomegaly."
        return (pick(rng, hed if h else pos), {n: lab}), (imp, {n: lab})
    if n == "enlarged_cardiomediastinum":
        pos = [
            f"The mediastinum is {SEV_ADV[k]} widened.",
            f"{_cap(SEV_ADJ[k])} widening of the mediastinum.",
            f"{_cap(SEV_ADJ[k])} mediastinal widening.",
        ]
        hed = ["Possible mediastinal widening.", "Mediastinal widening cannot be excluded."]
        imp = "Widened mediastinum." if not h else "Possible mediastinal widening."
        return (pick(rng, hed if h else pos), {n: lab}), (imp, {n: lab})
    if n == "edema":
        both = {n: lab, "lung_opacity": 1.0}
        pos = [
            f"{_cap(SEV_ADJ[k])} pulmonary edema with bilateral perihilar opacities.",
            f"There is {SEV_ADJ[k]} pulmonary edema, with hazy bilateral perihilar opacities.",
            f"Bilateral perihilar opacities in a bat-wing distribution, consistent with {SEV_ADJ[k]} pulmonary edema.",
        ]
        hed = [
            "Hazy bilateral perihilar opacities. Mild pulmonary edema cannot be excluded.",
            "Bilateral hazy opacities. Possible mild pulmonary edema.",
        ]
        imp = f"{_cap(SEV_ADJ[k])} pulmonary edema." if not h else "Possible mild pulmonary edema."
        return (pick(rng, hed if h else pos), both), (imp, {n: lab})
    if n == "pleural_effusion":
        pl = "effusions" if side == "bilateral" else "effusion"
        sz = SIZE[k]
        pos = [
            f"{_cap(sz)} {side} pleural {pl}.",
            f"There is a {sz} {side} pleural {pl}."
            if pl == "effusion"
            else f"There are {sz} bilateral pleural effusions.",
            f"{_cap(sz)} layering {side} pleural {pl}.",
        ]
        hed = [
            f"Possible small {side} pleural {pl}.",
            f"A small {side} pleural {pl} cannot be excluded.",
        ]
        imp = (
            f"{_cap(sz)} {side} pleural {pl}." if not h else f"Possible small {side} pleural {pl}."
        )
        return (pick(rng, hed if h else pos), {n: lab}), (imp, {n: lab})
    if n == "pneumothorax":
        sz = SIZE[k]
        pos = [
            f"{_cap(sz)} {side} pneumothorax.",
            f"There is a {sz} {side} apical pneumothorax.",
            f"{_cap(sz)} {side} pneumothorax with a visible pleural line.",
        ]
        hed = [
            f"Possible tiny {side} apical pneumothorax.",
            f"A small {side} pneumothorax cannot be excluded.",
        ]
        imp = (
            f"{_cap(sz)} {side} pneumothorax." if not h else f"Possible small {side} pneumothorax."
        )
        return (pick(rng, hed if h else pos), {n: lab}), (imp, {n: lab})
    if n in ("consolidation", "pneumonia"):
        loc, dx = location(spec), n
        opac = {n: lab, "lung_opacity": 1.0}
        pos = [
            f"Dense opacity in the {loc} consistent with {dx}.",
            f"Focal opacity in the {loc}, consistent with {dx}.",
        ]
        if n == "consolidation":
            pos.append(f"There is a {SEV_ADJ[k]} consolidative opacity in the {loc}.")
        hed = [
            f"Opacity in the {loc}. {_cap(dx)} cannot be excluded.",
            f"Patchy opacity in the {loc}. This may represent {dx}.",
            f"Patchy opacity in the {loc}. Findings are concerning for {dx}.",
        ]
        imp = (
            f"{_cap(loc)} {dx}."
            if not h
            else f"{_cap(loc)} opacity. {_cap(dx)} cannot be excluded."
        )
        imp_lab = {n: lab} if not h else opac
        return (pick(rng, hed if h else pos), opac), (imp, imp_lab)
    if n == "lung_opacity":
        loc = location(spec)
        pos = [
            f"Patchy opacity in the {loc}.",
            f"Ill-defined opacity in the {loc}.",
            f"{_cap(SEV_ADJ[k])} hazy opacity in the {loc}.",
        ]
        hed = [f"Possible faint opacity in the {loc}.", f"Questionable opacity in the {loc}."]
        imp = f"{_cap(loc)} opacity." if not h else f"Possible {loc} opacity."
        return (pick(rng, hed if h else pos), {n: lab}), (imp, {n: lab})
    if n == "atelectasis":
        where = base(spec)
        kind = (
            "subsegmental atelectasis",
            "plate-like atelectasis",
            "lobar atelectasis with volume loss",
        )[k]
        opac = {n: lab, "lung_opacity": 1.0}
        pos = [
            f"Linear opacity at the {where} consistent with {kind}.",
            f"Opacity at the {where}, consistent with {kind}.",
        ]
        hed = [
            f"Streaky opacity at the {where}. This may represent atelectasis.",
            f"Opacity at the {where}. Atelectasis cannot be excluded.",
        ]
        imp = f"{_cap(where)} atelectasis." if not h else f"Possible {where} atelectasis."
        return (pick(rng, hed if h else pos), opac), (imp, {n: lab})
    if n == "lung_lesion":
        loc, size = location(spec), pick(rng, list(NODULE_SIZE[k]))
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
        imp = f"{size} {loc} pulmonary {what}." if not h else f"Possible {loc} pulmonary nodule."
        return (pick(rng, hed if h else pos), both), (_cap(imp), {n: lab})
    if n == "fracture":
        ribs = ORDINAL[FIRST_RIB[spec.region] : FIRST_RIB[spec.region] + k + 1]
        rib_words = ribs[0] if k == 0 else ", ".join(ribs[:-1]) + f" and {ribs[-1]}"
        pl = "rib" if k == 0 else "ribs"
        fr = "fracture" if k == 0 else "fractures"
        pos = [
            f"Acute {fr} of the {side} {rib_words} {pl}.",
            f"There {'is a' if k == 0 else 'are'} minimally displaced {fr} of the {side} {rib_words} {pl}.",
        ]
        hed = [f"Possible nondisplaced fracture of the {side} {ribs[0]} rib."]
        imp = f"{_cap(side)} rib {fr}." if not h else f"Possible {side} rib fracture."
        return (pick(rng, hed if h else pos), {n: lab}), (imp, {n: lab})
    if n == "pleural_other":
        where = "apical " if spec.region == "upper" else ""
        pos = [
            f"{_cap(SEV_ADJ[k])} {side} {where}pleural thickening.",
            f"There is {side} {where}pleural thickening.",
        ]
        hed = [f"Possible {side} {where}pleural thickening."]
        imp = (
            f"{_cap(side)} {where}pleural thickening."
            if not h
            else f"Possible {side} pleural thickening."
        )
        return (pick(rng, hed if h else pos), {n: lab}), (imp, {n: lab})
    return _device(spec, rng)


def _device(spec: FindingSpec, rng: np.random.Generator) -> tuple[Said, Said]:
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
                f"{_cap(spec.side)} internal jugular central venous catheter terminates in the mid SVC.",
                f"{_cap(spec.side)}-sided central venous catheter with tip in the SVC.",
            ],
        )
        imp = "Central venous catheter in standard position."
    else:
        s = pick(
            rng,
            [
                f"{_cap(spec.side)}-sided pacemaker with leads terminating in the right atrium and right ventricle.",
                f"Dual-lead {spec.side} chest wall pacemaker with leads in standard position.",
            ],
        )
        imp = "Pacemaker leads in standard position."
    return (s, lab), (imp, lab)


# Explicit negatives: (sentence, labels it negates).
NEGATIVES: list[Said] = [
    ("No pneumothorax.", {"pneumothorax": 0.0}),
    ("There is no pneumothorax.", {"pneumothorax": 0.0}),
    ("No pleural effusion.", {"pleural_effusion": 0.0}),
    ("No pleural effusion or pneumothorax.", {"pleural_effusion": 0.0, "pneumothorax": 0.0}),
    (
        "There is no pleural effusion or pneumothorax.",
        {"pleural_effusion": 0.0, "pneumothorax": 0.0},
    ),
    ("No focal consolidation.", {"consolidation": 0.0}),
    ("There is no focal consolidation.", {"consolidation": 0.0}),
    ("No pulmonary edema.", {"edema": 0.0}),
    ("There is no evidence of pulmonary edema.", {"edema": 0.0}),
    ("Heart size is normal.", {"cardiomegaly": 0.0}),
    ("No cardiomegaly.", {"cardiomegaly": 0.0}),
    (
        "Normal heart size and mediastinal contours.",
        {"cardiomegaly": 0.0, "enlarged_cardiomediastinum": 0.0},
    ),
    ("The mediastinal contours are normal.", {"enlarged_cardiomediastinum": 0.0}),
    ("No evidence of pneumonia.", {"pneumonia": 0.0}),
    ("No focal opacity.", {"lung_opacity": 0.0}),
    ("No pulmonary nodules or masses.", {"lung_lesion": 0.0}),
    ("No atelectasis.", {"atelectasis": 0.0}),
    ("No displaced rib fracture.", {"fracture": 0.0}),
]
