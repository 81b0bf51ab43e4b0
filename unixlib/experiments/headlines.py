"""The paper's three headline claims, recomputed from its quoted rows and from this run, with
the formula of each printed; and Fig. 1's cross-model comparison (quoted rows + this run, with
the parameter count on an axis).

The claims (PAPER.md, last lines), all against LLM-CXR, the other unified model:

* "+46.1% understanding": micro-F1 over 14 classes, uncertain as positive (Table 2):
  ``(UniX - LLM-CXR) / LLM-CXR = (52.6 - 36.0) / 36.0 = +46.1 %`` (higher is better);
* "+24.2% generation": FD-RadDino (Table 3), UniX at 512 px vs LLM-CXR at 256 px, lower is
  better: ``(LLM-CXR - UniX) / LLM-CXR = (71.243 - 54.022) / 71.243 = 24.2 %`` lower;
* "25% of the parameters": ``2 x 1.5B / 12B = 25 %`` (UniX's two 1.5B branches, Table 2's
  "1.5B" per branch, vs LLM-CXR's 12B).

This run's versions put its own number in UniX's place, against the same quoted LLM-CXR row.
They are comparable with the paper's only when the run measured the same way (CheXbert labels
on MIMIC-CXR's test set; RadDino features of MIMIC-CXR images at 512 px); a smoke run's
numbers come from SynthCXR, the rule labeler and reference encoders, and the frame says which.
"""

from __future__ import annotations

import math

import pandas as pd

from unixlib.experiments import paper_rows

LLM_CXR_T2, LLM_CXR_T3, UNIX_T2, UNIX_T3 = "LLM-CXR (unified)", "LLM-CXR", "UniX (unified)", "UniX"
MICRO14 = 0  # position of micro-F1-14 in a Table 2 row's F1 tuple
FD = 0  # position of FD in a Table 3 row's values


def billions(params: str) -> float:
    """A quoted parameter count ("12B", "0.86B", "1.5B") in billions; NaN when it is not a
    number ("-", "<1B": no point on a parameter axis)."""
    text = params.strip()
    if not text.endswith("B") or text.startswith("<"):
        return math.nan
    try:
        return float(text[:-1])
    except ValueError:
        return math.nan


def _table2(model: str) -> tuple[float, float]:
    """(micro-F1-14 with uncertain as positive in %, parameters in billions) of a quoted row."""
    row = next(r for r in paper_rows.TABLE2 if r[0] == model)
    return float(row[3][MICRO14]), billions(row[1])


def _table3(model: str, res: int) -> tuple[float, float]:
    """(FD-RadDino, parameters in billions) of a quoted Table 3 row at resolution ``res``."""
    row = next(r for r in paper_rows.TABLE3 if r[0] == model and r[2] == res)
    return float(row[3 + FD]), billions(row[1])


def gain(ours: float, theirs: float, higher_is_better: bool) -> float:
    """Relative improvement over ``theirs`` in %: ``(ours - theirs) / theirs`` when higher is
    better, ``(theirs - ours) / theirs`` when lower is (FD); NaN when either is missing."""
    if ours is None or not math.isfinite(ours) or not theirs:
        return math.nan
    return 100 * ((ours - theirs) if higher_is_better else (theirs - ours)) / theirs


def headlines(
    micro14_upos: float | None = None,
    fd: float | None = None,
    params: float | None = None,
    setting: str = "this run",
) -> tuple[pd.DataFrame, list[str]]:
    """The three claims, from the paper's quoted rows and from this run.

    Args:
        micro14_upos: this run's micro-F1-14 (uncertain as positive), in % (Table 2).
        fd: this run's FD of its final (stage-3) images, the paper's mean of 4 shards (Table 3).
        params: this run's parameter count in billions (both branches, no VAE).
        setting: what this run's numbers are measured on, said beside them (e.g. "SynthCXR
            64 px, rule labeler, reference CNN"); the claims are the paper's only on its data.
    Returns:
        (one row per claim: ``claim``, ``formula``, ``paper``, ``paper value``, ``this run``,
        ``this run value``, ``setting``; the sentences a notebook prints).
    """
    f1_llm, p_llm = _table2(LLM_CXR_T2)
    f1_unix, p_branch = _table2(UNIX_T2)
    fd_llm, _ = _table3(LLM_CXR_T3, 256)
    fd_unix, _ = _table3(UNIX_T3, 512)
    p_unix = 2 * p_branch  # two branches of 1.5B each
    rows = [
        (
            "+46.1% understanding",
            "(F1 - F1_LLM-CXR) / F1_LLM-CXR, micro-F1-14, uncertain as positive",
            f"({f1_unix} - {f1_llm}) / {f1_llm}",
            gain(f1_unix, f1_llm, True),
            _formula(micro14_upos, f1_llm),
            gain(micro14_upos, f1_llm, True),
        ),
        (
            "+24.2% generation",
            "(FD_LLM-CXR - FD) / FD_LLM-CXR, FD-RadDino (UniX 512 px, LLM-CXR 256 px)",
            f"({fd_llm} - {fd_unix}) / {fd_llm}",
            gain(fd_unix, fd_llm, False),
            _formula(fd, fd_llm, lower=True),
            gain(fd, fd_llm, False),
        ),
        (
            "25% of the parameters",
            "parameters / parameters_LLM-CXR (UniX: two branches of 1.5B)",
            f"2 x {p_branch:g}B / {p_llm:g}B",
            100 * p_unix / p_llm,
            f"{params:.3g}B / {p_llm:g}B" if params else "n/a",
            100 * params / p_llm if params else math.nan,
        ),
    ]
    cols = ["claim", "formula", "paper", "paper value", "this run", "this run value"]
    frame = pd.DataFrame(rows, columns=cols).assign(setting=setting)
    return frame, [_sentence(r, setting) for r in frame.to_dict("records")]


def _formula(ours: float | None, theirs: float, lower: bool = False) -> str:
    """This run's formula with its numbers, or "n/a" without a number."""
    if ours is None or not math.isfinite(ours):
        return "n/a"
    return f"({theirs} - {ours:.3f}) / {theirs}" if lower else f"({ours:.1f} - {theirs}) / {theirs}"


def _sentence(row: dict, setting: str) -> str:
    """'<claim>: paper <formula> = <value>%; this run (<setting>) <formula> = <value>%'."""
    ours = row["this run value"]
    mine = f"{row['this run']} = {ours:.1f}%" if math.isfinite(ours) else "not measured by this run"
    return (
        f"{row['claim']} [{row['formula']}]: paper {row['paper']} = {row['paper value']:.1f}%; "
        f"{setting}: {mine} (against the paper's quoted LLM-CXR row)"
    )


def comparison(
    micro14_upos: float | None, fd: float | None, params: float | None, label: str = "this run"
) -> pd.DataFrame:
    """Fig. 1's cross-model data: every quoted model with a micro-F1-14 (uncertain as positive,
    Table 2) or an FD (Table 3), its parameter count in billions (NaN when the paper gives none
    or only "<1B"), and this run's row. Columns ``model, task, value, params_b, source``;
    ``task`` is "understanding" (higher is better) or "generation" (lower is better)."""
    rows = []
    for model, params_text, _uneg, upos in paper_rows.TABLE2:
        if math.isfinite(upos[MICRO14]):
            rows.append([model, "understanding", upos[MICRO14], _per_model(model, params_text)])
    for model, params_text, res, *values in paper_rows.TABLE3:
        name = f"{model} ({res} px)"
        rows.append([name, "generation", values[FD], _per_model(model, params_text)])
    frame = pd.DataFrame(rows, columns=["model", "task", "value", "params_b"])
    frame["source"] = "paper (quoted)"
    ours = [
        [label, "understanding", micro14_upos, params, "this run"],
        [label, "generation", fd, params, "this run"],
    ]
    ours = [r for r in ours if r[2] is not None and math.isfinite(r[2])]
    return pd.concat([frame, pd.DataFrame(ours, columns=frame.columns)], ignore_index=True)


def _per_model(model: str, params_text: str) -> float:
    """UniX's whole parameter count (two 1.5B branches), any other model's as quoted."""
    b = billions(params_text)
    return 2 * b if model.startswith("UniX") else b
