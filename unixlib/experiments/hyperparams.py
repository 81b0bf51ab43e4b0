"""Paper Table 1: each stage's training settings, this run's beside the paper's.

This run's values are read back from the resolved ``config.json`` that the training loop writes
into every stage folder (``<run_dir>/stage<N>/config.json``, see ``train.config.stage_dir``), so
the table shows what trained, not what a notebook meant to set. The world size is not part of
the config; it is recovered from the newest checkpoint's data position (examples read so far =
step x batch x accum x world). The paper's values are quoted from PAPER.md (Table 1 and the
flow-matching section).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from unixlib.config import project_path, stage_dir
from unixlib.train.checkpoint import latest_checkpoint
from unixlib.train.config import TrainConfig
from unixlib.viz.tables import FROM_PAPER, THIS_RUN

STAGES = (1, 2, 3)
NOT_RUN = "not run"

# Readable names of train/config.py's parameter groups (also the rows of Fig. 2's stage panel).
GROUP_LABELS: dict[str, str] = {
    "vision": "vision tower",
    "connector": "connector",
    "und": "und. branch",
    "gen": "gen. branch",
}


@dataclass(frozen=True)
class PaperStage:
    """One column of the paper's Table 1 (PAPER.md, "Training")."""

    trainable: str
    tasks: str  # und:gen examples; the paper trains one task per stage
    init: str
    resolution: int
    lr: float
    warmup_steps: int
    steps: int
    batch: int  # global (8 L20 GPUs)
    repa: str
    timestep_shift: str  # training shift; PAPER.md: s = 1 in the released config
    text_dropout: str


_GEN_DEFAULTS = {  # what the paper's generation stages share
    "trainable": "gen. LLM branch",
    "tasks": "0:1",
    "batch": 256,
    "timestep_shift": "1 (released config)",
    "text_dropout": "~0.1 (BAGEL default; not stated)",
}
PAPER_STAGES: dict[int, PaperStage] = {
    1: PaperStage(
        trainable="SigLIP, connector, und. LLM",
        tasks="1:0",
        init="Janus-Pro-1B",
        resolution=384,
        lr=1e-4,
        warmup_steps=80,
        steps=3840,
        batch=256,
        repa="no",
        timestep_shift="-",
        text_dropout="-",
    ),
    2: PaperStage(
        init="stage 1",
        resolution=256,
        lr=2e-4,
        warmup_steps=2000,
        steps=75000,
        repa='yes, RadDino patch features, weight 0.5, "eighth layer"',
        **_GEN_DEFAULTS,
    ),
    3: PaperStage(
        init="stage 2",
        resolution=512,
        lr=1e-4,
        warmup_steps=0,
        steps=5000,
        repa="no",
        **_GEN_DEFAULTS,
    ),
}
# "All stages: AdamW beta (0.9, 0.95), eps 1e-15, weight decay 0, grad clip 1.0, constant LR."
PAPER_OPTIMIZER = {"betas": (0.9, 0.95), "eps": 1e-15, "weight_decay": 0.0, "grad_clip": 1.0}


def fmt_number(value: float) -> str:
    """Numbers as the paper prints them: ``3,840``, ``1e-4``, ``0.5``, ``1e-15``."""
    if isinstance(value, int) or (float(value).is_integer() and abs(value) >= 1):
        return f"{int(value):,}"
    if value != 0 and abs(value) < 1e-2:  # learning rates and eps: mantissa-exponent
        mantissa, exponent = f"{value:.3e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    return f"{value:g}"


def fmt_groups(groups: tuple[str, ...]) -> str:
    """``("vision", "und")`` -> ``"vision tower, und. branch"``."""
    return ", ".join(GROUP_LABELS.get(g, g) for g in groups)


@dataclass(frozen=True)
class StageRun:
    """A stage's resolved config and the world size its checkpoint implies (None: unknown)."""

    cfg: TrainConfig
    world: int | None


def load_stage(run_dir: Path, stage: int) -> StageRun | None:
    """``<run_dir>/stage<N>/config.json`` as a :class:`StageRun`, or None if the stage has not
    written one (not run yet)."""
    folder = Path(stage_dir(str(run_dir), stage))
    path = folder / "config.json"
    if not path.is_file():
        return None
    cfg = TrainConfig.from_dict(json.loads(path.read_text()))
    return StageRun(cfg, _world_size(folder, cfg))


def _world_size(folder: Path, cfg: TrainConfig) -> int | None:
    """Processes of the run: data position / (step x batch x accum) of its newest checkpoint."""
    latest = latest_checkpoint(folder / "checkpoints")
    if latest is None or not (latest / "state.json").is_file():
        return None
    state = json.loads((latest / "state.json").read_text())
    per_process = max(1, int(state["step"])) * cfg.batch_size * cfg.grad_accum
    world, rest = divmod(int(state["data_position"]), per_process)
    return world if world >= 1 and rest == 0 else None


def _batch(run: StageRun) -> str:
    cfg, local = run.cfg, run.cfg.batch_size * run.cfg.grad_accum
    if run.world is None:
        return f"{local:,} per process ({cfg.batch_size} x {cfg.grad_accum} accum; world unknown)"
    total = local * run.world
    return f"{total:,} ({cfg.batch_size} x {cfg.grad_accum} accum x {run.world} proc)"


def _repa(cfg: TrainConfig) -> str:
    if not cfg.repa_weight:
        return "no"
    target = Path(cfg.repa_encoder).name if cfg.repa_encoder else "stage-1 vision tower"
    depth = cfg.model_overrides.get("repa_depth")
    at = f", after block {depth}" if depth is not None else ""
    return f"yes, {target} features, weight {fmt_number(cfg.repa_weight)}{at}"


def _init(cfg: TrainConfig) -> str:
    if cfg.janus_dir:
        return Path(cfg.janus_dir).name
    if cfg.init_from:  # .../stage1/final -> "stage1/final"
        return "/".join(Path(cfg.init_from).parts[-2:])
    return "random"


def _gen_only(cfg: TrainConfig, value: str) -> str:
    """A generation setting; "-" for a run without generation examples."""
    return value if cfg.task_ratio[1] else "-"


def _shift(cfg: TrainConfig) -> str:
    return _gen_only(cfg, fmt_number(cfg.timestep_shift))


# (setting, this run's value, the paper's value) of each row of Table 1, in order.
Row = tuple[str, Callable[[StageRun], str], Callable[[PaperStage], str]]
ROWS: tuple[Row, ...] = (
    ("trainable groups", lambda r: fmt_groups(r.cfg.trainable), lambda p: p.trainable),
    ("tasks (und:gen)", lambda r: "{}:{}".format(*r.cfg.task_ratio), lambda p: p.tasks),
    ("initialised from", lambda r: _init(r.cfg), lambda p: p.init),
    ("resolution (px)", lambda r: str(r.cfg.image_size), lambda p: str(p.resolution)),
    ("learning rate", lambda r: fmt_number(r.cfg.lr), lambda p: fmt_number(p.lr)),
    (
        "warm-up steps",
        lambda r: fmt_number(r.cfg.warmup_steps),
        lambda p: fmt_number(p.warmup_steps),
    ),
    ("steps", lambda r: fmt_number(r.cfg.steps), lambda p: fmt_number(p.steps)),
    ("global batch", _batch, lambda p: fmt_number(p.batch)),
    ("REPA", lambda r: _repa(r.cfg), lambda p: p.repa),
    ("AdamW betas", lambda r: str(tuple(r.cfg.betas)), lambda p: str(PAPER_OPTIMIZER["betas"])),
    ("AdamW eps", lambda r: fmt_number(r.cfg.eps), lambda p: fmt_number(PAPER_OPTIMIZER["eps"])),
    (
        "weight decay",
        lambda r: fmt_number(r.cfg.weight_decay),
        lambda p: fmt_number(PAPER_OPTIMIZER["weight_decay"]),
    ),
    (
        "grad clip",
        lambda r: repr(float(r.cfg.grad_clip)),
        lambda p: repr(PAPER_OPTIMIZER["grad_clip"]),
    ),
    ("timestep shift (training)", lambda r: _shift(r.cfg), lambda p: p.timestep_shift),
    (
        "text dropout (CFG)",
        lambda r: _gen_only(r.cfg, f"{r.cfg.text_dropout_prob:g}"),
        lambda p: p.text_dropout,
    ),
)


def run_column(stage: int) -> str:
    return f"stage {stage}, {THIS_RUN}"


def paper_column(stage: int) -> str:
    return f"stage {stage}, {FROM_PAPER}"


def training_table(run_dir: str | Path) -> pd.DataFrame:
    """Paper Table 1 with this run beside it: one row per setting; per stage a column of this
    run's value (``"not run"`` where the stage wrote no ``config.json``) and one of the paper's.

    Args:
        run_dir: the run root (``papermill_runs/<profile>``, relative to the repository or
            absolute), holding ``stage1/`` .. ``stage3/``.
    """
    root = project_path(run_dir)  # relative paths are the repository's, as the loop's
    runs = {s: load_stage(root, s) for s in STAGES}
    table: dict[str, list[str]] = {"setting": [name for name, _, _ in ROWS]}
    for s in STAGES:
        run, paper = runs[s], PAPER_STAGES[s]
        table[run_column(s)] = [NOT_RUN if run is None else ours(run) for _, ours, _ in ROWS]
        table[paper_column(s)] = [theirs(paper) for _, _, theirs in ROWS]
    return pd.DataFrame(table)
