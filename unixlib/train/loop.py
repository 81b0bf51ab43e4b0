"""One ``train(cfg)`` for every stage of UniX (the stage is a set of flags in ``TrainConfig``).

Per optimizer step: ``grad_accum`` micro-batches (pure functions of the step, see batches.py),
losses normalised by the step's *global* token counts (so 2 processes x batch B make exactly the
update of 1 process x batch 2B), clip, AdamW, constant LR after warm-up, optional EMA. Several
processes (torchrun) run DDP or FSDP (``cfg.parallel``; distributed.py, fsdp.py). Writes
``<run_dir>/config.json``, ``metrics.jsonl``, ``checkpoints/step_*`` and ``final/``.
"""

from __future__ import annotations

import copy
import json
import math
import os
import resource
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from unixlib.config import project_path, shown
from unixlib.config.device import resolve_device
from unixlib.config.progress import bar as progress_bar
from unixlib.config.progress import log as progress_log
from unixlib.model.attention import kernel_for, pad_multiple
from unixlib.model.card import model_card
from unixlib.model.repa import SiglipTarget
from unixlib.model.saving import save_pretrained
from unixlib.model.unix import UniX
from unixlib.train import checkpoint as ckpt
from unixlib.train import disk, fsdp, precision, preemption
from unixlib.train import distributed as dist_utils
from unixlib.train.batches import (
    MicroBatch,
    align_latent_cache,
    build_source,
    draw_noise,
    load_training_data,
)
from unixlib.train.config import TrainConfig
from unixlib.train.memory import estimate_memory
from unixlib.train.reporting import open_reporters
from unixlib.train.runlock import RunLock
from unixlib.train.schedules import constant_with_warmup
from unixlib.train.setup import build_model, set_activation_checkpointing, set_trainable


class EMA(nn.Module):
    """Exponential moving average of the trained parameters (fp32 buffers; under FSDP, of this
    rank's shards: the buffers are DTensors like the parameters)."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        super().__init__()
        self.decay = decay
        self.names = [n for n, p in model.named_parameters() if p.requires_grad]
        for n, p in model.named_parameters():
            if p.requires_grad:
                self.register_buffer(ckpt.ema_key(n), p.detach().float().clone())

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        params = dict(model.named_parameters())
        for n in self.names:
            self.get_buffer(ckpt.ema_key(n)).lerp_(params[n].detach().float(), 1 - self.decay)

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Overwrite the trained parameters with their averages (the exported model)."""
        params = dict(model.named_parameters())
        for n in self.names:
            params[n].copy_(self.get_buffer(ckpt.ema_key(n)))


# <stage-1 run_dir>/vision_pretrained: the model right after vision_pretrain_steps.
VISION_PRETRAINED = "vision_pretrained"


@dataclass
class TrainResult:
    run_dir: Path
    final_dir: Path
    steps: int
    metrics: list[dict]


def _memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _read_metrics(path: Path, upto_step: int) -> list[dict]:
    """Logged metrics of steps <= upto_step (a resumed run drops what came after its checkpoint).

    A kill can cut the last line mid-write; that row is after the checkpoint (rows are written
    before their step's checkpoint), so it is dropped with the others. A bad line elsewhere is an
    error."""
    if not path.is_file():
        return []
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    rows = []
    for i, line in enumerate(lines):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as err:
            if i < len(lines) - 1:
                raise ValueError(f"{path}: line {i + 1} is not JSON ({err})") from err
    return [r for r in rows if r["step"] <= upto_step]


def _repa_target(cfg: TrainConfig, model: UniX, device: torch.device) -> nn.Module | None:
    """The frozen REPA encoder: RadDino from ``repa_encoder``, else the stage's SigLIP tower
    (a frozen copy when this run also trains the tower: REPA aligns to a fixed target)."""
    if cfg.repa_weight <= 0 or "gen" not in cfg.tasks:
        return None
    if cfg.repa_encoder:
        from unixlib.model.repa import RadDinoTarget

        official = model.config.repa_official_preprocess  # the release's input quirk
        target = RadDinoTarget.from_local(
            project_path(cfg.repa_encoder), official_preprocess=official
        )
        return target.to(device)
    tower = model.vision_tower
    if "vision" in cfg.trainable:
        tower = copy.deepcopy(tower)
    return SiglipTarget(tower, model.config.image_size_und)


def _step_losses(
    model: nn.Module,
    raw: UniX,
    mb: MicroBatch,
    device: torch.device,
    repa_target: nn.Module | None,
    latent_cache: torch.Tensor | None,
) -> dict[str, torch.Tensor]:
    batch = mb.batch.to(device)
    latents = noise = repa = repa_grid = None
    if mb.n_gen:
        images = mb.gen_images.to(device) if mb.gen_images is not None else None
        with torch.no_grad():
            if latent_cache is not None:
                latents = latent_cache[mb.gen_indices].to(device)
            else:
                latents = raw.encode_images(images)
            if repa_target is not None:
                repa, repa_grid = repa_target(images)
        noise = draw_noise(mb.noise_seeds, tuple(latents.shape[1:]), device)
    vit = mb.vit_pixels.to(device) if mb.vit_pixels is not None else None
    timesteps = mb.timesteps.to(device) if mb.timesteps is not None else None
    return model(
        batch, vit, latents, timesteps=timesteps, noise=noise, repa_target=repa, repa_grid=repa_grid
    )


def _pretrain_tower(cfg: TrainConfig, model: UniX, source, device, run_dir: Path, main: bool):
    """The stand-in for a pretrained SigLIP (vision_pretrain.py), when the tower is random.
    Every rank runs it from the same seed; rank 0 records it in ``vision_pretrain.json``."""
    if cfg.janus_dir or cfg.init_from:
        print("vision_pretrain_steps ignored: the tower comes pretrained (janus_dir / init_from)")
        return
    from unixlib.train.vision_pretrain import run_vision_pretraining

    record = run_vision_pretraining(
        model,
        source.datasets["und"],
        cfg.vision_pretrain_steps,
        cfg.batch_size,
        cfg.vision_pretrain_lr,
        cfg.seed,
        device,
    )
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "vision_pretrain.json").write_text(json.dumps(record) + "\n")
        # the model as stage 1 starts it (pretrained tower, fresh language model): the common
        # starting point of notebook 06's cleaned-vs-raw reports ablation
        save_pretrained(model, run_dir / VISION_PRETRAINED)
        print(
            f"vision tower pretrained (stand-in for SigLIP pretraining): {record['steps']} "
            f"steps, label BCE {record['loss_first']:.3f} -> {record['loss_last']:.3f} "
            f"in {record['seconds']} s"
        )


def train(
    cfg: TrainConfig, resume: bool = False, progress: bool = True, report_to: Sequence[str] = ()
) -> TrainResult:
    """Train one stage as configured; ``resume`` continues from the newest intact checkpoint
    exactly (same global batch required). A fresh run starts over: it rewrites ``metrics.jsonl``
    and removes an earlier run's ``checkpoints/`` in ``run_dir``. The run directory is locked
    for the duration (``unixlib.train.runlock``): a second run on it stops at once. ``report_to`` also
    sends each metrics row elsewhere (``("tensorboard",)``: ``run_dir/tensorboard``; see
    reporting.py).

    A signal of ``cfg.preempt_signals`` stops the run after the step in flight, with a checkpoint
    of the step reached, and raises :class:`preemption.Preempted` (preemption.py); a checkpoint
    that cannot be written raises ``disk.CheckpointWriteError`` (disk.py)."""
    with preemption.listen(cfg.preempt_signals) as stop:
        if int(os.environ.get("RANK", "0")) != 0:  # torchrun: rank 0 holds the lock for all
            return _train(cfg, resume, progress, report_to, stop)
        with RunLock(project_path(cfg.run_dir)):
            return _train(cfg, resume, progress, report_to, stop)


def _export_card(cfg: TrainConfig, device: torch.device, model: UniX, train_rows: int) -> str:
    """The final model's card: this stage's training settings (no metrics yet: notebook 05)."""
    training = {
        **cfg.to_dict(),
        "train_rows": train_rows,
        "precision": precision.describe(cfg.mixed_precision, device),
    }
    return model_card(model.config, training)


@dataclass
class _Run:
    """Everything one training run holds between its steps (built by :func:`_setup`)."""

    cfg: TrainConfig
    info: dist_utils.DistInfo
    device: torch.device
    run_dir: Path
    data: tuple
    model: UniX
    wrapped: nn.Module  # the model as the step calls it (DDP-wrapped, or the model itself)
    counts: dict[str, int]
    parallel: str
    source: Any
    repa_target: nn.Module | None
    latent_cache: torch.Tensor | None
    params: list[nn.Parameter]
    optimizer: torch.optim.Optimizer
    scheduler: Any
    ema: EMA | None
    latest: Path | None  # the checkpoint to resume from
    reporters: list

    @property
    def examples_per_step(self) -> int:
        return self.cfg.batch_size * self.cfg.grad_accum * self.info.world_size

    @property
    def metrics_path(self) -> Path:
        return self.run_dir / "metrics.jsonl"


def _train(
    cfg: TrainConfig,
    resume: bool,
    progress: bool,
    report_to: Sequence[str],
    stop: preemption.StopRequest,
) -> TrainResult:
    run = _setup(cfg, resume, report_to)
    start, metrics = _restore(run, resume)
    autocast = precision.autocast(cfg.mixed_precision, run.device)
    bar = None
    if progress and run.info.is_main:
        bar = progress_bar(total=cfg.steps, initial=start, desc=f"stage {cfg.stage}", leave=True)
    run.model.train()
    t0 = time.perf_counter()
    for step in range(start, cfg.steps):
        row = _optimizer_step(run, step, autocast)
        metrics.append(row)
        _log(run, row, bar)
        if not math.isfinite(row["loss"]):
            raise FloatingPointError(
                f"stage {cfg.stage}: loss became {row['loss']} at step {row['step']}"
            )
        done = row["step"]
        due = (cfg.checkpoint_every and done % cfg.checkpoint_every == 0) or done == cfg.steps
        if due:
            _checkpoint(run, done)
        # one all-reduce a step: the ranks agree on a stop, and wait for each other as the
        # barrier it replaces did (rank 0 may have been writing the checkpoint)
        signal_name = preemption.agreed(stop, run.info, run.device)
        if signal_name:
            _preempt(run, done, bool(due), signal_name, bar)
    if bar is not None:
        bar.close()
    for reporter in run.reporters:
        reporter.close()
    final = _export(run)
    if run.info.is_main:
        print(_summary(cfg, metrics, start, time.perf_counter() - t0, final), flush=True)
    dist_utils.shutdown(run.info)
    return TrainResult(run.run_dir, final, cfg.steps, metrics)


def _summary(cfg: TrainConfig, metrics: list[dict], start: int, seconds: float, final: Path) -> str:
    """One line for the notebook: steps, time, the loss at the start and end (means of up to
    ten steps), and where the model and the full log are."""
    losses = [m["loss"] for m in metrics]
    first, last = (sum(part) / len(part) for part in (losses[:10], losses[-10:]))
    ran = cfg.steps - start
    return (
        f"stage {cfg.stage}: {ran} steps in {seconds:.0f} s ({ran / max(seconds, 1e-9):.1f} "
        f"steps/s); loss (the weighted sum of its terms) {first:.3f} -> {last:.3f} (means of the "
        f"first and last 10 steps); "
        f"model: {shown(final)}; per-step log: {shown(project_path(cfg.run_dir) / 'metrics.jsonl')}"
    )


def _setup(cfg: TrainConfig, resume: bool, report_to: Sequence[str]) -> _Run:
    """Device and processes, data, the stage's model (frozen groups, REPA target, latent
    cache), the vision stand-in when due, parallel wrapping, optimizer, schedule and EMA."""
    device = resolve_device(cfg.device, int(os.environ.get("LOCAL_RANK", "0")))
    info = dist_utils.init_from_env(device)
    run_dir = project_path(cfg.run_dir)
    reporters = open_reporters(report_to, run_dir) if info.is_main else []
    torch.manual_seed(cfg.seed)
    data = load_training_data(cfg)  # (frame, tokenizer, paths), read once
    model = build_model(cfg, data[1]).to(device)
    counts = set_trainable(model, cfg.trainable)
    # stages 2-3: no backward through the frozen understanding branch (mot.py, freeze_und)
    model.language_model.freeze_und = not {"vision", "connector", "und"} & set(cfg.trainable)
    set_activation_checkpointing(model, cfg)
    repa_target = _repa_target(cfg, model, device)
    source = build_source(cfg, model.config, info.world_size, info.rank, data)
    source.pad_to_multiple_of = pad_multiple(cfg.packing, device)  # flex's tile on CUDA
    latest = ckpt.latest_intact_checkpoint(run_dir / "checkpoints") if resume else None
    if cfg.vision_pretrain_steps and latest is None:  # before sharding, EMA and the optimizer
        _pretrain_tower(cfg, model, source, device, run_dir, info.is_main)
    latent_cache = None
    if cfg.latent_cache and "gen" in source.datasets:
        from unixlib.model.vae_files import load_latent_cache

        cached, ids = load_latent_cache(project_path(cfg.latent_cache))
        mc = model.config
        latent_cache = align_latent_cache(
            cached,
            ids,
            source.datasets["gen"],
            mc.latent_grid(mc.image_size_gen),
            mc.latent_patch_size,
        )
        source.gen_pixels = repa_target is not None  # only REPA would still look at the pixels
    # DDP wraps the model; FSDP shards it in place (new parameters: build the optimizer after).
    parallel = cfg.parallel_mode(model.config)
    if info.is_main:  # the per-GPU estimate matters on GPUs; elsewhere it goes to the log
        estimate = estimate_memory(
            model.config, cfg, info.world_size, parallel if info.enabled else None
        )
        (print if device.type == "cuda" else progress_log)(str(estimate))
    bf16_shards = precision.uses_bf16(cfg.mixed_precision, device)
    wrapped = dist_utils.parallelize(model, parallel, info, device, cfg, bf16_shards)
    params = [p for p in model.parameters() if p.requires_grad]
    # The fused kernel (one pass over all tensors): ~6% of a tiny CPU step faster than the
    # default; it takes FSDP's sharded (DTensor) parameters too (gloo test).
    optimizer = torch.optim.AdamW(
        params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay, fused=True
    )
    scheduler = constant_with_warmup(optimizer, cfg.warmup_steps)
    ema = EMA(model, cfg.ema_decay).to(device) if cfg.ema_decay > 0 else None
    return _Run(
        cfg,
        info,
        device,
        run_dir,
        data,
        model,
        wrapped,
        counts,
        parallel,
        source,
        repa_target,
        latent_cache,
        params,
        optimizer,
        scheduler,
        ema,
        latest,
        reporters,
    )


def _restore(run: _Run, resume: bool) -> tuple[int, list[dict]]:
    """(first step, metrics so far): from the newest intact checkpoint when resuming, else a
    fresh start that clears an earlier run's checkpoints; writes config.json and metrics.jsonl."""
    cfg, info, run_dir = run.cfg, run.info, run.run_dir
    if info.is_main:  # under the run's lock: nothing else writes here
        disk.remove_temporaries(run_dir / "checkpoints")
        preemption.clear(run_dir)
    start = 0
    if run.latest is not None:
        state = ckpt.load_checkpoint(run.latest, run.model, run.optimizer, run.scheduler, run.ema)
        start = state.step
        if state.data_position != start * run.examples_per_step:
            raise ValueError(
                f"{run.latest} was written at data position {state.data_position} "
                f"(step {start}); this run reads {run.examples_per_step} examples a step "
                "(batch x accum x world), so it cannot continue the same stream"
            )
    elif resume:
        print(f"no checkpoint under {run_dir / 'checkpoints'}: starting from step 0")
    elif info.is_main and (run_dir / "checkpoints").is_dir():
        # A fresh run owns its run_dir: checkpoints of an earlier run would be rotated in
        # among the new ones and picked up by a later --resume.
        print(f"fresh run: removing the earlier run's {run_dir / 'checkpoints'}")
        shutil.rmtree(run_dir / "checkpoints")
    metrics = _read_metrics(run.metrics_path, start) if start else []
    if info.is_main:
        cfg.save(run_dir / "config.json")
        run.metrics_path.write_text("".join(json.dumps(m) + "\n" for m in metrics))
        print(
            f"stage {cfg.stage}: training {', '.join(cfg.trainable)} "
            f"({sum(run.counts[g] for g in cfg.trainable) / 1e6:.2f}M parameters), "
            f"steps {start}->{cfg.steps}, device {run.device} "
            f"({precision.describe(cfg.mixed_precision, run.device)}), world {info.world_size}"
            f"{f' ({run.parallel})' if info.enabled else ''}, "
            f"{'packed' if cfg.packing else 'padded'} batches, attention "
            f"{kernel_for(cfg.packing, run.device)}"
            f"{f', max_tokens {cfg.max_tokens}' if cfg.max_tokens else ''}"
        )
    return start, metrics


def weighted_loss(
    out: dict[str, torch.Tensor],
    mb: MicroBatch,
    totals: tuple[float, float, float],
    weights: tuple[float, float, float],
) -> tuple[torch.Tensor, tuple[float, float, float]]:
    """One forward's share of the step's loss, and its shares.

    Each term of ``out`` (``UniX.forward``) is a mean over this forward's own tokens (ce,
    flow) or generation examples (repa); it is re-weighted by its share of the step's
    ``totals`` (answer tokens, flow tokens, generation examples: over every micro-batch, piece
    and rank), so that the forwards' gradients sum to the gradient of the step's per-token
    means, however the step is split. ``weights``: the ce, flow and repa weights."""
    counts = (mb.n_ce, mb.n_flow, mb.n_gen)
    shares = tuple(c / max(t, 1) for c, t in zip(counts, totals, strict=True))
    terms = zip(weights, shares, ("ce", "flow", "repa"), strict=True)
    return sum(w * s * out[k] for w, s, k in terms), shares


def _forwards(run: _Run, step: int, micro: int) -> list[MicroBatch]:
    """The forwards of micro-batch ``micro``: one, or its pieces under ``max_tokens``. With
    several processes every rank runs as many pieces as the rank with the most (their forwards
    are collectives under DDP and FSDP): the others split their largest pieces further, which
    leaves the gradient unchanged."""
    pieces = run.source.micro_batches(step, micro)
    if not run.cfg.max_tokens or not run.info.enabled:
        return pieces
    count = torch.tensor([len(pieces)], dtype=torch.float64, device=run.device)
    most = int(dist_utils.all_reduce_max(count, run.info).item())
    if most <= len(pieces):  # this rank has the most already: no rebuild
        return pieces
    return run.source.micro_batches(step, micro, min_pieces=most)


def _optimizer_step(run: _Run, step: int, autocast) -> dict:
    """One optimizer step (``grad_accum`` micro-batches, clip, AdamW, schedule, EMA); returns
    its metrics row."""
    cfg, info, device = run.cfg, run.info, run.device
    weights = cfg.ce_weight, cfg.flow_weight, cfg.repa_weight
    t0 = time.perf_counter()
    # every forward of the step: the micro-batches, each split by the token budget if any
    micro = [mb for m in range(cfg.grad_accum) for mb in _forwards(run, step, m)]
    local = torch.tensor([[mb.n_ce, mb.n_flow, mb.n_gen] for mb in micro], dtype=torch.float64).sum(
        0
    )
    n_ce, n_flow, n_gen = dist_utils.all_reduce_sum(local.to(device), info).tolist()
    logged = torch.zeros(3, dtype=torch.float64, device=device)  # ce, flow, repa
    tokens = 0
    for i, mb in enumerate(micro):
        with dist_utils.gradient_sync(run.wrapped, sync=i == len(micro) - 1):
            with autocast:
                out = _step_losses(
                    run.wrapped, run.model, mb, device, run.repa_target, run.latent_cache
                )
            loss, shares = weighted_loss(out, mb, (n_ce, n_flow, n_gen), weights)
            # times world: DDP and FSDP average gradients over ranks
            (loss * info.world_size).backward()
        # kept on the device: one host sync per step (below), not three per micro-batch
        terms = torch.stack([out[k].detach().double() for k in ("ce", "flow", "repa")])
        logged += terms * torch.tensor(shares, dtype=torch.float64, device=device)
        tokens += int(mb.batch.lengths.sum())
    grad_norm = torch.nn.utils.clip_grad_norm_(run.params, cfg.grad_clip)
    if hasattr(grad_norm, "full_tensor"):  # FSDP2: a replicated DTensor
        grad_norm = grad_norm.full_tensor()
    lr = run.scheduler.get_last_lr()[0]  # the rate this step uses (step() sets the next one)
    run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    if run.ema is not None:
        run.ema.update(run.model)
    # Per-rank means of the logged terms are summed across ranks with their shares already
    # applied, so the logged numbers are the global step's losses.
    logged = dist_utils.all_reduce_sum(logged, info)
    ce, flow, repa, grad_norm = torch.cat([logged, grad_norm.reshape(1).double()]).tolist()
    return {
        "step": step + 1,
        "loss": weights[0] * ce + weights[1] * flow + weights[2] * repa,
        "ce": ce,
        "flow": flow,
        "repa": repa,
        "lr": lr,
        "grad_norm": grad_norm,
        "tokens_per_s": tokens * info.world_size / (time.perf_counter() - t0),
        "step_seconds": time.perf_counter() - t0,
        "memory_mb": _memory_mb(device),
    }


def _log(run: _Run, row: dict, bar) -> None:
    """metrics.jsonl, the reporters, the progress bar and every ``log_every`` steps a line."""
    if not run.info.is_main:
        return
    with run.metrics_path.open("a") as f:
        f.write(json.dumps(row) + "\n")
    for reporter in run.reporters:
        reporter.log(row)
    if bar is not None:
        bar.update(1)
        bar.set_postfix(loss=f"{row['loss']:.4f}")
    done, steps = row["step"], run.cfg.steps
    if done % run.cfg.log_every == 0 or done == steps:
        progress_log(
            f"stage {run.cfg.stage} step {done}/{steps} loss {row['loss']:.4f} (ce {row['ce']:.4f} "
            f"flow {row['flow']:.4f} repa {row['repa']:.4f}) lr {row['lr']:.2e} "
            f"|g| {row['grad_norm']:.3f}"
        )


def _preempt(run: _Run, done: int, saved: bool, signal_name: str, bar) -> None:
    """Stop after step ``done`` on a signal: every rank takes part in the checkpoint of that
    step (unless it was just written); rank 0 logs one line and writes ``preempted.json``.
    Raises :class:`preemption.Preempted`."""
    if not saved:
        _checkpoint(run, done)
    if bar is not None:
        bar.close()
    for reporter in run.reporters:
        reporter.close()
    path = run.run_dir / "checkpoints" / ckpt.step_dir_name(done)
    err = preemption.Preempted(run.cfg.stage, done, run.cfg.steps, str(path), signal_name)
    if run.info.is_main:
        err.write(run.run_dir)
        print(err, flush=True)
    dist_utils.shutdown(run.info)
    raise err


def _checkpoint(run: _Run, done: int) -> None:
    """Checkpoint after step ``done``, when the disk has room for it (disk.py). Rank 0 checks
    the space and writes (all of it, or its part of a sharded one); the ranks agree on both
    outcomes, so that a full disk stops every rank with the same error."""
    root, name = run.run_dir / "checkpoints", ckpt.step_dir_name(done)
    problem = None
    if run.info.is_main:
        previous = ckpt.latest_checkpoint(root)
        needed = disk.expected_bytes(previous, run.model, run.optimizer, run.ema)
        try:
            disk.check_space(root, name, needed)
        except disk.DiskSpaceError as err:
            problem = err
    _agree_on(run, problem, name)
    try:
        _write_checkpoint(run, done)
    except disk.CheckpointWriteError as err:
        problem = err
    _agree_on(run, problem, name)


def _agree_on(run: _Run, problem: disk.CheckpointWriteError | None, name: str) -> None:
    """Raise ``problem`` where it happened and a short error on the other ranks, if any rank
    had one (a collective: every rank calls it)."""
    if preemption.any_rank(problem is not None, run.info, run.device):
        raise problem or disk.CheckpointWriteError(f"{name}: not written (see rank 0's error)")


def _write_checkpoint(run: _Run, done: int) -> None:
    """Checkpoint after step ``done``: sharded (every rank writes its shards) for the paper
    preset under FSDP, else full states gathered into rank 0 and written there."""
    cfg, model, info = run.cfg, run.model, run.info
    position = done * run.examples_per_step
    if cfg.sharded_checkpoints(model.config, fsdp.is_sharded(model)):
        ckpt.save_sharded_checkpoint(
            run.run_dir / "checkpoints",
            done,
            model,
            run.optimizer,
            run.scheduler,
            position,
            cfg.to_dict(),
            info.is_main,
            lambda: dist_utils.barrier(info),
            run.ema,
            cfg.checkpoints_total_limit,
        )
        return
    model_sd = fsdp.full_state_dict(model)
    optim_sd = fsdp.full_optimizer_state(model, run.optimizer)
    ema_sd = fsdp.full_state_dict(run.ema) if run.ema is not None else None
    if info.is_main:
        ckpt.save_checkpoint(
            run.run_dir / "checkpoints",
            done,
            model_sd,
            optim_sd,
            run.scheduler,
            data_position=position,
            config=cfg.to_dict(),
            ema=ema_sd,
            limit=cfg.checkpoints_total_limit,
        )


def _export(run: _Run) -> Path:
    """``final/``: the trained model (with the EMA weights when kept) as a model directory."""
    final = run.run_dir / "final"
    if run.ema is not None:  # the exported model carries the EMA weights
        run.ema.copy_to(run.model)
    export = fsdp.gather_model(run.model) if fsdp.is_sharded(run.model) else run.model
    if run.info.is_main:
        frame, tokenizer = run.data[0], run.data[1]
        train_rows = int((frame["split"] == "train").sum())
        save_pretrained(
            export,
            final,
            tokenizer=tokenizer,
            card=_export_card(run.cfg, run.device, export, train_rows),
        )
    dist_utils.barrier(run.info)
    return final
