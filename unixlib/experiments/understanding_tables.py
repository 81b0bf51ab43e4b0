"""Understanding tables: paper Table 2, the NLG table and per-class F1, every number with its
95% bootstrap interval over studies, and the paired comparisons of the model with each baseline.

The per-study data come from :func:`unixlib.eval.report_eval.report_rows` (every method's
labels and per-report scores against the same references); the statistics and verdicts from
:mod:`unixlib.eval.uncertainty`. A row of Table 2 is one method; each F1 column ``X`` comes with
``X_low`` / ``X_high`` (the tables show ``value [low, high]``). The paper's rows are returned
apart, to be shown as a separate, quoted block.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from unixlib.data.schema import LABELS, LABELS_5
from unixlib.eval.intervals import Comparison, Interval, verdict
from unixlib.eval.report_eval import NLG_KEYS, ReportRows
from unixlib.eval.resample_stats import F1, Mean
from unixlib.eval.resample_text import CiderD, CorpusBleu
from unixlib.eval.uncertainty import DEFAULT_RESAMPLING, Resampling, bootstrap, paired_difference
from unixlib.experiments import paper_rows
from unixlib.viz.tables import FROM_PAPER, SOURCE_COL, THIS_RUN

# Table 2's columns: (key, average, classes, uncertain convention), in the paper's order.
_IDX_5 = [LABELS.index(c) for c in LABELS_5]
F1_COLUMNS: tuple[tuple[str, str, slice | list[int], str], ...] = tuple(
    (f"{avg}{k} (u={u[:3]})", avg, cols, u)
    for u in ("negative", "positive")
    for avg, k, cols in (
        ("micro", "14", slice(None)),
        ("micro", "5", _IDX_5),
        ("macro", "14", slice(None)),
        ("macro", "5", _IDX_5),
    )
)
# The comparisons of the model with each baseline: micro / macro F1-14 (u = positive).
COMPARED = ("micro14 (u=pos)", "macro14 (u=pos)", "micro5 (u=pos)", "macro5 (u=pos)")


def _f1_args(rows: ReportRows, method: str, column: str) -> tuple[F1, tuple]:
    _, avg, cols, uncertain = next(c for c in F1_COLUMNS if c[0] == column)
    return F1(avg), rows.binary(method, uncertain, cols)


def _cells(iv: Interval, key: str, scale: float = 1.0) -> dict[str, float]:
    return {key: iv.value * scale, f"{key}_low": iv.low * scale, f"{key}_high": iv.high * scale}


def table2(
    rows: ReportRows,
    kinds: Mapping[str, str],
    labeler_name: str,
    r: Resampling = DEFAULT_RESAMPLING,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Paper Table 2 (CheXbert-style F1 in %, uncertain as negative | as positive): this run's
    methods with intervals (``kinds``: method -> "model" / "baseline"), and the paper's rows."""
    out = []
    for method in rows.labels:
        row = {"method": method, "kind": kinds.get(method, "model"), "labeler": labeler_name}
        for column, *_ in F1_COLUMNS:
            stat, args = _f1_args(rows, method, column)
            iv = bootstrap(stat, *args, n_resamples=r.n_resamples, seed=r.seed, level=r.level)
            row.update(_cells(iv, column, 100))
        out.append({**row, SOURCE_COL: THIS_RUN})
    return pd.DataFrame(out), quoted_table2()


def quoted_table2() -> pd.DataFrame:
    """The paper's Table 2 rows (quoted, CheXbert F1 in %), Table 2's columns."""
    columns = [c for c, *_ in F1_COLUMNS]
    rows = []
    for model, _params, uneg, upos in paper_rows.TABLE2:
        values = dict(zip(columns, (*uneg, *upos), strict=True))
        rows.append({"method": model, "kind": "model", "labeler": "CheXbert", **values})
    return pd.DataFrame(rows).assign(**{SOURCE_COL: FROM_PAPER})


def nlg_table(
    rows: ReportRows,
    scores: pd.DataFrame,
    kinds: Mapping[str, str],
    r: Resampling = DEFAULT_RESAMPLING,
    radgraph: Mapping[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """BLEU-1..4, ROUGE-L, CIDEr (each with its interval) and the share of distinct reports
    per method (this run only: the paper's NLG table is in its unpublished supplement).
    Corpus BLEU resamples reports with their n-gram counts (``eval.resample_text``); CIDEr-D
    keeps the whole test set's idf; ``distinct`` is a count (distinct reports / N), not an
    estimate, so it has none. RadGraph F1 (partial) needs local weights: ``radgraph``, method
    -> (N,) per-report F1 (``experiments.evaluators.radgraph_f1``), its mean with an interval;
    without, the column says "n/a"."""
    frame = scores[[*list(NLG_KEYS), "distinct"]].copy()
    for method in frame.index:
        stats = [(f"bleu{n}", CorpusBleu(n), rows.bleu[method]) for n in range(1, 5)]
        stats += [
            ("rouge_l", Mean(), rows.rouge_l[method]),
            ("cider", CiderD(), rows.cider[method]),
        ]
        for key, stat, data in stats:
            iv = bootstrap(stat, data, n_resamples=r.n_resamples, seed=r.seed, level=r.level)
            frame.loc[method, [key, f"{key}_low", f"{key}_high"]] = iv.value, iv.low, iv.high
    frame.insert(0, "kind", [kinds.get(m, "model") for m in frame.index])
    if not radgraph:
        frame["radgraph_f1"] = "n/a (no local RadGraph weights)"
        return frame.reset_index(names="method")
    for method in frame.index:
        iv = bootstrap(Mean(), radgraph[method], n_resamples=r.n_resamples, seed=r.seed)
        frame.loc[method, ["radgraph_f1", "radgraph_f1_low", "radgraph_f1_high"]] = (
            iv.value,
            iv.low,
            iv.high,
        )
    return frame.reset_index(names="method")


def per_class_f1(rows: ReportRows, r: Resampling = DEFAULT_RESAMPLING) -> pd.DataFrame:
    """Per-class F1 (u = positive) of every method with its interval; one row per class, with
    the number of reference positives (a class with none has F1 0 by the 0/0 convention)."""
    out = pd.DataFrame({"class": list(LABELS)})
    y_ref_all = None
    for method in rows.labels:
        y_ref_all, y_gen = rows.binary(method, "positive", slice(None))
        for c in range(len(LABELS)):
            pair = (y_ref_all[:, [c]], y_gen[:, [c]])
            iv = bootstrap(F1("micro"), *pair, n_resamples=r.n_resamples, seed=r.seed)
            for key, value in _cells(iv, method).items():
                out.loc[c, key] = value
    out["reference positives"] = y_ref_all.sum(axis=0) if y_ref_all is not None else 0
    return out


def compare(
    rows: ReportRows,
    model: str,
    baselines: Sequence[str],
    columns: Sequence[str] = COMPARED,
    r: Resampling = DEFAULT_RESAMPLING,
) -> tuple[pd.DataFrame, list[str]]:
    """The model against each baseline on ``columns``, paired over the same studies: the
    difference with its interval and p-value (machine-readable), and one verdict sentence each
    ("beats" only when the interval of the difference excludes zero)."""
    records, sentences = [], []
    for column in columns:
        for base in baselines:
            stat, args_a = _f1_args(rows, model, column)
            _, args_b = _f1_args(rows, base, column)
            c: Comparison = paired_difference(
                stat, args_a, args_b, n_resamples=r.n_resamples, seed=r.seed, level=r.level
            )
            records.append({"metric": column, "model": model, "baseline": base, **c.as_dict()})
            said = verdict(model, base, c, higher_is_better=True, digits=1, scale=100)
            sentences.append(f"{column}: {said}")
    return pd.DataFrame(records), sentences


def f1_interval(rows: ReportRows, method: str, column: str, r: Resampling) -> Interval:
    """One F1 number of one method with its interval (e.g. for captions and summaries)."""
    stat, args = _f1_args(rows, method, column)
    return bootstrap(stat, *args, n_resamples=r.n_resamples, seed=r.seed, level=r.level)
