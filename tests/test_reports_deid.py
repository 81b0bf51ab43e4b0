"""Fragments the rule cleaner must not leave behind (unixlib.data.text.reports_deid and the sentence
rules of unixlib.data.text.reports): notification pieces, words orphaned by a de-identification or
comparison cut, list headings, stray brackets and punctuation."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from unixlib.data.synth.synthetic import SynthCXR
from unixlib.data.text.reports import clean_section, rule_clean, split_report, split_sentences
from unixlib.data.text.reports_deid import (
    is_broken,
    is_heading,
    names_only_anatomy,
    remove_deid,
    tidy,
)

# What a leftover fragment looks like: a notification piece, a clock time, an empty bracket,
# punctuation with its word cut away, a sentence that starts with a copula or ends in a
# preposition / copula.
LEFTOVER = re.compile(
    r"time of discovery|\b[ap]\.m\.|\bat hours\b|\(\s*\)|\[\s*\]|[,;:]\.|^[,.;:]|\s[,.;:]"
    r"|^(?:is|are|was|were)\b|\b(?:of|on|at|in|from|the|a|is|are)\.$",
    re.IGNORECASE,
)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        # notification sentences go whole, also when "p.m." sits mid-sentence
        ("Findings were discussed with ___ at ___ p.m. on ___, time of discovery.", ""),
        (
            "Mild cardiomegaly. Findings were discussed with ___ at ___ p.m. on ___, "
            "time of discovery. No effusion.",
            "Mild cardiomegaly. No effusion.",
        ),
        ("XXXX in the XXXX department at XXXX a.m.", ""),
        ("This radiograph was XXXX available for my interpretation at XXXX hours XXXX/XXXX.", ""),
        ("A message was left with doctor XXXX' service at 142 pm XXXX/11.", ""),
        ("If one would like to discuss this case further, please XXXX.", ""),
        # a sentence that ends at "p.m." still ends there
        ("Seen at 3 p.m. The heart is large.", "The heart is large."),
        # comparison-only statements, whatever adjective sits before "change"
        ("In comparison with the study of ___, there is little overall change.", ""),
        ("As compared to the previous radiograph, there is no relevant interval change.", ""),
        ("Improved from prior.", ""),
        ("Unchanged.", ""),
        # "stable" cut from normal anatomy leaves nothing said; from a finding, the finding
        ("Stable cardiomediastinal silhouette.", ""),
        ("The cardiomediastinal silhouette is stable from prior exam.", ""),
        ("This is unchanged as compared to the prior study.", ""),
        ("Stable tortuosity of the thoracic aorta.", "Tortuosity of the thoracic aorta."),
        (
            "Cardiomegaly is noted and is stable compared to prior examination from XXXX.",
            "Cardiomegaly is noted.",
        ),
        (
            "There is a small calcified granuloma that is unchanged from prior examinations.",
            "There is a small calcified granuloma.",
        ),
        ("A left pleural effusion remains.", "A left pleural effusion is present."),
        (
            "Multifocal areas of scarring are unchanged in appearance.",
            "Multifocal areas of scarring are present.",
        ),
        # de-identification cuts: the subject or the complement gone -> dropped
        ("XXXX are normal.", ""),
        ("Lung volumes are XXXX.", ""),
        ("XXXX lung volumes.", ""),
        ("XXXX XXXX and lateral views of the chest were obtained on XXXX.", ""),
        # ... while a named finding keeps its sentence, without the orphaned words
        (
            "Small right juxtahilar opacity may represent infiltrate in the setting of XXXX.",
            "Small right juxtahilar opacity may represent infiltrate.",
        ),
        (
            "Postsurgical changes with mediastinal clips and XXXX XXXX.",
            "Postsurgical changes with mediastinal clips.",
        ),
        (
            "Age-indeterminate XXXX deformity of T6, XXXX since study dated XXXX, XXXX.",
            "Age-indeterminate deformity of T6.",
        ),
        ("Left PICC line and NG tube remain in XXXX.", "Left PICC line and NG tube are in place."),
        # list headings of multi-part reports, sign-offs and pleasantries
        ("Chest.", ""),
        ("Right foot 1.", ""),
        ("4 images.", ""),
        ("Thanks.", ""),
        ("Normal chest.", "Normal chest."),
        ("Cardiomegaly.", "Cardiomegaly."),
        # escaped or unbalanced brackets from the export; real parentheses stay
        ("[&lt;Heart size is within normal limits.", "Heart size is within normal limits."),
        (
            "[Pulmonary vascularity is within normal limits>].",
            "Pulmonary vascularity is within normal limits.",
        ),
        ("Nodule (8 mm) in the right upper lobe.", "Nodule (8 mm) in the right upper lobe."),
        ("Opacity (XXXX) in the left base.", "Opacity in the left base."),
        (
            "Calcified nodule compatible with granuloma / histoplasmoma.",
            "Calcified nodule compatible with granuloma / histoplasmoma.",
        ),
    ],
)
def test_no_fragment_is_left(raw: str, clean: str) -> None:
    assert clean_section(raw) == clean


def test_helpers_hand_checked() -> None:
    assert is_broken("Lung volumes are.") and is_broken("The appears intact.")
    assert is_broken("Of the spine.") and is_broken("Cardiomegaly.")  # one word < min_words=2
    assert not is_broken("Cardiomegaly.", min_words=1) and not is_broken("Lungs are clear.")
    assert is_heading("Chest: 1.") and is_heading("Left knee.") and not is_heading("Normal chest.")
    assert names_only_anatomy("Heart size and mediastinal contours.")
    assert not names_only_anatomy("Heart size is normal.")
    assert remove_deid("No acute XXXX.") == "No acute."  # "acute" is no pathology, not broken
    assert remove_deid("The XXXX appears intact.") == ""
    assert remove_deid("Clear lungs.") == "Clear lungs."  # nothing to remove: unchanged
    assert tidy("effusion ,, , seen ( ) on T6,") == "Effusion, seen on T6."
    assert tidy(" , ; ") == ""


def _leftovers(raws: list[str]) -> list[str]:
    """Cleaned sentences that look like fragments and were not written so in the source (a
    real report may itself contain an odd sentence; only what cleaning produced counts)."""
    found = []
    for raw in raws:
        result = rule_clean(raw)
        assert result.ok, (raw[:80], result.reason)
        findings, impression = split_report(result.text)
        for s in split_sentences(findings) + split_sentences(impression):
            verbatim = s.rstrip(".").lower() in raw.lower()
            if (LEFTOVER.search(s) or is_heading(s)) and not verbatim:
                found.append(s)
    return found


def test_synthcxr_reports_clean_without_fragments() -> None:
    gen = SynthCXR(seed=0, size=32)
    raws = [gen.sample(i).report_raw for i in range(200)]
    assert sum("time of discovery" in r for r in raws) >= 3  # the bug's sentence is sampled
    assert _leftovers(raws) == []


@pytest.mark.shared
def test_real_iu_reports_clean_without_fragments(shared_data) -> None:
    df = pd.read_csv(shared_data / "iu_reports" / "iu_reports_trainval.csv").fillna("")
    df = df.iloc[:600]
    raws = [
        f"FINDINGS: {f}\nIMPRESSION: {i}"
        for f, i in zip(df.findings, df.impression, strict=True)
        if f.strip() or i.strip()
    ]
    assert len(raws) >= 590
    assert _leftovers(raws) == []
