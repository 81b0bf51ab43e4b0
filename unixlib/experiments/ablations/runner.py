"""Train every ablation run (per seed); ``measure.py`` measures them.

Each distinct run of :mod:`variants` is trained once per seed with ``train.loop.train`` into
``<run_dir>/ablations/<run>/seed<k>/`` (a run whose ``final/`` was written from the same
config, the same start weights and in the same precision is reused, so an interrupted notebook
continues where it stopped; a retrained stage 1 or 2 upstream, or another CPU resolving
``mixed_precision: auto`` differently, trains it again: :func:`fingerprint`).
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from unixlib.config import project_path, shown
from unixlib.config.device import resolve_device
from unixlib.experiments.ablations.variants import Variant, run_config, runs
from unixlib.model.unix import UniX
from unixlib.train import precision
from unixlib.train.checkpoint import file_sha256
from unixlib.train.config import TrainConfig
from unixlib.train.launch import read_metrics, run_stage
from unixlib.train.loop import train


@dataclass
class TrainedRun:
    """One trained run: where it is, and what its training cost."""

    cfg: TrainConfig
    final_dir: Path
    seconds: float  # wall time of the training (0 when reused)
    step_seconds: float  # median optimizer-step time from metrics.jsonl
    reused: bool


def _step_seconds(run_dir: Path) -> float:
    """Median optimizer-step time of a run (NaN for a run logged before ``step_seconds``)."""
    metrics = read_metrics(run_dir)
    return float(metrics["step_seconds"].median()) if "step_seconds" in metrics else float("nan")


def _train_quietly(cfg: TrainConfig, where: Path) -> None:
    """Train one arm in this process without a per-step bar; the loop's start and summary
    lines go to ``<run>/train.log`` (eleven arms' worth would flood the notebook)."""
    where.mkdir(parents=True, exist_ok=True)
    with open(where / "train.log", "w") as log, contextlib.redirect_stdout(log):
        train(cfg, progress=False)


def _arm_line(name: str, cfg: TrainConfig, seconds: float) -> str:
    """The notebook's one line for a trained arm: steps, time, loss at start and end (means of
    up to ten steps) and where it is."""
    loss = read_metrics(cfg.run_dir)["loss"]
    first, last = loss.head(10).mean(), loss.tail(10).mean()
    return (
        f"{name}: {cfg.steps} steps (batch {cfg.batch_size}) in {seconds:.0f} s, loss "
        f"{first:.3f} -> {last:.3f}; {shown(project_path(cfg.run_dir))}"
    )


FINGERPRINT_FILE = "ablation_fingerprint.json"


def fingerprint(cfg: TrainConfig) -> dict:
    """What a finished ablation run was trained from: its config, the SHA-256 of each of the
    start model's weight files (the ``init_from`` path alone would not see a stage retrained
    upstream) and the precision ``mixed_precision`` resolves to on this machine."""
    start = project_path(cfg.init_from) if cfg.init_from else None
    weights = sorted(start.glob("*.safetensors")) if start else []
    device = resolve_device(cfg.device)
    return {
        "config": json.loads(json.dumps(cfg.to_dict())),
        "start_weights_sha256": {p.name: file_sha256(p) for p in weights} or None,
        "precision": precision.describe(cfg.mixed_precision, device),
    }


def _train_or_reuse(cfg: TrainConfig, nproc: int) -> tuple[bool, float]:
    """Train one run unless its ``final/`` was written from the same fingerprint; returns
    (reused, seconds)."""
    where = project_path(cfg.run_dir)
    saved = where / FINGERPRINT_FILE
    wanted = fingerprint(cfg)
    if (
        (where / "final" / "model.safetensors").is_file()
        and saved.is_file()
        and json.loads(saved.read_text()) == wanted
    ):
        return True, 0.0
    t0 = time.perf_counter()
    if nproc > 1:
        run_stage(cfg, nproc=nproc)
    else:  # the loop's own lines to the run's train.log: one line per arm here
        _train_quietly(cfg, where)
    saved.write_text(json.dumps(wanted, indent=2))
    return False, time.perf_counter() - t0


def train_runs(
    variants: list[Variant],
    recipes: dict[int, dict],
    run_dir: str,
    seeds: list[int],
    batch_size: int,
    nproc: int = 1,
) -> dict[tuple[str, int], TrainedRun]:
    """Train every distinct run of ``variants`` for every seed (``recipes``: stage -> flat
    TrainConfig parameters, as notebooks pass them to ``stage_config``; ``nproc`` > 1 hands
    each run to torchrun, as notebooks 02-04 do). Prints one line per arm and seed: trained
    (steps, time, loss), reused from an earlier finished run, or the same run as an arm
    printed above (arms with identical flags)."""
    out = {}
    named = runs(variants)
    for seed in seeds:
        for v in variants:
            name = v.run
            head = f"[{v.study}] {v.label} (seed {seed})"
            if (name, seed) in out:
                first = named[name]
                print(f"{head}: reused, the same run as [{first.study}] {first.label}")
                continue
            cfg = run_config(v, recipes[v.stage], run_dir, seed, batch_size)
            where = project_path(cfg.run_dir)
            reused, seconds = _train_or_reuse(cfg, nproc)
            if reused:
                print(f"{head}: reused {shown(where / 'final')} (same config and start)")
            else:
                print(_arm_line(head, cfg, seconds))
            out[(name, seed)] = TrainedRun(
                cfg, where / "final", seconds, _step_seconds(where), reused
            )
    return out


def load_model(path: str | Path, device: str = "auto") -> UniX:
    return UniX.from_pretrained(project_path(path)).to(resolve_device(device)).eval()


def loss_curves(trained: dict[tuple[str, int], TrainedRun], names: list[str]) -> pd.DataFrame:
    """metrics.jsonl of the named runs, stacked: run, seed, step, flow, repa, ce."""
    frames = []
    for (name, seed), run in trained.items():
        if name in names:
            m = read_metrics(run.cfg.run_dir)[["step", "ce", "flow", "repa"]]
            frames.append(m.assign(run=name, seed=seed))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def as_int_seeds(seeds: list | tuple) -> list[int]:
    """Seeds from a notebook parameter: a non-empty list of ints (else a TypeError)."""
    if isinstance(seeds, int) or not seeds or not all(isinstance(x, int) for x in seeds):
        raise TypeError(f"seeds must be a non-empty list of ints, got {seeds!r}")
    return list(seeds)
