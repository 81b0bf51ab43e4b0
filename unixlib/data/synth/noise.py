"""MIMIC-CXR's noise *inside* finding sentences, for SynthCXR's raw reports.

Real reports rarely keep prior-study talk in a sentence of its own: "The small left effusion
has increased since ___", "New large right pneumothorax, discussed with Dr. ___ at ___ p.m.",
"1. Moderate cardiomegaly 2. No effusion". A cleaner must cut the noise and keep the finding,
with its side and severity. Every function here takes a noise-free sentence (the ground truth
of what the clean text must say) and returns a noisy one that states the same findings:

- :func:`noisy_sentence`: a comparison tail, a change word (as predicate or adjective) or a
  notification clause around one finding sentence;
- :func:`numbered`: an IMPRESSION written as a numbered list, with or without full stops;
- :func:`dictation_slips`: a doubled word, a missing space after a full stop.

The rates are small (``NOISE_P``): most sentences stay as the phrase bank wrote them, and the
cleaned text stays as short as the noise-free one.
"""

from __future__ import annotations

import re

import numpy as np

from unixlib.data.synth.wording import pick

NOISE_P = 0.35  # chance that one finding sentence carries noise
_COMPARISON_TAILS = (
    ", unchanged since ___",
    ", unchanged from the prior study",
    ", as compared to the prior radiograph from ___",
    ", similar to the study of ___",
    " compared to ___",
)
_NOTIFICATION_TAILS = (
    ", discussed with Dr. ___ at ___ p.m. on ___",
    ", which was communicated to Dr. ___ by telephone at ___",
    ", which was discussed with the referring physician at ___ on ___",
    "; these findings were telephoned to Dr. ___ at ___",
)
_CHANGE_PREDICATES = (
    " has increased since ___",
    " has slightly increased compared to ___",
    " is new",
    " has decreased",
    " has slightly improved compared to the prior study",
)
# A noun-phrase sentence: no verb and no hedge ("Moderate cardiomegaly.", "Small left
# pleural effusion."), which a change predicate can follow.
_VERB_OR_HEDGE = re.compile(
    r"\b(?:is|are|with|consistent|terminates|courses|cannot|may|possible|questionable|"
    r"representing|concerning|in|of|at)\b",
    re.IGNORECASE,
)
_DOUBLED = ("the", "of", "is", "and")


def _is_noun_phrase(s: str) -> bool:
    return s.endswith(".") and s.count(".") == 1 and not _VERB_OR_HEDGE.search(s)


def noisy_sentence(text: str, rng: np.random.Generator, urgent: bool = False) -> str:
    """``text`` (one finding's sentence or sentences) with noise in its last sentence.

    ``urgent`` findings may carry a notification clause; a hedged sentence only gets a
    comparison tail (a change word would read as a new statement about a hedge).
    """
    if rng.random() >= NOISE_P:
        return text
    head, _, last = text.rpartition(". ")
    head = f"{head}. " if head else ""
    if not last.endswith("."):
        return text
    body = last[:-1]
    kinds = ["comparison"]
    if _is_noun_phrase(last):
        kinds += ["predicate", "adjective"]
    elif body.startswith("There is a "):
        kinds.append("adjective")
    if urgent:
        kinds.append("notification")
    kind = pick(rng, kinds)
    if kind == "comparison":
        body += pick(rng, _COMPARISON_TAILS)
    elif kind == "notification":
        body += pick(rng, _NOTIFICATION_TAILS)
    elif kind == "predicate":
        body = f"The {body[0].lower()}{body[1:]}{pick(rng, _CHANGE_PREDICATES)}"
    elif body.startswith("There is a "):
        body = "There is a new " + body.removeprefix("There is a ")
    else:
        body = f"New {body[0].lower()}{body[1:]}"
    return f"{head}{body}."


def numbered(sentences: list[str], rng: np.random.Generator) -> str:
    """``"1. A. 2. B."``, or the IU/MIMIC habit of dropping the full stops: ``"1. A 2. B"``."""
    stops = rng.random() < 0.5
    items = [s if stops else s.rstrip(".") for s in sentences]
    return " ".join(f"{i}. {s}" for i, s in enumerate(items, 1))


def dictation_slips(text: str, rng: np.random.Generator) -> str:
    """A doubled short word ("the the") or a full stop without its space ("effusion.No")."""
    r = rng.random()
    if r < 0.08:
        words = [w for w in _DOUBLED if f" {w} " in text]
        if words:
            w = pick(rng, words)
            return text.replace(f" {w} ", f" {w} {w} ", 1)
    elif r < 0.16:
        return re.sub(r"(?<=[a-z])\. (?=[A-Z][a-z])", ".", text, count=1)
    return text
