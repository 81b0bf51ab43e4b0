"""Instruction templates for the understanding task (image -> report).

The paper trains with 20 templates "such as 'Examine this X-ray image and describe the FINDINGS
and IMPRESSION.'" but does not publish the list (PAPER.md, Data cleaning). These 20 are ours,
written in the same register; the first is the paper's example and is the one used at
evaluation time, so that evaluation is deterministic.
"""

from __future__ import annotations

import numpy as np

PROMPTS: tuple[str, ...] = (
    "Examine this X-ray image and describe the FINDINGS and IMPRESSION.",
    "Write the FINDINGS and IMPRESSION sections of a radiology report for this chest X-ray.",
    "Describe the findings of this chest radiograph and give your impression.",
    "You are a radiologist. Report the FINDINGS and IMPRESSION for this image.",
    "Provide a radiology report (FINDINGS and IMPRESSION) for this frontal chest X-ray.",
    "What does this chest X-ray show? Answer with FINDINGS and IMPRESSION.",
    "Interpret this chest radiograph. Give the FINDINGS, then the IMPRESSION.",
    "Generate the report for this chest X-ray, with FINDINGS and IMPRESSION sections.",
    "Analyse this radiograph of the chest and write the FINDINGS and IMPRESSION.",
    "Read this chest film and dictate the FINDINGS and IMPRESSION.",
    "Summarise the FINDINGS and IMPRESSION visible on this chest X-ray.",
    "Please review this chest X-ray and report FINDINGS and IMPRESSION.",
    "Write a concise chest X-ray report: FINDINGS and IMPRESSION.",
    "Look at this frontal chest radiograph and describe what you see (FINDINGS, IMPRESSION).",
    "Report on the heart, lungs, pleura, bones and devices in this chest X-ray.",
    "Give a structured report of this chest image with FINDINGS and IMPRESSION.",
    "As a radiologist, describe this chest X-ray in FINDINGS and IMPRESSION form.",
    "Produce the FINDINGS and IMPRESSION for the chest radiograph shown.",
    "Describe any abnormality in this chest X-ray, in FINDINGS and IMPRESSION sections.",
    "Examine the chest radiograph and write the radiology report.",
)

EVAL_PROMPT = PROMPTS[0]


def training_prompt(seed: int, index: int, epoch: int = 0) -> str:
    """The template for one training example: random across examples and epochs, but a pure
    function of (seed, index, epoch), so a resumed run sees the same prompts."""
    rng = np.random.default_rng((seed, index, epoch))
    return PROMPTS[int(rng.integers(len(PROMPTS)))]
