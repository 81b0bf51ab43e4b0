"""The paper's Fig. 4 prompts: normal; severity; laterality; multi-finding reports.

On SynthCXR the prompt text is what the generator itself writes for the chosen findings (then
rule-cleaned), so prompts are in the training distribution and the generator's own rendering
of the same findings (same patient, ``index``) serves as a reference image. On real data the
fixed texts below are used.

The figure is read by eye; :func:`unixlib.eval.finding_contrast.finding_contrast` puts a number
on it for SynthCXR (the same measure checks how much of each finding the VAE keeps).

Sizes are chosen to be visible at the smoke profile's 64 px: the laterality cases are *large*
effusions (a moderate one covers ~80 pixels, a 2 x 2 patch of the 8 x 8 latent grid), and the
device of the multi-finding case is a pacemaker (an endotracheal tube is ~1 px wide inside the
trachea's own shadow).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from unixlib.data.synth.synthetic import FindingSpec, SynthCXR
from unixlib.data.text.reports import rule_clean
from unixlib.data.text.tokenizer import ReportTokenizer
from unixlib.eval.finding_contrast import finding_contrast
from unixlib.experiments.samples import generate_images
from unixlib.model.unix import UniX

# (title, findings) of each Fig. 4 case, in the paper's order.
CASES: tuple[tuple[str, tuple[FindingSpec, ...]], ...] = (
    ("normal", ()),
    ("mild cardiomegaly", (FindingSpec("cardiomegaly", "mild", "none"),)),
    ("severe cardiomegaly", (FindingSpec("cardiomegaly", "severe", "none"),)),
    ("left effusion", (FindingSpec("pleural_effusion", "large", "left"),)),
    ("right effusion", (FindingSpec("pleural_effusion", "large", "right"),)),
    ("bilateral effusions", (FindingSpec("pleural_effusion", "large", "bilateral"),)),
    (
        "cardiomegaly + edema + effusions",
        (
            FindingSpec("cardiomegaly", "moderate", "none"),
            FindingSpec("edema", "moderate", "bilateral"),
            FindingSpec("pleural_effusion", "small", "bilateral"),
        ),
    ),
    (
        "pneumothorax + pacemaker",
        (
            FindingSpec("pneumothorax", "large", "right"),
            FindingSpec("support_devices", "moderate", "left", region="pacemaker"),
        ),
    ),
)

# Texts for real-data profiles (MIMIC-CXR style, FINDINGS/IMPRESSION as the cleaned reports).
REAL_TEXTS: dict[str, str] = {
    "normal": "FINDINGS: Heart size is normal. Lungs are clear. No pleural effusion or "
    "pneumothorax. IMPRESSION: No acute cardiopulmonary process.",
    "mild cardiomegaly": "FINDINGS: The heart is mildly enlarged. Lungs are clear. "
    "IMPRESSION: Mild cardiomegaly.",
    "severe cardiomegaly": "FINDINGS: The heart is severely enlarged. Lungs are clear. "
    "IMPRESSION: Severe cardiomegaly.",
    "left effusion": "FINDINGS: Large left pleural effusion. IMPRESSION: Left pleural effusion.",
    "right effusion": "FINDINGS: Large right pleural effusion. IMPRESSION: Right pleural effusion.",
    "bilateral effusions": "FINDINGS: Large bilateral pleural effusions. IMPRESSION: Bilateral "
    "pleural effusions.",
    "cardiomegaly + edema + effusions": "FINDINGS: Moderate cardiomegaly with pulmonary edema "
    "and small bilateral pleural effusions. IMPRESSION: Congestive heart failure.",
    "pneumothorax + pacemaker": "FINDINGS: Left chest wall pacemaker with leads in standard "
    "position. Large right pneumothorax. IMPRESSION: Right pneumothorax.",
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


def generate(
    model: UniX,
    prompts: Mapping[str, str],
    tokenizer: ReportTokenizer,
    n: int = 4,
    seed: int = 0,
    **sampling,
) -> dict[str, np.ndarray]:
    """title -> ``(n, H, W)`` images in [0, 1] for every prompt.

    Every prompt is sampled as one batch from the same ``seed``, so column ``k`` of every case
    starts from the same noise: differences between rows are the prompt's doing.
    ``sampling`` goes to :func:`~unixlib.experiments.samples.generate_images` (steps, cfg_scale,
    size, max_report_tokens).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return {
        title: generate_images(model, [text] * n, tokenizer, seed=seed, batch_size=n, **sampling)
        for title, text in prompts.items()
    }


# The one-sided Fig. 4 cases and the case whose finding sits on the other side.
OPPOSITE_SIDE = {"left effusion": "right effusion", "right effusion": "left effusion"}


def laterality(
    generated: Mapping[str, np.ndarray], references: Mapping[str, np.ndarray]
) -> pd.DataFrame:
    """Whether the one-sided cases are drawn on their own side (SynthCXR references).

    For each case of :data:`OPPOSITE_SIDE`, the :func:`finding_contrast` ratio of its generated
    images in its own finding region (``own_side``) and in the mirrored case's region
    (``other_side``: the same images, measured where the other side's effusion would be). A
    model that reads "left" and "right" draws ``own_side`` well above ``other_side``; one that
    only reads "effusion" draws both alike. ``shows_side`` = own_side > other_side.
    """
    rows = []
    for case, other in OPPOSITE_SIDE.items():
        if case not in generated or other not in references:
            continue
        normal = {"normal": generated["normal"]}
        own = finding_contrast({**normal, case: generated[case]}, references)
        mirrored = finding_contrast({**normal, other: generated[case]}, references)
        rows.append(
            {
                "case": case,
                "own_side": float(own["ratio"].iloc[0]),
                "other_side": float(mirrored["ratio"].iloc[0]),
            }
        )
    frame = pd.DataFrame(rows, columns=["case", "own_side", "other_side"])
    frame["shows_side"] = frame["own_side"] > frame["other_side"]
    return frame


def severity_prompts(
    seed: int, size: int, finding: str = "cardiomegaly", levels=("mild", "moderate", "severe")
) -> tuple[dict[str, str], dict[str, np.ndarray]]:
    """(title -> cleaned prompt, title -> SynthCXR rendering) of one patient without the finding
    (``normal``) and with it at each severity level: does the generator read severity words?"""
    gen = SynthCXR(seed=seed, size=size)
    cases = {"normal": ()} | {level: (FindingSpec(finding, level, "none"),) for level in levels}
    texts = {k: rule_clean(gen.report_for(f, 0)).text for k, f in cases.items()}
    return texts, {k: gen.render(f, 0) for k, f in cases.items()}
