"""SynthCXR raw reports in the style of MIMIC-CXR, and the labels they state.

A report has a ``FINAL REPORT`` banner, EXAMINATION / INDICATION (or HISTORY) / TECHNIQUE /
COMPARISON headers, a FINDINGS section (missing in ~10% of reports, as in MIMIC) and an
IMPRESSION, wrapped at a random width with a leading space per line. Noise that a cleaner
must remove: ``___`` de-identification spans, prior-study comparisons ("In comparison with
the study of ___, ..."), technique sentences and notification sentences ("Dr. ___ was
notified ..."), and, inside the finding sentences themselves (:mod:`unixlib.data.synth.noise`),
comparison tails, change words, notification clauses, numbered IMPRESSION lists, an empty
FINDINGS header and dictation slips.

:func:`write_report` returns the ground truth with the text: the noise-free report
(``FINDINGS: ... IMPRESSION: ...``, what a cleaner's output must state: the same labels, and
for each finding the same side and severity) and the labels. Labels are aggregated over the FINDINGS and IMPRESSION sentences the
writer chose, CheXpert style (1 beats -1 beats 0; NaN = not mentioned); every positive or
hedged finding appears in the IMPRESSION too. Headers and noise sentences never name an
observation. ``no_finding`` is 1 when no label other than ``support_devices`` is 1 or -1.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import numpy as np

from unixlib.data.schema import LABELS
from unixlib.data.synth.findings import OPACITY_FINDINGS, FindingSpec
from unixlib.data.synth.noise import dictation_slips, noisy_sentence, numbered
from unixlib.data.synth.phrases import NEGATIVES, describe
from unixlib.data.synth.wording import Said, pick
from unixlib.data.text.reports import format_report

_EXAM = {
    "PA": [
        "CHEST (PA AND LAT)",
        "CHEST (PA AND LATERAL)",
        "Chest radiograph, PA and lateral views.",
    ],
    "AP": ["CHEST (PORTABLE AP)", "PORTABLE CHEST", "Chest:  Frontal portable."],
}
_TECHNIQUE = {
    "PA": [
        "Chest PA and lateral.",
        "PA and lateral views of the chest.",
        "Frontal and lateral chest radiographs.",
    ],
    "AP": [
        "Portable AP upright chest radiograph.",
        "Single frontal view of the chest.",
        "AP portable semi-upright view.",
    ],
}
_COMPLAINTS = [
    "shortness of breath",
    "cough and fever",
    "chest pain",
    "hypoxia",
    "dyspnea on exertion",
    "status post fall",
    "preoperative evaluation",
    "weakness",
    "tachycardia",
    "fever of unknown origin",
]
_QUESTIONS = [
    "eval for acute process",
    "evaluate for interval change",
    "please assess",
    "r/o acute process",
]
_COMPARISON = ["___", "None.", "Chest radiograph of ___.", "Prior study from ___.", "___ and ___."]
_OPENERS = [
    "In comparison with the study of ___, there is little overall change.",
    "Compared to the prior study of ___, the appearance is similar.",
    "As compared to the previous radiograph, there is no relevant interval change.",
    "Comparison is made to the prior radiograph from ___.",
]
_NORMAL_IMPRESSION = [
    "No acute cardiopulmonary process.",
    "No acute intrathoracic abnormality.",
    "No evidence of acute cardiopulmonary disease.",
]
_NOTIFY = [
    "Dr. ___ was notified of the findings by Dr. ___ by telephone at ___ on ___.",
    "These findings were communicated to Dr. ___ at ___ on ___ by ___ via telephone.",
    "Findings were discussed with ___ at ___ p.m. on ___, time of discovery.",
    "NOTIFICATION:  The findings were discussed with Dr. ___ by ___ on the telephone on ___ at ___.",
]
# Order of findings in a report: devices, heart, lungs, pleura, bones (radiologists' habit).
_ORDER = (
    "support_devices",
    "cardiomegaly",
    "enlarged_cardiomediastinum",
    "edema",
    "consolidation",
    "pneumonia",
    "lung_opacity",
    "atelectasis",
    "lung_lesion",
    "pleural_effusion",
    "pneumothorax",
    "pleural_other",
    "fracture",
)
_URGENT = frozenset({"pneumothorax", "pneumonia", "consolidation", "enlarged_cardiomediastinum"})


def aggregate(stated: Sequence[dict[str, float]]) -> dict[str, float]:
    """CheXpert aggregation of per-sentence labels -> dict over LABELS (1 > -1 > 0 > NaN),
    with no_finding = 1 when nothing but support devices is positive or uncertain."""
    out = {name: float("nan") for name in LABELS}
    rank = {1.0: 3, -1.0: 2, 0.0: 1}
    for said in stated:
        for name, value in said.items():
            if np.isnan(out[name]) or rank[value] > rank[out[name]]:
                out[name] = value
    found = any(out[n] in (1.0, -1.0) for n in LABELS if n not in ("support_devices", "no_finding"))
    out["no_finding"] = float("nan") if found else 1.0
    return out


def _negatives(findings: Sequence[FindingSpec], rng: np.random.Generator) -> list[Said]:
    """A few explicit negatives, only for observations that are absent and do not clash with
    what is present (no "no focal consolidation" next to pneumonia)."""
    present = {s.name for s in findings}
    blocked = set(present)
    if present & set(OPACITY_FINDINGS) or "lung_opacity" in present:
        blocked |= {"consolidation", "pneumonia", "lung_opacity"}
    if "cardiomegaly" in present:
        blocked.add("enlarged_cardiomediastinum")
    pool = [n for n in NEGATIVES if not set(n[1]) & blocked]
    want = int(rng.integers(1, 5))
    picked: list[Said] = []
    covered: set[str] = set()
    for i in rng.permutation(len(pool)):
        if len(picked) == want:
            break
        text, labels = pool[int(i)]
        if not set(labels) & covered:  # never negate the same observation twice
            picked.append((text, labels))
            covered |= set(labels)
    return picked


def _wrap(text: str, rng: np.random.Generator) -> str:
    width = int(rng.integers(62, 80))
    # Break at spaces only: a line break after the hyphen of "plate-like" would read back as
    # "plate- like" once the lines are joined, which no radiologist writes.
    return textwrap.fill(
        text, width=width, initial_indent=" ", subsequent_indent=" ", break_on_hyphens=False
    )


def _noisy(said: Said, rng: np.random.Generator) -> str:
    """A sentence that states a finding gets in-sentence noise; negatives stay as written."""
    text, labels = said
    if not any(v in (1.0, -1.0) for v in labels.values()):
        return text
    urgent = any(n in _URGENT and v == 1.0 for n, v in labels.items())
    return noisy_sentence(text, rng, urgent)


def write_report(
    findings: Sequence[FindingSpec], rng: np.random.Generator, view: str
) -> tuple[str, dict[str, float], str]:
    """A raw MIMIC-style report for ``findings``: ``(text, labels over LABELS, truth)``, where
    ``truth`` is the noise-free ``FINDINGS: ... IMPRESSION: ...`` text (module docstring)."""
    ordered = sorted(findings, key=lambda s: _ORDER.index(s.name))
    body: list[Said] = []
    impression: list[Said] = []
    for spec in ordered:
        fnd, imp = describe(spec, rng)
        body.append(fnd)
        if spec.name != "support_devices" or rng.random() < 0.6:
            impression.append(imp)
    if any(s.name == "support_devices" for s in ordered) and not any(
        "support_devices" in lab for _, lab in impression
    ):
        impression.insert(
            0, ("Lines and tubes are in standard position.", {"support_devices": 1.0})
        )
    negatives = _negatives(ordered, rng)
    abnormal = any(s.name != "support_devices" for s in ordered)
    if not abnormal:
        impression.append((pick(rng, _NORMAL_IMPRESSION), {}))

    has_findings = rng.random() > 0.1
    if has_findings:
        findings_part = body[:]
        for neg in negatives:  # negatives go after the positives, in random slots among them
            findings_part.insert(int(rng.integers(len(body), len(findings_part) + 1)), neg)
        impression_part = impression
    else:
        findings_part = []
        impression_part = body + negatives + ([impression[-1]] if not abnormal else [])
    labels = aggregate([lab for _, lab in findings_part + impression_part])
    truth = format_report(
        " ".join(t for t, _ in findings_part), " ".join(t for t, _ in impression_part)
    )

    # the raw wording of each finding sentence: noise inside it, the finding unchanged
    raw_find = [_noisy(said, rng) for said in findings_part]
    raw_imp = [_noisy(said, rng) for said in impression_part]

    lines: list[str] = []
    if rng.random() < 0.7:
        lines += [" " * int(rng.integers(20, 34)) + "FINAL REPORT"]
    lines += [f" EXAMINATION:  {pick(rng, _EXAM[view])}", ""]
    if rng.random() < 0.9:
        head = "INDICATION" if rng.random() < 0.8 else "HISTORY"
        sex = pick(rng, ["man", "woman", "M", "F", "patient"])
        ind = f"___ year old {sex} with {pick(rng, _COMPLAINTS)}"
        if rng.random() < 0.5:
            ind += f"  // {pick(rng, _QUESTIONS)}"
        lines += [f" {head}:  {ind}", ""]
    lines += [f" TECHNIQUE:  {pick(rng, _TECHNIQUE[view])}", ""]
    lines += [f" COMPARISON:  {pick(rng, _COMPARISON)}", ""]
    if has_findings:
        text = " ".join(raw_find)
        if rng.random() < 0.35:
            text = f"{pick(rng, _OPENERS)} {text}"
        lines += [" FINDINGS:", "", _wrap(dictation_slips(text, rng), rng), ""]
    elif rng.random() < 0.5:  # an empty section, as MIMIC writes it
        lines += [" FINDINGS:", ""]
    if len(raw_imp) > 1 and rng.random() < 0.25:
        imp_text = numbered(raw_imp, rng)
    else:
        imp_text = " ".join(raw_imp)
    urgent = {s.name for s in ordered if not s.hedged} & _URGENT
    imp_text = imp_text if imp_text.endswith(".") else imp_text + "."
    if rng.random() < (0.5 if urgent else 0.05):
        imp_text += f" {pick(rng, _NOTIFY)}"
    lines += [" IMPRESSION:", "", _wrap(dictation_slips(imp_text, rng), rng)]
    return "\n".join(lines) + "\n", labels, truth
