"""The paper's Fig. 4 prompts: normal; severity; laterality; multi-finding reports.

On SynthCXR the prompt text is what the generator itself writes for the chosen findings (then
rule-cleaned), so prompts are in the training distribution and the generator's own rendering
of the same findings (same patient, ``index``) serves as a reference image. On real data the
fixed texts below are used.

The figure is read by eye; :func:`finding_contrast` puts a number on it for SynthCXR: inside
the pixels where a case's reference differs from the normal reference (the finding's region),
how much do the images generated for the case differ from those generated for the normal
prompt, as a fraction of the reference's own difference.

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
from unixlib.eval.samples import generate_images
from unixlib.model.unix import UniX

# (title, findings) of each Fig. 4 case, in the paper's order.
CASES: tuple[tuple[str, tuple[FindingSpec, ...]], ...] = (
    ("normal", ()),
    ("mild cardiomegaly", (FindingSpec("cardiomegaly", "mild", "none"),)),
    ("severe cardiomegaly", (FindingSpec("cardiomegaly", "severe", "none"),)),
    ("left effusion", (FindingSpec("pleural_effusion", "large", "left"),)),
    ("right effusion", (FindingSpec("pleural_effusion", "large", "right"),)),
    ("bilateral effusions", (FindingSpec("pleural_effusion", "large", "bilateral"),)),
    ("cardiomegaly + edema + effusions", (
        FindingSpec("cardiomegaly", "moderate", "none"),
        FindingSpec("edema", "moderate", "bilateral"),
        FindingSpec("pleural_effusion", "small", "bilateral"),
    )),
    ("pneumothorax + pacemaker", (
        FindingSpec("pneumothorax", "large", "right"),
        FindingSpec("support_devices", "moderate", "left", region="pacemaker"),
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
    ``sampling`` goes to :func:`~unixlib.eval.samples.generate_images` (steps, cfg_scale,
    size, max_report_tokens).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return {
        title: generate_images(model, [text] * n, tokenizer, seed=seed, batch_size=n, **sampling)
        for title, text in prompts.items()
    }


def finding_contrast(
    generated: Mapping[str, np.ndarray],
    references: Mapping[str, np.ndarray],
    normal: str = "normal",
    threshold: float = 0.05,
) -> pd.DataFrame:
    """How strongly generated images show each case's finding, against its SynthCXR reference.

    Args:
        generated: title -> ``(n, H, W)`` images (:func:`generate`), including ``normal``.
        references: title -> ``(H, W)`` SynthCXR renderings of one patient
            (:func:`synthetic_prompts`), including ``normal``.
        normal: the title of the finding-free case.
        threshold: a pixel is in a case's region when ``|reference - normal reference|``
            exceeds it.
    Returns:
        one row per case other than ``normal``: ``case`` (its title), ``region_px``, ``reference``
        (mean ``|reference - normal reference|`` over the region), ``generated`` (mean over the
        region of the generated difference, case minus normal averaged over samples, signed
        by the reference's direction: denser where the finding is denser, as effusion or a
        device, darker where it is darker, as pneumothorax) and ``ratio`` = generated /
        reference: 1 when the finding is drawn as strongly as in the reference, 0 when the
        images do not differ from the normal prompt's, negative when they differ the other
        way; NaN for an empty region.
    """
    for name, table in (("generated", generated), ("references", references)):
        if normal not in table:
            raise KeyError(f"{name} has no {normal!r} case to compare with")
    size = np.shape(references[normal])  # (H, W)
    for title, images in generated.items():
        sizes = {np.shape(images)[1:], np.shape(references.get(title, references[normal]))}
        if sizes != {size}:
            raise ValueError(
                f"{title}: image sizes {sizes} differ from the normal reference's {size}"
            )
    base_ref = np.asarray(references[normal], dtype=np.float64)
    base_gen = np.asarray(generated[normal], dtype=np.float64).mean(axis=0)  # (H, W)
    rows = []
    for title, images in generated.items():
        if title == normal or title not in references:
            continue
        diff_ref = np.asarray(references[title], dtype=np.float64) - base_ref  # (H, W)
        diff_gen = np.asarray(images, dtype=np.float64).mean(axis=0) - base_gen  # (H, W)
        region = np.abs(diff_ref) > threshold
        ref = float(np.abs(diff_ref[region]).mean()) if region.any() else float("nan")
        gen = float((diff_gen * np.sign(diff_ref))[region].mean()) if region.any() else float("nan")
        rows.append({"case": title, "region_px": int(region.sum()), "reference": ref,
                     "generated": gen, "ratio": gen / ref})  # fmt: skip
    return pd.DataFrame(rows, columns=["case", "region_px", "reference", "generated", "ratio"])
