"""SynthCXR report wording shared by the phrase bank and the report writer: severity and size
words, lobe/zone names, and the one way a phrase is chosen at random (:func:`pick`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from unixlib.data.synth.findings import FindingSpec

Said = tuple[str, dict[str, float]]  # (sentence(s), {label: 1 / -1 / 0})

# Indexed by FindingSpec.level (0 mild, 1 moderate, 2 severe).
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


def cap(s: str) -> str:
    """``s`` with its first letter upper-cased (the rest unchanged, unlike ``str.capitalize``)."""
    return s[0].upper() + s[1:]


def pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    """One of ``options``, uniformly (the SynthCXR modules' one way of choosing a phrase).

    Draws exactly one ``rng.integers``: the number and order of draws fix every report.
    """
    return options[int(rng.integers(len(options)))]
