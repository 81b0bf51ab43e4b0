"""Scores of report-writing methods: every understanding number per method, per-class F1.

Each *method* is a list of reports for the test images, in test order: the model's, and the
baselines' of :mod:`unixlib.eval.baselines`. All are scored against the same references by the
same labeler (:mod:`unixlib.eval.understanding`), so the rows differ only in the reports.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from unixlib.data.schema import LABELS
from unixlib.data.text.labeler import label_texts
from unixlib.eval.understanding import (
    Labeler,
    label_reports,
    per_class_prf,
    score_reports,
)

F1_KEYS = ("micro14", "micro5", "macro14", "macro5")
NLG_KEYS = ("bleu1", "bleu2", "bleu3", "bleu4", "rouge_l", "cider")


def memoized(labeler: Labeler | None) -> Labeler:
    """The labeler (default: the project's) labelling each distinct text once: the references
    are scored against every method, and a baseline repeats one text for every image."""
    label = labeler or label_texts
    cache: dict[str, pd.Series] = {}

    def run(texts: Sequence[str]) -> pd.DataFrame:
        todo = list(dict.fromkeys(t for t in texts if t not in cache))
        if todo:
            for text, (_, row) in zip(todo, label(todo).iterrows(), strict=True):
                cache[text] = row[list(LABELS)]
        return pd.DataFrame([cache[t] for t in texts]).reset_index(drop=True)

    return run


def score_methods(
    references: Sequence[str],
    methods: Mapping[str, Sequence[str]],
    labeler: Labeler | None = None,
) -> pd.DataFrame:
    """One row of every understanding number per method (index: method name; F1 as fractions)."""
    label = memoized(labeler)
    rows = {name: score_reports(references, list(texts), label) for name, texts in methods.items()}
    return pd.DataFrame.from_dict(rows, orient="index")


def per_class_f1(
    references: Sequence[str],
    methods: Mapping[str, Sequence[str]],
    uncertain: str = "positive",
    labeler: Labeler | None = None,
) -> pd.DataFrame:
    """Per-class F1 (rows: the 14 classes, columns: methods) plus the reference positives."""
    labeler = memoized(labeler)
    labeler = memoized(labeler)
    ref = label_reports(references, labeler)
    out = {}
    for name, texts in methods.items():
        prf = per_class_prf(ref, label_reports(list(texts), labeler), uncertain)
        out[name] = prf["f1"]
        out["reference positives"] = prf["support"]
    frame = pd.DataFrame(out, index=list(LABELS))
    return frame.reset_index(names="class")
