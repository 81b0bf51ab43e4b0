"""Choosing a checkpoint on validation prompts, never on what a figure or table reports.

Stage 3 of the smoke profile is short, and how many steps it needs to read the report's side
("left" vs "right" effusion) was first judged by looking at Fig. 4 itself: a choice tuned on the
figure that reports it. Here the choice is made on *validation patients* instead: SynthCXR
renders the Fig. 4 cases for other patients (another seed than the figure's), every saved
checkpoint of the stage draws them, and the checkpoint whose one-sided effusions sit most on
their own side (:func:`~unixlib.experiments.fig4.laterality`; ties broken by the mean finding
contrast) becomes the stage's ``final/`` model. Fig. 4 is then drawn once, from that model, on
its own prompts.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd

from unixlib.config import project_path
from unixlib.data.text.tokenizer import ReportTokenizer
from unixlib.eval.finding_contrast import finding_contrast
from unixlib.experiments import fig4
from unixlib.model.unix import UniX
from unixlib.train.checkpoint import list_checkpoints, load_sampling_weights

SELECTION_FILE = "selection.json"
VALIDATION_SEED_OFFSET = 1000  # validation patients: SynthCXR seed + this (Fig. 4 uses seed)


def validation_scores(
    model: UniX,
    run_dir: str | Path,
    tokenizer: ReportTokenizer,
    seed: int,
    n: int = 8,
) -> pd.DataFrame:
    """Every checkpoint of the stage in ``run_dir`` on the validation patients' Fig. 4 cases:
    ``step``, ``side`` (mean over the one-sided effusions of own side minus other side, as
    fractions of the reference's strength) and ``contrast`` (mean finding contrast ratio)."""
    size = model.config.image_size_gen
    prompts, refs = fig4.synthetic_prompts(seed + VALIDATION_SEED_OFFSET, size)
    rows = []
    for step, path in list_checkpoints(project_path(run_dir) / "checkpoints"):
        load_sampling_weights(path, model)
        samples = fig4.generate(model.eval(), prompts, tokenizer, n=n, seed=seed)
        side = fig4.laterality(samples, refs)
        contrast = finding_contrast(samples, refs)
        rows.append(
            {
                "step": step,
                "side": float((side["own_side"] - side["other_side"]).mean()),
                "contrast": float(contrast["ratio"].mean()),
            }
        )
    if not rows:
        raise FileNotFoundError(f"no checkpoint under {project_path(run_dir) / 'checkpoints'}")
    return pd.DataFrame(rows)


def best_step(scores: pd.DataFrame) -> int:
    """The checkpoint that reads the side best on validation (then the higher contrast)."""
    ranked = scores.sort_values(["side", "contrast"], ascending=False)
    return int(ranked["step"].iloc[0])


def export_selected(
    model: UniX, run_dir: str | Path, step: int, scores: pd.DataFrame, tokenizer: ReportTokenizer
) -> Path:
    """Make checkpoint ``step`` the stage's ``final/`` model (its weights, the tokenizer, the
    model card with a line saying how it was chosen) and record the choice in
    ``<run_dir>/selection.json``. Returns the ``final/`` directory."""
    root = project_path(run_dir)
    path = dict(list_checkpoints(root / "checkpoints"))[step]
    load_sampling_weights(path, model)
    final = root / "final"
    card = (final / "README.md").read_text() if (final / "README.md").is_file() else ""
    staging = root / "final.selected"
    shutil.rmtree(staging, ignore_errors=True)
    note = (
        f"\n\nSelected checkpoint: step {step}, chosen on validation patients' Fig. 4 cases "
        f"(SynthCXR seed + {VALIDATION_SEED_OFFSET}) by how well one-sided effusions are drawn "
        "on their own side (unixlib/experiments/selection.py).\n"
    )
    model.save_pretrained(staging, tokenizer=tokenizer, card=card + note)
    shutil.rmtree(final, ignore_errors=True)
    staging.rename(final)
    record = {"step": step, "scores": scores.to_dict(orient="records")}
    (root / SELECTION_FILE).write_text(json.dumps(record, indent=2) + "\n")
    return final
