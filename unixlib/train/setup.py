"""Building the model for a stage: config, initialisation, VAE, frozen parameter groups.

Kept apart from the loop so that notebooks and evaluation build models the same way.
"""

from __future__ import annotations

import inspect

import torch
from diffusers import AutoencoderKL
from torch import nn

from unixlib.config import project_path
from unixlib.data.text.tokenizer import ReportTokenizer
from unixlib.model.config import preset
from unixlib.model.unix import UniX
from unixlib.train.config import GROUPS, TrainConfig

# State-dict prefixes of each parameter group (the naming of unixlib/model/unix.py).
_GROUP_PREFIXES: dict[str, tuple[str, ...]] = {
    "vision": ("vision_tower.",),
    "connector": ("connector.",),
    "und": ("language_model.embed_tokens.", "language_model.norm_und.", "lm_head."),
    "gen": (
        "language_model.norm_gen.",
        "vae2llm.",
        "llm2vae.",
        "time_embedder.",
        "repa_projector.",
        "cond_proj.",  # the final_states conditioning ablation only
    ),
}


def group_of(name: str) -> str | None:
    """The group a parameter belongs to (None: the frozen VAE)."""
    if name.startswith("language_model.layers."):
        return "gen" if ".gen." in name else "und"
    for group, prefixes in _GROUP_PREFIXES.items():
        if name.startswith(prefixes):
            return group
    if name.startswith("vae."):
        return None
    raise KeyError(f"parameter {name} belongs to no group; update train/setup.py")


def set_trainable(model: nn.Module, groups: tuple[str, ...]) -> dict[str, int]:
    """requires_grad = (group in groups) for every parameter; returns parameters per group.

    With shared weights (``mot=False``) the blocks have no ``.gen.`` copies, so training "gen"
    trains only the generation I/O while "und" trains the shared blocks (the ablation's point:
    both tasks move the same weights)."""
    unknown = set(groups) - set(GROUPS)
    if unknown:
        raise ValueError(f"unknown groups {sorted(unknown)}")
    counts = dict.fromkeys(GROUPS, 0)
    for name, p in model.named_parameters():
        group = group_of(name)
        p.requires_grad_(group in groups)
        if group is not None:
            counts[group] += p.numel()
    return counts


def vocab_rows(cfg: TrainConfig, tokenizer: ReportTokenizer) -> int:
    """The model's vocabulary: the Janus-Pro embedding's rows when stage 1 starts from Janus-Pro
    (102,400, read from the checkpoint's stored shape; never the tokenizer's ~100.6k entries),
    else the tokenizer's. A tokenizer with more entries than the embedding has rows is an error.
    """
    if not (cfg.janus_dir and not cfg.init_from):
        return tokenizer.vocab_size
    from unixlib.model.weights import embedding_rows

    rows = embedding_rows(project_path(cfg.janus_dir))
    if tokenizer.vocab_size > rows:
        raise ValueError(
            f"the tokenizer needs {tokenizer.vocab_size} embedding rows, the "
            f"Janus-Pro checkpoint at {cfg.janus_dir} has {rows}"
        )
    return rows


def set_activation_checkpointing(model: UniX, cfg: TrainConfig) -> None:
    """Recompute the MoT blocks (and the SigLIP layers when they train) in backward."""
    model.language_model.gradient_checkpointing = cfg.activation_checkpointing
    tower = model.vision_tower
    if cfg.activation_checkpointing and "vision" in cfg.trainable:
        tower.activation_checkpointing_enable({"use_reentrant": False})
    elif tower.is_activation_checkpointing:
        tower.activation_checkpointing_disable()


def ddp_needs_unused_parameters(cfg: TrainConfig, mot: bool = True) -> bool:
    """Whether a trainable parameter can get no gradient in a step of this stage, which DDP must
    then be told (``find_unused_parameters``, an extra graph traversal every step): the REPA
    projector without REPA (stage 3), a group of a task the stage has no examples of, or the
    shared-weight ablation. Stages 1 and 2 of the paper use every trained parameter."""
    und_task, gen_task = (n > 0 for n in cfg.task_ratio)
    trains = set(cfg.trainable)
    if not mot:
        return True
    if "gen" in trains and (not gen_task or cfg.repa_weight <= 0):
        return True  # no generation examples, or the REPA projector idle
    return bool(trains & {"vision", "connector", "und"}) and not und_task


def model_config(cfg: TrainConfig, tokenizer: ReportTokenizer) -> dict:
    """UniXConfig fields a run sets: vocabulary, special ids, the stage's image size."""
    size_key = "image_size_und" if cfg.stage == 1 else "image_size_gen"
    values = {"vocab_size": vocab_rows(cfg, tokenizer), size_key: cfg.image_size}
    values.update({f"{k}_id": v for k, v in tokenizer.special_ids.items()})
    values.update(cfg.model_overrides)
    return values


def build_model(cfg: TrainConfig, tokenizer: ReportTokenizer) -> UniX:
    """The stage's starting model: the previous stage's weights (``init_from``), else a fresh
    preset (with Janus-Pro's weights when ``janus_dir`` is set); then the VAE of ``vae_dir``.
    Relative paths are relative to the repository root (``unixlib.config.project_path``)."""
    values = model_config(cfg, tokenizer)
    if cfg.init_from:
        model = UniX.from_pretrained(project_path(cfg.init_from), **values)
    else:
        model = UniX(preset(cfg.preset, **values))
        if cfg.janus_dir:
            from unixlib.model.weights import import_janus_pro

            # strict: a missing or mismatched key is an error naming it, before any step
            print(import_janus_pro(model, project_path(cfg.janus_dir), strict=True))
    if cfg.vae_dir:
        from unixlib.model.vae_files import load_vae

        vae = load_vae(project_path(cfg.vae_dir))
        check = model.config
        if vae.latent_channels != check.latent_channels or vae.downsample != check.vae_downsample:
            raise ValueError(
                f"VAE at {cfg.vae_dir} has {vae.latent_channels} channels / "
                f"{vae.downsample}x down; the model expects {check.latent_channels} / "
                f"{check.vae_downsample}x"
            )
        model.vae = vae
        # Record the VAE in the model config so that a saved stage reloads with it.
        check.vae_scale, check.vae_shift = vae.scale, vae.shift
        check.vae_config = autoencoder_init_args(vae.autoencoder)
    return model


def autoencoder_init_args(autoencoder: AutoencoderKL) -> dict:
    """The constructor arguments of a diffusers AutoencoderKL (its config minus bookkeeping)."""
    keys = set(inspect.signature(AutoencoderKL.__init__).parameters) - {"self"}
    return {
        k: list(v) if isinstance(v, tuple) else v
        for k, v in autoencoder.config.items()
        if k in keys
    }


@torch.no_grad()
def frozen_fingerprint(model: nn.Module) -> dict[str, torch.Tensor]:
    """Copies of every frozen parameter (tests check they stay bit-identical)."""
    return {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
