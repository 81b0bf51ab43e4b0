"""The official UniX weights as a stage's result: ``release-eval`` loads instead of training.

The release (ZrH42/UniX) publishes one checkpoint, the model after stage 3, plus its kl-f16 VAE.
:func:`load_release_stage` imports it strictly (every key of the ``paper`` preset, shapes
checked; ``weights_release.import_unix_release``) with the official sequence layout, and writes it as
``<run_dir>/final`` of the stage, so notebooks 02-05 read it exactly as they read a trained
stage. Stages 1, 2 and 3 all receive the same weights: the released stage-1 and stage-2 models
were not published, so the "stage 2" (256 px) rows of the tables come from the final model
sampled at 256 px, not from the paper's stage-2 checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from unixlib.config import project_path
from unixlib.data.processed import load_processed
from unixlib.model.config import preset
from unixlib.model.saving import CONFIG_FILE, MODEL_FILE, save_pretrained
from unixlib.model.unix import UniX
from unixlib.model.weights_release import import_unix_release
from unixlib.train.config import TrainConfig
from unixlib.train.setup import model_config

RELEASE_RECORD = "release.json"


def release_config(cfg: TrainConfig, release_dir: str | Path) -> dict:
    """UniXConfig values of the released model for the stage ``cfg`` (its image size, the
    tokenizer's special ids, the official layout)."""
    _, tokenizer, _ = load_processed(project_path(cfg.data_dir))
    values = model_config(cfg, tokenizer)
    values.update(sequence_layout="official", vit_hidden_act="gelu")
    if cfg.stage > 1:
        values.setdefault("max_latent_size", 32)
    return values


def load_release_stage(release_dir: str | Path, cfg: TrainConfig) -> Path:
    """Import the official weights into ``<cfg.run_dir>/final`` (once; reused when the record
    names the same directory) and return that folder. Raises ``WeightImportError`` naming every
    missing or mismatched key."""
    release_dir = project_path(release_dir)
    out = project_path(cfg.run_dir) / "final"
    record = out / RELEASE_RECORD
    done = (out / MODEL_FILE).is_file() and (out / CONFIG_FILE).is_file() and record.is_file()
    if done and json.loads(record.read_text()).get("release_dir") == str(release_dir):
        print(f"stage {cfg.stage}: the official weights already in {out}")
        return out
    torch.manual_seed(cfg.seed)
    model = UniX(preset("paper", **release_config(cfg, release_dir)))
    report = import_unix_release(model, release_dir, strict=True)
    print(report)
    save_pretrained(model, out)
    record.write_text(
        json.dumps(
            {
                "release_dir": str(release_dir),
                "stage": cfg.stage,
                "loaded": len(report.loaded),
                "notes": report.notes,
            }
        )
        + "\n"
    )
    return out
