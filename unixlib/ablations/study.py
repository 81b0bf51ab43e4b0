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

from unixlib.ablations import summary
from unixlib.ablations.runner import (
    Measurer,
    TrainedRun,
    as_int_seeds,
    load_model,
    loss_curves,
    measure,
    train_runs,
)
from unixlib.ablations.variants import STUDIES, Variant, select
from unixlib.eval.pipeline import EvalSettings, build_encoders, load_inputs
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
                "stage2_image_size": p["image_size"],
                "batch_size": p["eval_batch_size"],
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


def save(result: AblationResult, out: Path) -> list[str]:
    """Every table and figure of the studies run, the verdicts and ``ablations_summary.json``;
    returns the verdict sentences."""
    s = result.settings
    for st, table in result.tables.items():
        stem = "table5_joint_optimisation" if st == "table5" else f"ablation_{st}"
        save_table(
            table,
            out,
            stem,
            caption=f"{CAPTIONS[st]} ({s.scale_note}; F1 in %, "
            "micro/macro over 14 classes, uncertain as positive)",
            floatfmt=".4g",
        )
        study_chart(
            result.measured,
            st,
            MEASURES[st],
            result.baselines,
            out / f"{stem}.png",
            CAPTIONS[st].split(":")[0] + f" ({s.scale_note})",
            paper_rows(result.variants, st),
        )
    names = {v.run: v.label for v in result.variants}
    for st, terms in (("repa", ("flow", "repa")), ("cleaning", ("ce",))):
        if st in s.studies:
            runs = [v.run for v in result.variants if v.study == st]
            curves_chart(
                loss_curves(result.trained, runs),
                names,
                terms,
                out / f"ablation_{st}_curves.png",
                f"{CAPTIONS[st].split(':')[0]}: training losses",
            )
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
