"""Notebook 06's studies: settings from the notebook's parameters, then training and measuring
every run (``outputs.py`` writes and reads the results).

    settings = AblationSettings.from_params(params)
    result = run(settings)            # trains (or reuses) every run, measures every arm
    outputs.save(result, figures_dir) # tables (CSV/Markdown/LaTeX), figures, summary JSON
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from unixlib.experiments.ablations import summary
from unixlib.experiments.ablations.measure import Measurer, StudyData, measure
from unixlib.experiments.ablations.runner import (
    TrainedRun,
    as_int_seeds,
    load_model,
    train_runs,
)
from unixlib.experiments.ablations.stats import MEASURES as MEASURES_BY_KEY
from unixlib.experiments.ablations.variants import STUDIES, Variant, select
from unixlib.experiments.evaluation import EvalSettings, build_encoders, load_inputs

# The ablations' common start for the shuffled-report chance row and the "no training" row.
BASELINE_START = "stage2/final"
# The measures each study's table shows.
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
            packing=p.get("packing", True),
            max_tokens=p.get("max_tokens", 0),
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
        note = (
            f"{p.get('scale', '')} scale: {len(seeds)} training seed{'s' if len(seeds) > 1 else ''}"
            f", {p['steps_gen']} generation / {p['steps_und']} understanding steps per arm"
        )
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
    measured: pd.DataFrame  # one row per (arm, seed): each measure's value, and the costs
    baselines: pd.DataFrame  # one row per baseline: each measure's value
    verdicts: pd.DataFrame  # one row per claim: paired difference, interval, p, direction
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)  # study -> with intervals
    scale: str = ""  # the main run's data, model and schedule (scale.RunScale.phrase)
    n_studies: int = 0  # test studies every measure is computed on
    data: dict = field(default_factory=dict)  # (run, seed) -> StudyData: per-study outputs
    measurer: Measurer | None = None  # the references the measures compare with


def _point_values(measurer: Measurer, data: StudyData) -> dict[str, float]:
    """Each measure's value on one arm's (or baseline's) data, F1 in %."""
    out = {}
    for key, m in MEASURES_BY_KEY.items():
        arrays = m.arrays(measurer, data)
        if arrays is not None:
            out[key] = m.make()(*arrays) * m.scale
    return out


def run(s: AblationSettings) -> AblationResult:
    """Train every run of the selected studies for every seed, then measure every arm on the
    test studies (with intervals over them) and compare each with its study's reference."""
    variants = select(s.studies, cleaning_start=s.cleaning_start)
    trained = train_runs(variants, s.recipes, s.run_dir, s.seeds, s.batch_size, s.nproc)
    inputs = load_inputs(s.evaluation)
    encoders = build_encoders(inputs, s.evaluation)  # notebook 05's cache
    measurer = Measurer(inputs, encoders, s.evaluation)
    cost, data = measure(variants, trained, measurer, s.device)
    start = load_model(f"{s.run_dir}/{BASELINE_START}", s.device)
    base = measurer.baselines(start, "stage-2 checkpoint")
    points = {key: _point_values(measurer, d) for key, d in data.items()}
    measured = cost.assign(**{"_k": list(zip(cost["run"], cost["seed"], strict=True))})
    measured = pd.concat([measured, pd.DataFrame([points[k] for k in measured["_k"]])], axis=1)
    measured = measured.drop(columns="_k")
    baselines = pd.DataFrame([{"label": k, **_point_values(measurer, d)} for k, d in base.items()])
    r = s.evaluation.resampling
    runs_of = {v.label: v.run for v in variants}
    labels = {st: [v.label for v in variants if v.study == st] for st in s.studies}
    claims = summary.claims(labels)
    verdicts = summary.verdicts(measurer, data, runs_of, s.seeds, claims, r)
    result = AblationResult(s, variants, trained, measured, baselines, verdicts)
    result.scale, result.n_studies = inputs.scale, len(measurer.y_ref)
    result.data, result.measurer = data, measurer
    for st in s.studies:
        arms_ = [(v.label, v.run) for v in variants if v.study == st]
        relevant = {k: d for k, d in base.items() if _relevant(st, k)}
        table = summary.study_table(measurer, data, arms_, s.seeds, relevant, cost, r)
        result.tables[st] = table[[c for c in table if _shown(st, c)]]
    return result


def _relevant(study: str, baseline: str) -> bool:
    """Which baselines a study's table shows: report baselines where F1 is measured, image
    baselines where images are."""
    reports = "report" in baseline and "shuffled" not in baseline
    return reports if study == "cleaning" else True


def _shown(study: str, column: str) -> bool:
    base = column.removesuffix("_low").removesuffix("_high").removesuffix("_sd")
    return base not in MEASURES_BY_KEY or base in MEASURES[study]


def paper_rows(variants: list[Variant], study: str) -> dict[str, dict] | None:
    rows = {v.label: v.paper for v in variants if v.study == study and v.paper}
    return rows or None
