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

:func:`describe` hands each finding to its writer in :mod:`unixlib.data.synth.sentences`
(``_SENTENCES``); the report writer adds the explicit negatives of :data:`NEGATIVES`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from unixlib.data.synth import sentences
from unixlib.data.synth.findings import FindingSpec
from unixlib.data.synth.sentences import Sentences
from unixlib.data.synth.wording import Said

# Finding name -> the writer of its sentences (same randomness for the same spec and rng).
_SENTENCES: dict[str, Callable[[FindingSpec, np.random.Generator], Sentences]] = {
    "cardiomegaly": sentences.cardiomegaly,
    "enlarged_cardiomediastinum": sentences.mediastinal_widening,
    "edema": sentences.edema,
    "pleural_effusion": sentences.pleural_effusion,
    "pneumothorax": sentences.pneumothorax,
    "consolidation": sentences.airspace_disease,
    "pneumonia": sentences.airspace_disease,
    "lung_opacity": sentences.lung_opacity,
    "atelectasis": sentences.atelectasis,
    "lung_lesion": sentences.lung_lesion,
    "fracture": sentences.rib_fracture,
    "pleural_other": sentences.pleural_thickening,
    "support_devices": sentences.support_device,
}


def describe(spec: FindingSpec, rng: np.random.Generator) -> Sentences:
    """(FINDINGS sentence(s), IMPRESSION sentence) for one finding, with their labels.

    A hedged finding (``spec.hedged``) is stated as possible and labelled -1, else 1.
    """
    return _SENTENCES.get(spec.name, sentences.support_device)(spec, rng)


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
