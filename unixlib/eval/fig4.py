"""The paper's Fig. 4 prompts: normal; severity; laterality; multi-finding reports.

On SynthCXR the prompt text is what the generator itself writes for the chosen findings (then
rule-cleaned), so prompts are in the training distribution and the generator's own rendering
of the same findings serves as a reference image. On real data the fixed texts below are used.
"""

from __future__ import annotations

import numpy as np

from unixlib.data.reports import rule_clean
from unixlib.data.synthetic import FindingSpec, SynthCXR

# (title, findings) of each Fig. 4 case, in the paper's order.
CASES: tuple[tuple[str, tuple[FindingSpec, ...]], ...] = (
    ("normal", ()),
    ("mild cardiomegaly", (FindingSpec("cardiomegaly", "mild", "none"),)),
    ("severe cardiomegaly", (FindingSpec("cardiomegaly", "severe", "none"),)),
    ("left effusion", (FindingSpec("pleural_effusion", "moderate", "left"),)),
    ("right effusion", (FindingSpec("pleural_effusion", "moderate", "right"),)),
    ("bilateral effusions", (FindingSpec("pleural_effusion", "moderate", "bilateral"),)),
    ("cardiomegaly + edema + effusions", (
        FindingSpec("cardiomegaly", "moderate", "none"),
        FindingSpec("edema", "moderate", "bilateral"),
        FindingSpec("pleural_effusion", "small", "bilateral"),
    )),
    ("pneumothorax + ET tube", (
        FindingSpec("pneumothorax", "moderate", "right"),
        FindingSpec("support_devices", "moderate", "none", region="et_tube"),
    )),
)  # fmt: skip

# Texts for real-data profiles (MIMIC-CXR style, FINDINGS/IMPRESSION as the cleaned reports).
REAL_TEXTS: dict[str, str] = {
    "normal": "FINDINGS: Heart size is normal. Lungs are clear. No pleural effusion or "
    "pneumothorax. IMPRESSION: No acute cardiopulmonary process.",
    "mild cardiomegaly": "FINDINGS: The heart is mildly enlarged. Lungs are clear. "
    "IMPRESSION: Mild cardiomegaly.",
    "severe cardiomegaly": "FINDINGS: The heart is severely enlarged. Lungs are clear. "
    "IMPRESSION: Severe cardiomegaly.",
    "left effusion": "FINDINGS: Moderate left pleural effusion. IMPRESSION: Left pleural effusion.",
    "right effusion": "FINDINGS: Moderate right pleural effusion. IMPRESSION: Right pleural "
    "effusion.",
    "bilateral effusions": "FINDINGS: Moderate bilateral pleural effusions. IMPRESSION: "
    "Bilateral pleural effusions.",
    "cardiomegaly + edema + effusions": "FINDINGS: Moderate cardiomegaly with pulmonary edema "
    "and small bilateral pleural effusions. IMPRESSION: Congestive heart failure.",
    "pneumothorax + ET tube": "FINDINGS: Endotracheal tube in standard position. Moderate right "
    "pneumothorax. IMPRESSION: Right pneumothorax.",
}


def synthetic_prompts(
    seed: int, size: int, index: int = 0
) -> tuple[dict[str, str], dict[str, np.ndarray]]:
    """(title -> cleaned prompt text, title -> SynthCXR's own rendering) for every case."""
    gen = SynthCXR(seed=seed, size=size)
    texts, refs = {}, {}
    for title, findings in CASES:
        texts[title] = rule_clean(gen.report_for(findings, index)).text
        refs[title] = gen.render(findings, index)
    return texts, refs
