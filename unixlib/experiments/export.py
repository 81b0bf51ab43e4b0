"""Export a stage of a notebook-series run as a self-contained model directory.

Training already writes ``<run>/stageN/final/`` as a model directory (weights, ``vae/``,
tokenizer, card). This adds what only exists later - notebook 05's metrics
(``evaluation_summary.json`` in the run's figures folder) on the card - and brings
``final/`` folders of older runs (no tokenizer, the VAE inside ``model.safetensors``) to the
current layout.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from unixlib.config import project_path
from unixlib.data.processed import load_processed
from unixlib.model.card import model_card
from unixlib.model.saving import save_pretrained
from unixlib.model.unix import UniX

SUMMARY_FILE = "evaluation_summary.json"


def evaluation_summary(run_dir: Path) -> dict[str, Any] | None:
    """Notebook 05's summary of this run: in 05's ``figures_dir`` as the run's resolved
    profile names it (``profile_resolved.json``), else None."""
    resolved = run_dir / "profile_resolved.json"
    if not resolved.is_file():
        return None
    notebooks = json.loads(resolved.read_text()).get("notebooks", {})
    figures = notebooks.get("05_evaluate", {}).get("figures_dir")
    path = project_path(figures) / SUMMARY_FILE if figures else None
    return json.loads(path.read_text()) if path is not None and path.is_file() else None


def _training(run_dir: Path, stage_dir: Path, train_rows: int) -> dict[str, Any]:
    config = stage_dir / "config.json"
    training = json.loads(config.read_text()) if config.is_file() else {}
    manifest = run_dir / "manifest.json"
    if manifest.is_file():
        training["profile"] = json.loads(manifest.read_text()).get("profile")
    return {**training, "train_rows": train_rows}


def export_run(run_dir: Path, stage: int, out: Path, max_shard_size: int | str = "5GB") -> Path:
    """``<run_dir>/stage<stage>/final`` + the run's tokenizer + a card with 05's metrics ->
    ``out`` (a directory that ``describe``/``draw`` and ``UniX.from_pretrained`` read)."""
    run_dir = project_path(run_dir)
    stage_dir = run_dir / f"stage{stage}"
    final = stage_dir / "final"
    if not final.is_dir():
        raise FileNotFoundError(f"{final} does not exist (has stage {stage} of this run trained?)")
    if Path(out).resolve() == final.resolve():
        raise ValueError(f"--out must differ from {final}")
    frame, tokenizer, _ = load_processed(run_dir)
    model = UniX.from_pretrained(final)
    train_rows = int((frame["split"] == "train").sum())
    card = model_card(
        model.config,
        _training(run_dir, stage_dir, train_rows),
        evaluation_summary(run_dir) if stage == 3 else None,
    )
    return save_pretrained(
        model, Path(out), tokenizer=tokenizer, card=card, max_shard_size=max_shard_size
    )
