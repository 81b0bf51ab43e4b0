"""Notebook 06's outputs: what each arm changes, every study's table (with intervals) and
figure, the loss curves, the verdicts and their reading, and ``ablations_summary.json``."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from unixlib.experiments.ablations import summary
from unixlib.experiments.ablations.runner import loss_curves
from unixlib.experiments.ablations.study import (
    MEASURES,
    AblationResult,
    AblationSettings,
    paper_rows,
)
from unixlib.experiments.ablations.variants import select
from unixlib.train.config import STAGE_DEFAULTS
from unixlib.viz.ablations import curves_chart, study_chart
from unixlib.viz.tables import save_table

CAPTIONS = {
    "table5": "Table 5 (joint optimisation): from the stage-2 checkpoint, the same number of "
    "generation steps under five strategies",
    "coupling": "Coupling: MoT cross-modal self-attention vs shared weights vs final-states "
    "conditioning (from stage 1, stage-2 recipe, same steps and batch)",
    "repa": "REPA on vs off in stage 2 (from stage 1, same steps)",
    "cleaning": "Cleaned vs raw reports for stage 1 (F1 against cleaned references)",
}


def arms(s: AblationSettings) -> pd.DataFrame:
    """What every arm of the selected studies changes: one row per arm with its run, where it
    starts, the groups it trains, its und:gen data ratio, steps and model change."""
    rows = []
    for v in select(s.studies, cleaning_start=s.cleaning_start):
        recipe = s.recipes[v.stage]
        flags = v.flags
        trains = flags.get("trainable") or STAGE_DEFAULTS[v.stage]["trainable"]
        ratio = flags.get("task_ratio") or STAGE_DEFAULTS[v.stage]["task_ratio"]
        changes = {
            **flags.get("model_overrides", {}),
            **{k: val for k, val in flags.items() if k in ("repa_weight", "report_column")},
        }
        rows.append(
            {
                "study": v.study,
                "arm": v.label,
                "run": v.run,
                "starts from": v.start or "fresh weights",
                "recipe": f"stage {v.stage}",
                "trains": " + ".join(trains),
                "und:gen": f"{ratio[0]}:{ratio[1]}",
                "steps": recipe["steps"],
                "changes": ", ".join(f"{k}={val}" for k, val in changes.items()) or "-",
            }
        )
    return pd.DataFrame(rows)


def stem_of(study: str) -> str:
    """The file stem of a study's table and figure in the figures folder."""
    return "table5_joint_optimisation" if study == "table5" else f"ablation_{study}"


def save_study(
    result: AblationResult, study: str, out: Path
) -> tuple[pd.DataFrame | None, Figure | None]:
    """One study's table (CSV/Markdown/LaTeX) and figure; returns both (the notebook shows
    them, then the study's verdict sentences: :func:`study_verdicts`). A study the settings
    did not select gives ``(None, None)`` and says so."""
    s = result.settings
    if study not in result.tables:
        print(f"{study}: not run (studies = {s.studies})")
        return None, None
    table = result.tables[study]
    stem = stem_of(study)
    save_table(
        table,
        out,
        stem,
        caption=f"{CAPTIONS[study]}; {s.scale_note}; each value with its 95% bootstrap interval "
        f"over {result.n_studies} test studies (F1 in %, micro/macro over 14 classes, uncertain "
        f"as positive; faithfulness over all 14 classes); main run: {result.scale}",
        floatfmt=".4g",
        quoted=summary.quoted_rows(paper_rows(result.variants, study)),
        quoted_heading="The paper (quoted; MIMIC-CXR, 2K generation steps at full scale, "
        "RadDino features): not comparable in value to the rows above",
    )
    fig = study_chart(
        result.measured,
        study,
        MEASURES[study],
        result.baselines,
        out / f"{stem}.png",
        CAPTIONS[study].split(":")[0] + f" ({s.scale_note})",
        paper_rows(result.variants, study),
    )
    return table, fig


def save_curves(result: AblationResult, study: str, out: Path) -> Figure | None:
    """The training-loss curves of a study's runs (``repa``: flow and REPA; ``cleaning``: ce);
    None when the study was not run."""
    if study not in result.tables:
        return None
    terms = {"repa": ("flow", "repa"), "cleaning": ("ce",)}[study]
    names = {v.run: v.label for v in result.variants}
    runs = [v.run for v in result.variants if v.study == study]
    return curves_chart(
        loss_curves(result.trained, runs),
        names,
        terms,
        out / f"ablation_{study}_curves.png",
        f"{CAPTIONS[study].split(':')[0]}: training losses",
    )


def study_verdicts(result: AblationResult, study: str) -> list[str]:
    """The verdict sentences of one study."""
    rows = result.verdicts[result.verdicts["study"] == study] if len(result.verdicts) else None
    return [] if rows is None else summary.verdict_sentences(rows)


def study_reading(result: AblationResult, study: str) -> str:
    """Markdown for the notebook: how many of the study's claims this run supports,
    contradicts or cannot decide, then each verdict sentence."""
    rows = result.verdicts[result.verdicts["study"] == study] if len(result.verdicts) else None
    if rows is None or rows.empty:
        return f"No verdict for {study} (not run, or no measure to compare)."
    counts = rows["direction"].value_counts()
    head = (
        f"Of {len(rows)} comparisons with the paper's direction: {counts.get('agrees', 0)} agree, "
        f"{counts.get('contradicts', 0)} contradict, {counts.get('undecided', 0)} show no "
        f"detectable difference (95% paired interval over {result.n_studies} test studies; "
        f"{result.settings.scale_note})."
    )
    return head + "\n\n" + "\n".join(f"* {v}" for v in summary.verdict_sentences(rows))


def save(result: AblationResult, out: Path) -> list[str]:
    """Every study's table and figure, the loss curves, the verdicts table and
    ``ablations_summary.json``; returns every verdict sentence."""
    s = result.settings
    for st in result.tables:
        save_study(result, st, out)
    for st in ("repa", "cleaning"):
        if st in s.studies:
            save_curves(result, st, out)
    return save_summary(result, out)


def save_summary(result: AblationResult, out: Path) -> list[str]:
    """``ablation_verdicts`` (table) and ``ablations_summary.json``; returns the sentences."""
    s = result.settings
    save_table(
        result.verdicts,
        out,
        "ablation_verdicts",
        caption="Ablations: each arm against its study's reference on the same test studies "
        "(paired bootstrap: difference, 95% interval, p), and whether that agrees with the "
        "direction the paper reports or argues. The interval covers the sampling of test "
        "studies, not the spread between training seeds"
        + (" (one seed here: a verdict may not survive another seed)" if len(s.seeds) < 2 else "")
        + f"; {s.scale_note}; main run: {result.scale}",
        floatfmt=".4g",
    )
    sentences = summary.verdict_sentences(result.verdicts)
    (out / "ablations_summary.json").write_text(
        json.dumps(
            {
                "scale": s.scale_note,
                "seeds": s.seeds,
                "studies": s.studies,
                "measured": result.measured.to_dict(orient="records"),
                "baselines": result.baselines.to_dict(orient="records"),
                "verdicts": sentences,
            },
            indent=2,
            default=float,
        )
        + "\n"
    )
    return sentences
