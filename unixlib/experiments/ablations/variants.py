"""Every ablation run as a set of stage flags of the one training loop (no copy of the loop).

A :class:`Variant` names where it starts (a checkpoint of the main series) and the
:class:`~unixlib.train.config.TrainConfig` fields it changes. The four studies::

    table5    from stage 2 (the paper's Table 5): gen-only 0:1 with und frozen; und+gen at
              und:gen 1:1, 1:2, 1:4 and 0:1. Generation examples per step are the same in every
              variant (the batch grows by the understanding share): "the same number of
              generation steps".
    coupling  from stage 1, stage-2 recipe: MoT cross-modal self-attention (the paper) vs one
              shared weight set (mot=False) vs final-states conditioning ("a diffusion model
              stacked on a VLM"); generation data only (0:1), same steps and batch.
    repa      from stage 1, stage-2 recipe: REPA weight 0.5 (the paper) vs 0.
    cleaning  from the vision-pretrained stage-1 start: cleaned reports vs the raw reports' own
              FINDINGS / IMPRESSION sections (same sections, same length budget: only the
              rewriting differs), stage-1 recipe.

Variants with identical flags are one run (the coupling study's MoT arm is the REPA study's
"on" arm).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from unixlib.config import project_path
from unixlib.train.config import TrainConfig, stage_config
from unixlib.train.loop import VISION_PRETRAINED

STUDIES = ("table5", "coupling", "repa", "cleaning")
# Both cleaning arms train on the same information: the FINDINGS and IMPRESSION sections of each
# report (rewritten by the cleaner, or raw with their noise), cut at the same length. Raw reports
# with their headers have ~210 tokens (SynthCXR, median) and a 96-token budget kept none of their
# findings, so the raw arm then lost by truncation, not by noise; the raw sections have a median
# of 52 tokens and 98% fit in 160 (cleaned: 36 and 100%), measured on the smoke run's training split.
CLEANING_REPORT_TOKENS = 160
ALL_GROUPS = ("vision", "connector", "und", "gen")


@dataclass(frozen=True)
class Variant:
    """One arm of a study.

    Attributes:
        study: one of ``STUDIES``.
        label: the row name in the study's table.
        run: the name of the training run (variants of several studies may share one).
        stage: the TrainConfig stage whose defaults apply (1, 2 or 3).
        start: the main series' checkpoint it starts from, relative to the run root.
        flags: TrainConfig fields set on top of the study's recipe (``model_overrides`` merged).
        paper: the paper's numbers for this arm, when it reports them (Table 5 only).
    """

    study: str
    label: str
    run: str
    stage: int
    start: str
    flags: dict[str, Any] = field(default_factory=dict, hash=False)
    paper: dict[str, float] = field(default_factory=dict, hash=False)

    @property
    def draws(self) -> bool:
        """Whether the arm trains the generation branch (so its images are measured)."""
        return self.stage > 1


def _table5() -> list[Variant]:
    # PAPER.md Table 5 (micro/macro F1-14 in %, FD and KD with RadDino).
    paper = {
        ("gen", (0, 1)): (53.2, 36.0, 62.114, 0.041),
        ("all", (1, 1)): (43.7, 29.5, 65.747, 0.047),
        ("all", (1, 2)): (42.9, 28.3, 76.125, 0.064),
        ("all", (1, 4)): (44.9, 28.4, 76.108, 0.064),
        ("all", (0, 1)): (13.9, 6.3, 74.815, 0.054),
    }
    out = []
    for (groups, ratio), nums in paper.items():
        trainable = ("gen",) if groups == "gen" else ALL_GROUPS
        who = "gen only (und frozen)" if groups == "gen" else "und + gen"
        out.append(
            Variant(
                study="table5",
                label=f"{who} {ratio[0]}:{ratio[1]}",
                run=f"t5_{groups}_{ratio[0]}to{ratio[1]}",
                stage=3,
                start="stage2/final",
                flags={"trainable": trainable, "task_ratio": ratio},
                paper=dict(zip(("micro_f1", "macro_f1", "fd", "kd"), nums, strict=True)),
            )
        )
    return out


def _from_stage1(study: str, label: str, run: str, flags: dict[str, Any]) -> Variant:
    return Variant(study, label, run, 2, "stage1/final", flags)


def all_variants(cleaning_start: str = f"stage1/{VISION_PRETRAINED}") -> list[Variant]:
    """Every arm of every study, in table order. ``cleaning_start``: where the cleaning study's
    stage-1 runs start (relative to the run root; "" = fresh weights, with the recipe's
    ``janus_dir`` when it names one)."""
    mot = _from_stage1("coupling", "MoT cross-modal self-attention (paper)", "g_mot", {})
    return [
        *_table5(),
        mot,
        _from_stage1(
            "coupling",
            "shared weights (mot=False)",
            "g_shared",
            {"trainable": ("und", "gen"), "model_overrides": {"mot": False}},
        ),
        _from_stage1(
            "coupling",
            "final-states conditioning (stacked VLM)",
            "g_final_states",
            {"model_overrides": {"gen_conditioning": "final_states"}},
        ),
        Variant("repa", "REPA on (weight 0.5, paper)", mot.run, 2, mot.start, mot.flags),
        _from_stage1("repa", "REPA off", "g_no_repa", {"repa_weight": 0.0}),
        Variant(
            "cleaning",
            "cleaned reports (paper)",
            "u_clean",
            1,
            cleaning_start,
            {"report_column": "report_clean", "max_report_tokens": CLEANING_REPORT_TOKENS},
        ),
        Variant(
            "cleaning",
            "raw report sections",
            "u_raw",
            1,
            cleaning_start,
            {"report_column": "report_raw_sections", "max_report_tokens": CLEANING_REPORT_TOKENS},
        ),
    ]


def select(studies: list[str] | tuple[str, ...], **kw: str) -> list[Variant]:
    """The variants of the named studies (``kw``: as :func:`all_variants`); an unknown name is
    an error listing the known ones."""
    unknown = sorted(set(studies) - set(STUDIES))
    if unknown:
        raise ValueError(f"unknown studies {unknown}; choose from {STUDIES}")
    return [v for v in all_variants(**kw) if v.study in studies]


def runs(variants: list[Variant]) -> dict[str, Variant]:
    """One variant per distinct run (the first that names it), in order."""
    out: dict[str, Variant] = {}
    for v in variants:
        if v.run in out and out[v.run].flags != v.flags:
            raise ValueError(f"run {v.run!r} is named by variants with different flags")
        out.setdefault(v.run, v)
    return out


def run_config(
    v: Variant, recipe: dict[str, Any], run_dir: str, seed: int, batch_size: int
) -> TrainConfig:
    """The TrainConfig of one run of ``v`` for ``seed``.

    Args:
        recipe: flat TrainConfig parameters shared by every run of the stage (steps, lr, ...),
            as a notebook passes them to ``stage_config``; ``model_overrides`` are merged.
        run_dir: the main series' run root (``<run_dir>/ablations/<run>/seed<k>`` is written).
        batch_size: examples of the run's task per step, generation examples when it generates;
            a run that mixes in understanding data gets a batch larger by that share (Table 5's
            "same number of generation steps").
    """
    u, g = v.flags.get("task_ratio", (1, 0) if v.stage == 1 else (0, 1))
    batch = batch_size if g == 0 else batch_size * (u + g) // g
    if g and batch_size * (u + g) % g:
        raise ValueError(
            f"batch_size {batch_size} cannot keep {batch_size} generation examples "
            f"at und:gen {u}:{g}"
        )
    params = {**recipe, **{k: x for k, x in v.flags.items() if k != "model_overrides"}}
    params["model_overrides"] = {
        **recipe.get("model_overrides", {}),
        **v.flags.get("model_overrides", {}),
    }
    start = f"{run_dir}/{v.start}" if v.start else ""
    if start and not project_path(start).is_dir():
        raise FileNotFoundError(
            f"{v.label}: its start {start} is missing (run notebooks 02-04 "
            "first; the cleaning study needs 02's vision_pretrain_steps > 0 "
            "or cleaning_start)"
        )
    params.update(run_dir=run_dir, seed=seed, batch_size=batch, init_from=start)
    cfg = stage_config(v.stage, params)
    cfg.run_dir = f"{run_dir}/ablations/{v.run}/seed{seed}"
    return cfg
