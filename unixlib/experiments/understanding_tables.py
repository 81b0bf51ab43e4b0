"""Understanding tables: paper Table 2, the NLG table, and the verdict sentences.

The scores come from :func:`unixlib.eval.report_eval.score_methods` (every method scored
against the same references by the same labeler); this module lays them out beside the
paper's quoted rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from unixlib.eval.report_eval import F1_KEYS, NLG_KEYS
from unixlib.experiments import paper_rows
from unixlib.viz.tables import FROM_PAPER, SOURCE_COL, THIS_RUN


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
    """BLEU-1..4, ROUGE-L, CIDEr, the share of distinct reports and RadGraph F1 (partial; it
    needs local weights: ``scores["radgraph_f1"]``, else "n/a"), per method (this run only: the
    paper's NLG table is in its unpublished supplement)."""
    frame = scores[[*list(NLG_KEYS), "distinct"]].copy()
    frame.insert(0, "kind", [kinds.get(m, "model") for m in frame.index])
    if "radgraph_f1" in scores.columns:
        frame["radgraph_f1"] = scores["radgraph_f1"]
    else:
        frame["radgraph_f1"] = "n/a (no local RadGraph weights)"
    return frame.reset_index(names="method")


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
