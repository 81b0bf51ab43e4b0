"""Training configuration: one dataclass for every stage; a stage is a set of flags.

PAPER.md Table 1, with the paper's values as the ``paper`` numbers below::

    stage 1  understanding SFT   trains vision, connector, und    384 px  lr 1e-4  warm-up 80
    stage 2  generation PT       trains gen (+ REPA projector)    256 px  lr 2e-4  warm-up 2000
    stage 3  generation FT       trains gen                       512 px  lr 1e-4  warm-up 0

All stages: AdamW (0.9, 0.95), eps 1e-15, no weight decay, clip 1.0, constant LR after warm-up.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unixlib.config.paths import latent_cache_path, stage_dir, vae_dir
from unixlib.data.datasets import REPORT_COLUMNS
from unixlib.train.preemption import DEFAULT_SIGNALS, signal_numbers

if TYPE_CHECKING:
    from unixlib.model.config import UniXConfig

# Parameter groups of UniX that a stage can train (see loop.parameter_groups):
#   vision: SigLIP tower; connector: the 2-layer MLP; und: understanding branch of every block,
#   its final norm, token embeddings and lm_head; gen: generation branch of every block, its final
#   norm, vae2llm, llm2vae, time embedder and the REPA projector.
GROUPS = ("vision", "connector", "und", "gen")

# Training knobs whose one home is TrainConfig (never UniXConfig / model_overrides).
TRAINING_KNOBS = ("timestep_shift", "ce_weight", "flow_weight", "repa_weight", "text_dropout_prob")

# UniXConfig fields that identify a model of the paper's size (TrainConfig.parallel_mode).
_LLM_SHAPE = ("hidden_size", "num_layers", "intermediate_size")

STAGE_DEFAULTS: dict[int, dict[str, Any]] = {
    1: {
        "trainable": ("vision", "connector", "und"),
        "task_ratio": (1, 0),
        "lr": 1e-4,
        "warmup_steps": 80,
        "repa_weight": 0.0,
    },
    2: {
        "trainable": ("gen",),
        "task_ratio": (0, 1),
        "lr": 2e-4,
        "warmup_steps": 2000,
        "repa_weight": 0.5,
    },
    3: {
        "trainable": ("gen",),
        "task_ratio": (0, 1),
        "lr": 1e-4,
        "warmup_steps": 0,
        "repa_weight": 0.0,
    },
}


@dataclass
class TrainConfig:
    """Everything one training run needs; written to ``<run_dir>/config.json``."""

    stage: int = 1  # 1 und SFT | 2 gen PT | 3 gen FT (selects the defaults of STAGE_DEFAULTS)
    run_dir: str = "papermill_runs/smoke/stage1"  # metrics.jsonl, checkpoints/, final/
    data_dir: str = "papermill_runs/smoke/data"  # notebook 01's output (processed.parquet, ...)
    init_from: str = ""  # a final/ or checkpoint dir of the previous stage; "" = fresh weights
    preset: str = "tiny"  # UniXConfig preset: tiny | small | paper
    model_overrides: dict[str, Any] = field(default_factory=dict)  # UniXConfig fields to change
    janus_dir: str = ""  # stage 1 of the paper: Janus-Pro-1B initialisation (local directory)
    vae_dir: str = ""  # stages 2-3: the VAE (trained in 03 on SynthCXR, or kl-f16 local)
    latent_cache: str = ""  # safetensors latents of the training split (encode once, reuse)
    repa_encoder: str = ""  # RadDino directory; "" = the (frozen) stage-1 SigLIP tower
    trainable: tuple[str, ...] | None = None  # None = the stage's default groups
    task_ratio: tuple[int, int] | None = None  # und:gen examples per batch; None = stage default
    image_size: int = 64  # px of the stage's images (und: SigLIP input; gen: VAE input)
    steps: int = 100
    batch_size: int = 16  # per device and micro-step; global = batch * accum * world
    grad_accum: int = 1
    lr: float | None = None  # None = stage default
    warmup_steps: int | None = None
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-15  # as the paper (BAGEL); tiny eps keeps Adam's update scale exact in bf16
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    # --- the objective: every training knob has its home here (not in UniXConfig) ---
    repa_weight: float | None = None  # None = stage default (0.5 in stage 2)
    # P(report replaced by the empty context) in generation training, for CFG (BAGEL's
    # default; the paper is silent). Applied on the data side: packing.text_dropout.
    text_dropout_prob: float = 0.1
    timestep_shift: float = 1.0  # training t = shift(sigmoid(N(0,1))); the released config: 1
    ce_weight: float = 1.0  # loss = ce_weight * ce + flow_weight * flow + repa_weight * repa
    flow_weight: float = 1.0
    max_report_tokens: int = 256
    # report_clean | report_raw: the text trained on (raw only for the cleaning ablation, 06)
    report_column: str = "report_clean"
    ema_decay: float = 0.0  # 0 = no EMA; else EMA of the trained parameters
    # Stage 1 from a random tower only (no janus_dir): steps of a 14-label head on the SigLIP
    # tower before the report loss, a stand-in for its pretraining (vision_pretrain.py); 0 = off
    vision_pretrain_steps: int = 0
    vision_pretrain_lr: float = 1e-3
    # Recompute every MoT block (and the SigLIP layers, when trained) in backward instead of
    # keeping their activations: about a third more compute, a fraction of the activation
    # memory (train/memory.py); the paper profile turns it on to fit 48 GB GPUs
    activation_checkpointing: bool = False
    # Packed sequences: each micro-batch's samples laid out one after another in one row (no
    # padding to the longest sample; flex attention on CUDA, exact per-sample SDPA on CPU:
    # model/attention.py); False = the padded (B, L) reference path with a dense mask
    packing: bool = True
    # Token budget of one forward (real tokens): a micro-batch's samples are packed in order into
    # as few sequences of at most max_tokens tokens as needed, each its own forward/backward,
    # with the losses normalised by the whole micro-batch's counts (the same gradient);
    # 0 = no budget (one sequence per micro-batch)
    max_tokens: int = 0
    # auto = bf16 autocast on CUDA and on CPUs with bf16 instructions, fp32 elsewhere (CPUs
    # without them emulate bf16 and run autocast several times slower; train/precision.py)
    # | bf16 | no
    mixed_precision: str = "auto"
    seed: int = 0
    log_every: int = 10
    checkpoint_every: int = 0  # 0 = only the final checkpoint
    checkpoints_total_limit: int = 2
    device: str = "auto"  # auto | cpu | cuda
    # With several processes (torchrun): ddp replicates the model on every rank; fsdp shards
    # weights, gradients and optimizer state (train/fsdp.py); auto = fsdp for the paper preset
    # (or a model of its shape: see parallel_mode)
    parallel: str = "auto"
    # Checkpoint layout: full (one-process files, gathered on rank 0) | sharded (every rank
    # writes its shards with torch.distributed.checkpoint; loads into any layout, one process
    # included) | auto = sharded for a paper-shaped model under FSDP
    checkpoint_format: str = "auto"
    # Signals that stop the run after the current optimizer step with a checkpoint of the step
    # reached (exit status 75; --resume continues): SIGTERM is what SLURM (preemption) and
    # Kubernetes send before killing a job, SIGUSR1 what sbatch --signal=B:USR1@300 asks for
    # before the time limit (train/preemption.py); () = die of them as before
    preempt_signals: tuple[str, ...] = DEFAULT_SIGNALS

    def __post_init__(self) -> None:
        if self.stage not in STAGE_DEFAULTS:
            raise ValueError(f"stage must be 1, 2 or 3, got {self.stage!r}")
        defaults = STAGE_DEFAULTS[self.stage]
        for key in ("trainable", "task_ratio", "lr", "warmup_steps", "repa_weight"):
            if getattr(self, key) is None:
                setattr(self, key, defaults[key])
        self.trainable = tuple(self.trainable)
        self.task_ratio = tuple(int(x) for x in self.task_ratio)
        self.betas = tuple(float(b) for b in self.betas)
        self.preempt_signals = tuple(self.preempt_signals)
        signal_numbers(self.preempt_signals)  # an unknown or uncatchable name is an error
        unknown = set(self.trainable) - set(GROUPS)
        if unknown:
            raise ValueError(f"unknown parameter groups {sorted(unknown)}; known: {GROUPS}")
        if len(self.task_ratio) != 2 or min(self.task_ratio) < 0 or sum(self.task_ratio) == 0:
            raise ValueError(
                f"task_ratio must be two non-negative ints, not both 0: {self.task_ratio}"
            )
        if self.mixed_precision not in ("auto", "bf16", "no"):
            raise ValueError(
                f"mixed_precision must be auto, bf16 or no, got {self.mixed_precision!r}"
            )
        if self.checkpoint_format not in ("auto", "full", "sharded"):
            raise ValueError(
                f"checkpoint_format must be auto, full or sharded, got {self.checkpoint_format!r}"
            )
        if self.parallel not in ("auto", "ddp", "fsdp"):
            raise ValueError(f"parallel must be auto, ddp or fsdp, got {self.parallel!r}")
        if self.report_column not in REPORT_COLUMNS:
            raise ValueError(
                f"report_column must be one of {REPORT_COLUMNS}, got {self.report_column!r}"
            )
        knobs = sorted(set(self.model_overrides) & set(TRAINING_KNOBS))
        if knobs:
            raise ValueError(
                f"{knobs} are training knobs: set them on the training config, not "
                "in model_overrides"
            )
        if not 0.0 <= self.text_dropout_prob < 1.0:
            raise ValueError(f"text_dropout_prob must be in [0, 1), got {self.text_dropout_prob}")
        if self.timestep_shift <= 0:
            raise ValueError(f"timestep_shift must be > 0, got {self.timestep_shift}")
        if self.vision_pretrain_steps < 0:
            raise ValueError(
                f"vision_pretrain_steps must be >= 0, got {self.vision_pretrain_steps}"
            )
        if self.vision_pretrain_steps and (self.stage != 1 or "vision" not in self.trainable):
            raise ValueError("vision_pretrain_steps applies to stage 1 with a trained tower only")
        if not isinstance(self.packing, bool):
            raise ValueError(f"packing must be true or false, got {self.packing!r}")
        if isinstance(self.max_tokens, bool) or not isinstance(self.max_tokens, int):
            raise ValueError(f"max_tokens must be an int (0 = no budget), got {self.max_tokens!r}")
        if self.max_tokens < 0:
            raise ValueError(f"max_tokens must be >= 0 (0 = no budget), got {self.max_tokens}")
        for key in ("steps", "batch_size", "grad_accum", "image_size"):
            if not isinstance(getattr(self, key), int) or getattr(self, key) < 1:
                raise ValueError(f"{key} must be a positive int, got {getattr(self, key)!r}")

    @property
    def tasks(self) -> tuple[str, ...]:
        """The tasks this run trains: ``und`` and/or ``gen``."""
        return tuple(t for t, n in zip(("und", "gen"), self.task_ratio, strict=True) if n > 0)

    def parallel_mode(self, model_config: UniXConfig | None = None) -> str:
        """``ddp`` or ``fsdp`` (used only when world > 1): ``parallel``, where auto = fsdp for the
        paper preset. Stages 2-3 start from ``init_from`` and leave ``preset`` at its default, so
        a ``model_config`` with the paper's LLM shape counts as the paper preset too."""
        if self.parallel != "auto":
            return self.parallel
        return "fsdp" if self._paper_shaped(model_config) else "ddp"

    def _paper_shaped(self, model_config: UniXConfig | None) -> bool:
        """The paper preset, or a model of its LLM shape (stages 2-3 keep preset's default)."""
        from unixlib.model.config import PRESETS  # lazy: no transformers import for a config

        return self.preset == "paper" or (
            model_config is not None
            and all(getattr(model_config, k) == PRESETS["paper"][k] for k in _LLM_SHAPE)
        )

    def sharded_checkpoints(self, model_config: UniXConfig | None, sharded: bool) -> bool:
        """Whether checkpoints are written with torch.distributed.checkpoint (see
        ``checkpoint_format``); ``sharded``: the model is FSDP-sharded in this run."""
        if self.checkpoint_format != "auto":
            return self.checkpoint_format == "sharded"
        return sharded and self._paper_shaped(model_config)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build from a mapping; unknown keys are an error naming them."""
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown training config keys: {sorted(unknown)}")
        return cls(**values)


# The notebook that runs each stage, and the run-relative folders the stages share.
STAGE_NOTEBOOKS = {1: "02_train_ar", 2: "03_train_diffusion", 3: "04_joint_stage"}


def stage_config(stage: int, params: dict[str, Any]) -> TrainConfig:
    """The TrainConfig of ``stage`` from a notebook's (or profile's) flat parameters.

    Parameters named like TrainConfig fields are taken as they are; paths follow the run layout:
    ``<run_dir>/data`` (notebook 01), ``<run_dir>/stage<N>`` (this stage), the previous stage's
    ``final/`` as initialisation, and for generation the VAE and the latent cache of notebook 03.
    """
    root = params["run_dir"]
    names = {f.name for f in fields(TrainConfig)} - {"run_dir", "stage"}
    values = {k: params[k] for k in names if k in params}
    values.update(stage=stage, run_dir=stage_dir(root, stage), data_dir=f"{root}/data")
    if stage > 1 and not values.get("init_from"):
        values["init_from"] = f"{stage_dir(root, stage - 1)}/final"
    if stage > 1:
        values["vae_dir"] = params.get("vae_dir") or vae_dir(root)
        if "latent_cache" not in params:
            values["latent_cache"] = latent_cache_path(
                root, values.get("image_size", TrainConfig.image_size)
            )
    for key in ("betas", "trainable", "task_ratio", "preempt_signals"):
        if isinstance(values.get(key), list):
            values[key] = tuple(values[key])
    return TrainConfig.from_dict(values)
