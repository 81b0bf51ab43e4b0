"""Scores of report-writing methods: every understanding number per method, per-class F1.

Each *method* is a list of reports for the test images, in test order: the model's, and the
baselines' of :mod:`unixlib.eval.baselines`. All are scored against the same references by the
same labeler (:mod:`unixlib.eval.understanding`), so the rows differ only in the reports.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from unixlib.data.schema import LABELS
from unixlib.data.text.labeler import label_texts
from unixlib.eval.resample_text import bleu_counts
from unixlib.eval.understanding import (
    Labeler,
    binarize,
    cider_per_row,
    label_reports,
    per_class_prf,
    rouge_l_rows,
    score_reports,
    tokenize,
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


@dataclass
class ReportRows:
    """What the understanding tables resample: per study (row i), each method's labels and
    per-report scores beside the references'. Made by :func:`report_rows`."""

    ref_labels: pd.DataFrame  # (N, 14) labels of the references (1 / 0 / -1 / NaN)
    labels: dict[str, pd.DataFrame]  # method -> (N, 14) labels of its reports
    rouge_l: dict[str, np.ndarray]  # method -> (N,) ROUGE-L F-measure of each report
    texts: dict[str, list[str]]  # method -> its reports
    bleu: dict[str, np.ndarray] = field(default_factory=dict)  # method -> (N, 10) BLEU counts
    cider: dict[str, np.ndarray] = field(default_factory=dict)  # method -> (N,) CIDEr-D per row

    def binary(self, method: str, uncertain: str, cols: slice | list[int]) -> tuple:
        """``(y_ref, y_gen)`` binary (N, C) arrays of the chosen classes, uncertain -> 0/1."""
        y_ref = binarize(self.ref_labels, uncertain)[:, cols]
        return y_ref, binarize(self.labels[method], uncertain)[:, cols]


def report_rows(
    references: Sequence[str],
    methods: Mapping[str, Sequence[str]],
    labeler: Labeler | None = None,
) -> ReportRows:
    """Label every method's reports and the references once (memoised), and score each report
    (ROUGE-L, BLEU counts, CIDEr-D with the test set's idf), for intervals over studies."""
    label = memoized(labeler)
    refs = list(references)
    ref_labels = label_reports(refs, label)
    labels = {name: label_reports(list(texts), label) for name, texts in methods.items()}
    rouge = {name: rouge_l_rows(refs, list(texts)) for name, texts in methods.items()}
    ref_tokens = [tokenize(t) for t in refs]
    gen_tokens = {name: [tokenize(t) for t in texts] for name, texts in methods.items()}
    bleu = {name: bleu_counts(ref_tokens, toks) for name, toks in gen_tokens.items()}
    cider = {name: cider_per_row(ref_tokens, toks) for name, toks in gen_tokens.items()}
    texts = {k: list(v) for k, v in methods.items()}
    return ReportRows(ref_labels, labels, rouge, texts, bleu, cider)
