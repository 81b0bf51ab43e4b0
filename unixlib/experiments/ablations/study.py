"""Notebook 06 in one call per step: settings from the notebook's parameters, training and
measuring every run, then the tables, figures and verdicts of each study.

    settings = AblationSettings.from_params(params)
    result = run(settings)            # trains (or reuses) every run, measures every arm
    save(result, figures_dir)         # tables (CSV/Markdown/LaTeX), figures, summary JSON
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from unixlib.experiments.ablations import summary
from unixlib.experiments.ablations.runner import (
    Measurer,
    TrainedRun,
    as_int_seeds,
    load_model,
    loss_curves,
    measure,
    train_runs,
)
from unixlib.experiments.ablations.variants import STUDIES, Variant, select
from unixlib.experiments.evaluation import EvalSettings, build_encoders, load_inputs
from unixlib.train.config import STAGE_DEFAULTS
from unixlib.viz.ablations import curves_chart, study_chart
from unixlib.viz.tables import save_table

# The ablations' common start for the shuffled-report chance row and the "no training" row.
BASELINE_START = "stage2/final"

CAPTIONS = {
    "table5": "Table 5 (joint optimisation): from the stage-2 checkpoint, the same number of "
    "generation steps under five strategies",
    "coupling": "Coupling: MoT cross-modal self-attention vs shared weights vs final-states "
    "conditioning (from stage 1, stage-2 recipe, same steps and batch)",
    "repa": "REPA on vs off in stage 2 (from stage 1, same steps)",
    "cleaning": "Cleaned vs raw reports for stage 1 (F1 against cleaned references)",
}
MEASURES = {
    "table5": ("micro_f1", "macro_f1", "fd", "kd", "faithfulness"),
    "coupling": ("micro_f1", "fd", "kd", "alignment", "faithfulness", "step_seconds"),
    "repa": ("fd", "kd", "alignment", "faithfulness"),
    "cleaning": ("micro_f1", "macro_f1"),
}


@dataclass
class AblationSettings:
    """Notebook 06's parameters, grouped: what to run, the training recipes, the evaluation."""

    run_dir: str
    studies: list[str]
    seeds: list[int]
    batch_size: int  # generation examples per step (examples of the task for stage-1 runs)
    recipes: dict[int, dict[str, Any]]  # stage -> flat TrainConfig parameters
    evaluation: EvalSettings
    cleaning_start: str = "stage1/vision_pretrained"
    device: str = "auto"
    nproc: int = 1  # processes per training run (torchrun when > 1)
    scale_note: str = ""  # e.g. "1 seed, smoke scale", printed in every caption

    @classmethod
    def from_params(cls, p: dict[str, Any]) -> AblationSettings:
        studies = list(p.get("studies", STUDIES))
        gen = dict(
            steps=p["steps_gen"],
            lr=p["lr_gen"],
            warmup_steps=p["warmup_steps"],
            image_size=p["image_size"],
            text_dropout_prob=p["text_dropout_prob"],
            max_report_tokens=p["max_report_tokens"],
            timestep_shift=p["timestep_shift"],
        )
        common = dict(
            mixed_precision=p.get("mixed_precision", "auto"),
            device=p["device"],
            grad_accum=p.get("grad_accum", 1),
            parallel=p.get("parallel", "auto"),
            activation_checkpointing=p.get("activation_checkpointing", False),
            checkpoint_every=0,
            log_every=10**9,
        )
        recipes = {
            1: dict(
                steps=p["steps_und"],
                lr=p["lr_und"],
                warmup_steps=p["warmup_steps"],
                image_size=p["und_image_size"],
                max_report_tokens=p["max_report_tokens"],
                janus_dir=p.get("janus_dir", ""),
                **common,
            ),
            2: dict(gen, repa_weight=p["repa_weight"], **common),
            3: dict(gen, **common),
        }
        seeds = as_int_seeds(p["seeds"])
        ev = EvalSettings.from_params(
            {
                **p,
                "stage": 3,
                "batch_size": p["eval_batch_size"],
                # real images for the features at the arms' generation size (evaluators.py)
                "real_image_size": p.get("real_image_size") or p["image_size"],
            }
        )
        note = f"{len(seeds)} seed{'s' if len(seeds) > 1 else ''}, {p.get('scale', '')} scale"
        return cls(
            p["run_dir"],
            studies,
            seeds,
            p["batch_size"],
            recipes,
            ev,
            p.get("cleaning_start", "stage1/vision_pretrained"),
            p["device"],
            p.get("nproc", 1),
            note,
        )


@dataclass
class AblationResult:
    settings: AblationSettings
    variants: list[Variant]
    trained: dict[tuple[str, int], TrainedRun]
    measured: pd.DataFrame  # one row per (arm, seed)
    baselines: pd.DataFrame
    verdicts: pd.DataFrame
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)


def run(s: AblationSettings) -> AblationResult:
    """Train every run of the selected studies for every seed, then measure every arm."""
    variants = select(s.studies, cleaning_start=s.cleaning_start)
    trained = train_runs(variants, s.recipes, s.run_dir, s.seeds, s.batch_size, s.nproc)
    inputs = load_inputs(s.evaluation)
    encoders = build_encoders(inputs, s.evaluation)  # notebook 05's cache
    measurer = Measurer(inputs, encoders, s.evaluation)
    measured = measure(variants, trained, measurer, s.device)
    start = load_model(f"{s.run_dir}/{BASELINE_START}", s.device)
    base = measurer.baselines(start, "stage-2 checkpoint")
    labels = {
        st: list(dict.fromkeys(measured.loc[measured["study"] == st, "label"])) for st in s.studies
    }
    verdicts = summary.verdicts(measured, summary.claims(labels))
    result = AblationResult(s, variants, trained, measured, base, verdicts)
    for st in s.studies:
        cols = ["label", *[m for m in MEASURES[st] if m in base]]
        relevant = base[cols].dropna(how="all", subset=cols[1:])
        result.tables[st] = summary.study_table(measured, st, relevant, paper_rows(variants, st))
    return result


def paper_rows(variants: list[Variant], study: str) -> dict[str, dict] | None:
    rows = {v.label: v.paper for v in variants if v.study == study and v.paper}
    return rows or None


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
        caption=f"{CAPTIONS[study]} ({s.scale_note}; F1 in %, "
        "micro/macro over 14 classes, uncertain as positive)",
        floatfmt=".4g",
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
        caption="Ablations: direction vs the "
        f"paper, and whether it exceeds the seed spread ({s.scale_note})",
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
