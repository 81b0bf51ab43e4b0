"""Tables of the understanding evaluation: paper Table 2, the NLG table, per-class F1.

Each *method* is a list of reports for the test images, in test order: the model's, and the
baselines' of :mod:`unixlib.eval.baselines`. All are scored against the same references by the
same labeler (:mod:`unixlib.eval.understanding`), so the rows differ only in the reports.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from unixlib.data.schema import LABELS
from unixlib.data.text.labeler import label_texts
from unixlib.eval import paper_rows
from unixlib.eval.understanding import (
    Labeler,
    label_reports,
    per_class_prf,
    score_reports,
)
from unixlib.viz.tables import FROM_PAPER, SOURCE_COL, THIS_RUN

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


def table2(scores: pd.DataFrame, kinds: Mapping[str, str], labeler_name: str) -> pd.DataFrame:
    """Paper Table 2 layout (CheXbert-style F1 in %, uncertain as negative | as positive):
    this run's methods (``kinds``: method -> "model" / "baseline") then the paper's rows."""
    cols = [f"{k} (u=neg)" for k in F1_KEYS] + [f"{k} (u=pos)" for k in F1_KEYS]
    rows = []
    for name, row in scores.iterrows():
        values = [100 * row[f"{k}_uneg"] for k in F1_KEYS] + [
            100 * row[f"{k}_upos"] for k in F1_KEYS
        ]
        rows.append([name, kinds.get(name, "model"), labeler_name, THIS_RUN, *values])
    for model, _params, uneg, upos in paper_rows.TABLE2:
        rows.append([model, "model", "CheXbert", FROM_PAPER, *uneg, *upos])
    return pd.DataFrame(rows, columns=["method", "kind", "labeler", SOURCE_COL, *cols])


def nlg_table(scores: pd.DataFrame, kinds: Mapping[str, str]) -> pd.DataFrame:
    """BLEU-1..4, ROUGE-L, CIDEr and the share of distinct reports, per method (this run only:
    the paper's NLG table is in its unpublished supplement). RadGraph F1 needs local weights."""
    frame = scores[[*list(NLG_KEYS), "distinct"]].copy()
    frame.insert(0, "kind", [kinds.get(m, "model") for m in frame.index])
    frame["radgraph_f1"] = "n/a (no local RadGraph weights)"
    return frame.reset_index(names="method")


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


def beats_baselines(
    scores: pd.DataFrame, model: str, baselines: Sequence[str], keys: Sequence[str]
) -> list[str]:
    """Sentences saying, metric by metric, whether ``model`` beats each baseline (higher is
    better for every understanding number)."""
    lines = []
    for key in keys:
        ours = scores.at[model, key]
        verdicts = []
        for base in baselines:
            theirs = scores.at[base, key]
            word = "beats" if ours > theirs else ("ties" if ours == theirs else "does NOT beat")
            verdicts.append(f"{word} {base} ({theirs:.3f})")
        lines.append(f"{model} {key} = {ours:.3f}: " + "; ".join(verdicts))
    return lines
