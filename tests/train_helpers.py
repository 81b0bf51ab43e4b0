"""Shared pieces of the training tests: a tiny processed dataset and tiny model configs.

The dataset mirrors notebook 01's layout (``<run>/data/processed.parquet`` + ``tokenizer/``) and
is built once per pytest session under the session's base temp folder, whichever test module
asks first (a plain session fixture imported into several modules would be built per module).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch

from unixlib.data import processed
from unixlib.data.sources.prepare import prepare
from unixlib.data.text.clean import clean_manifest
from unixlib.train.config import TrainConfig

REPO_ROOT = Path(__file__).resolve().parents[1]
N_TRAIN = 48

# A two-block model of width 64: ~0.3M parameters, a training step takes tens of milliseconds.
TINY_MODEL: dict[str, Any] = {
    "num_layers": 2,
    "hidden_size": 64,
    "num_heads": 2,
    "num_kv_heads": 2,
    "intermediate_size": 128,
    "vit_hidden_size": 32,
    "vit_num_layers": 1,
    "vit_num_heads": 2,
    "vit_intermediate_size": 64,
    "repa_depth": 1,
    "repa_hidden_size": 32,
    "repa_target_dim": 32,  # REPA's default target is the stage's own SigLIP (width 32 here)
}


def data_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder whose ``data/`` holds 48/4/4 SynthCXR images (64 px), cleaned reports,
    labels and a 300-token BPE, as notebook 01 writes them. Built once per session."""
    run = tmp_path_factory.getbasetemp() / "train_data_run"
    paths = processed.DataPaths.of_run(run)
    if paths.processed.is_file():
        return run
    prepare("synth", paths.root, image_size=64, n_train=N_TRAIN, n_validate=4, n_test=4, seed=0)
    clean_manifest(paths.manifest, paths.manifest_clean)
    data = processed.fill_labels(pd.read_parquet(paths.manifest_clean))
    processed.build_tokenizer(data, paths.tokenizer, vocab_size=300)
    data.to_parquet(paths.processed)
    return run


def tiny_config(data: Path, run_dir: Path, stage: int = 1, **overrides: Any) -> TrainConfig:
    """A TrainConfig of the tiny model on the fixture's data: batch 4, 32 px, short reports,
    no warm-up, a learning rate that moves a random model visibly in ~20 steps."""
    values: dict[str, Any] = {
        "stage": stage,
        "run_dir": str(run_dir),
        "data_dir": str(data / "data"),
        "model_overrides": dict(TINY_MODEL),
        "image_size": 32,
        "steps": 6,
        "batch_size": 4,
        "lr": 3e-3,
        "warmup_steps": 0,
        "max_report_tokens": 40,
        "log_every": 1000,
        "device": "cpu",
        "mixed_precision": "no",
    }
    values.update(overrides)
    if stage > 1:  # the REPA target SigLIP at 32 px, as stage 1 trained it (cfg.image_size)
        values["model_overrides"].setdefault("image_size_und", 32)
    return TrainConfig(**values)


def losses(run_dir: Path, key: str = "loss") -> list[float]:
    """The per-step ``key`` column of ``<run_dir>/metrics.jsonl``, in step order."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, len(rows) + 1))
    return [r[key] for r in rows]


def subprocess_env() -> dict[str, str]:
    """Environment for a child training process: the repo importable, offline, and the same
    intra-op thread count as this process (fp32 reductions split differently across threads)."""
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(REPO_ROOT),
        HF_HUB_OFFLINE="1",
        OMP_NUM_THREADS=str(torch.get_num_threads()),
    )
    return env
