"""What ``python -m unixlib train ... --dry-run`` prints: the run a command would make, and
whether it can start, without training (no process group, no lock, nothing written).

The plan: stage and steps (from which checkpoint when resuming), world size and global batch,
DDP or FSDP, the model's size (counted on the meta device), the per-GPU memory estimate
(memory.py), checkpoint size and disk space, and what a preemption signal does. The checks:
every input path exists, the device is there, a checkpoint to resume from is intact, the disk
holds the checkpoints the run keeps. Under torchrun every rank plans; rank 0 prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from unixlib.config import project_path
from unixlib.model.config import UniXConfig, preset
from unixlib.train import checkpoint as ckpt
from unixlib.train import disk
from unixlib.train.config import TrainConfig
from unixlib.train.memory import estimate_memory
from unixlib.train.preemption import PREEMPTED_STATUS

STAGE_NAMES = {1: "understanding SFT", 2: "generation PT", 3: "generation FT"}


@dataclass
class PlanCheck:
    """One checked item: ``ok``, what was found and, if not ok, what to do."""

    item: str
    ok: bool
    detail: str
    fix: str = ""


def _run_values(cfg: TrainConfig) -> dict:
    """The UniXConfig fields the run sets (setup.model_config: vocabulary and special ids from
    the run's tokenizer) when its data and weights are there, else the image size and
    overrides alone (the preset's vocabulary: a close estimate)."""
    from unixlib.data.text.tokenizer import ReportTokenizer
    from unixlib.train import setup

    size_key = "image_size_und" if cfg.stage == 1 else "image_size_gen"
    try:
        tokenizer = ReportTokenizer.load(project_path(cfg.data_dir) / "tokenizer")
        return setup.model_config(cfg, tokenizer)
    except (OSError, ValueError):  # not prepared yet, or Janus-Pro's weights not there
        return {size_key: cfg.image_size, **cfg.model_overrides}


def model_config(cfg: TrainConfig, preset_name: str | None = None) -> tuple[UniXConfig, str]:
    """The model the run trains (the ``init_from`` model's config when it is there, else the
    preset: ``preset_name``, the profile's stage-1 preset, for stages 2-3) and where it is from."""
    from unixlib.model.saving import read_config

    values = _run_values(cfg)
    start = project_path(cfg.init_from) if cfg.init_from else None
    if start is not None and (start / "config.json").is_file():
        return read_config(start, **values), str(cfg.init_from)
    name = preset_name if cfg.stage > 1 and preset_name else cfg.preset
    return preset(name, **values), f"preset {name}"


def count_parameters(mc: UniXConfig, trainable: tuple[str, ...]) -> tuple[int, int]:
    """(all parameters, trained parameters) of the model ``mc``, counted on the meta device."""
    from unixlib.model.unix import UniX
    from unixlib.train.setup import group_of

    with torch.device("meta"):
        model = UniX(mc)
    counts = [(p.numel(), group_of(n) in trainable) for n, p in model.named_parameters()]
    return sum(n for n, _ in counts), sum(n for n, t in counts if t)


def checkpoint_bytes(total: int, trained: int, ema: bool) -> int:
    """A checkpoint's size: fp32 weights of the whole model, AdamW's two fp32 moments per
    trained parameter, and their fp32 EMA when kept (checkpoint.py's files)."""
    return 4 * total + 8 * trained + (4 * trained if ema else 0)


def _inputs(cfg: TrainConfig) -> list[PlanCheck]:
    """Each path the run reads exists."""
    wanted = [
        ("data", f"{cfg.data_dir}/processed.parquet", "run notebook 01 (or prepare + clean)"),
        ("init_from", cfg.init_from, "train the previous stage first"),
        ("janus_dir", cfg.janus_dir, "a local Janus-Pro-1B directory"),
        ("vae_dir", cfg.vae_dir, "the VAE notebook 03 trains, or a local kl-f16 checkpoint"),
        ("latent_cache", cfg.latent_cache, "notebooks 03/04 encode it (cache_latents)"),
        ("repa_encoder", cfg.repa_encoder, "a local RadDino directory"),
    ]
    out = []
    for item, path, fix in wanted:
        if path:
            ok = project_path(path).exists()
            out.append(PlanCheck(item, ok, path + ("" if ok else " missing"), fix))
    return out


def _device(cfg: TrainConfig) -> PlanCheck:
    from unixlib.config.device import resolve_device

    try:
        return PlanCheck("device", True, str(resolve_device(cfg.device)))
    except ValueError as err:
        return PlanCheck("device", False, str(err), "run where the device is, or set device")


def _start(cfg: TrainConfig, root: Path, resume: bool) -> tuple[int, str, PlanCheck | None]:
    """(first step, how it starts, the check of the checkpoint to resume from)."""
    if not resume:
        found = ckpt.list_checkpoints(root)
        return 0, "fresh" + (f", removes {len(found)} earlier checkpoints" if found else ""), None
    try:
        latest = ckpt.latest_intact_checkpoint(root, log=lambda _: None)
    except ckpt.CheckpointError as err:
        return 0, "resume", PlanCheck("resume", False, str(err), "start afresh without --resume")
    if latest is None:
        return 0, f"resume: no checkpoint under {root} yet, from step 0", None
    step = int(latest.name.split("_")[1])
    return step, f"resume from {latest.name}", PlanCheck("resume", True, f"{latest} is intact")


def _disk(cfg: TrainConfig, root: Path, each: int, resume: bool) -> PlanCheck:
    """Room for the checkpoints the run keeps, one more while a new one is written."""
    every = cfg.checkpoint_every or cfg.steps
    written = -(-cfg.steps // every)  # the periodic ones and the final one
    limit = cfg.checkpoints_total_limit
    count = min(written, limit + 1) if limit > 0 else written  # rotation runs after a write
    held = sum(disk.directory_bytes(p) for _, p in ckpt.list_checkpoints(root))
    free = disk.free_bytes(root) + (0 if resume else held)  # a fresh run removes them first
    needed = max(each, each * count - (held if resume else 0))
    return PlanCheck(
        "disk",
        free >= needed,
        f"{disk.human(each)} a checkpoint, {count} at once: needs {disk.human(needed)}, "
        f"{disk.human(free)} free at {root}",
        "free space, raise checkpoint_every or lower checkpoints_total_limit",
    )


def plan(
    cfg: TrainConfig, world_size: int, resume: bool, preset_name: str | None = None
) -> tuple[list[str], list[PlanCheck]]:
    """The plan's lines and its checks (see the module docstring)."""
    run_dir = project_path(cfg.run_dir)
    root = run_dir / "checkpoints"
    mc, source = model_config(cfg, preset_name)
    total, trained = count_parameters(mc, cfg.trainable)
    each = checkpoint_bytes(total, trained, cfg.ema_decay > 0)
    parallel = cfg.parallel_mode(mc) if world_size > 1 else "single process"
    start, how, resumed = _start(cfg, root, resume)
    every = f"every {cfg.checkpoint_every} steps" if cfg.checkpoint_every else "at the end"
    fmt = "sharded" if cfg.sharded_checkpoints(mc, parallel == "fsdp") else "full"
    signals = ", ".join(cfg.preempt_signals) or "none (preempt_signals is empty)"
    lines = [
        f"train --dry-run: stage {cfg.stage} ({STAGE_NAMES[cfg.stage]}), nothing is trained",
        f"  steps        {start} -> {cfg.steps} ({how})",
        f"  trains       {', '.join(cfg.trainable)}: {trained / 1e6:.1f}M of "
        f"{total / 1e6:.1f}M parameters ({source}), lr {cfg.lr:g}, warm-up {cfg.warmup_steps}",
        f"  batch        {cfg.batch_size} x accum {cfg.grad_accum} x world {world_size} = "
        f"global {cfg.batch_size * cfg.grad_accum * world_size} ({parallel})",
        f"  {estimate_memory(mc, cfg, world_size, parallel if world_size > 1 else None)}",
        f"  run dir      {cfg.run_dir}: checkpoints {every} ({fmt}, keep "
        f"{cfg.checkpoints_total_limit or 'all'}, ~{disk.human(each)} each)",
        f"  preemption   {signals}: checkpoint at the step reached, exit {PREEMPTED_STATUS}; "
        "continue with --resume",
    ]
    checks = [*_inputs(cfg), _device(cfg), _disk(cfg, root, each, resume)]
    return lines, checks + ([resumed] if resumed else [])
