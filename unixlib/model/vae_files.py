"""VAE files on disk: the latent normalisation, loading a VAE, and the latent cache.

:func:`load_vae` accepts three kinds of local input (nothing is ever downloaded):

1. a directory written by :func:`unixlib.train.vae_train.train_vae`, or any diffusers
   ``AutoencoderKL`` directory (``config.json`` + ``diffusion_pytorch_model.safetensors``)
   with a ``latent_norm.json`` beside it, or a model directory's ``vae/`` (whose
   ``config.json`` sets ``shift_factor``: its ``scaling_factor``/``shift_factor`` are the norm),
   or explicit ``scale``/``shift``;
2. a latent-diffusion (CompVis LDM) autoencoder checkpoint (``.ckpt``/``.pt``/``.pth``/
   ``.safetensors``) with its yaml - the paper's kl-f16 - or a directory holding exactly one
   such checkpoint and one yaml (the layout of the LDM model zoo's ``kl-f16.zip``);
   its scale/shift default to the paper's (the ``paper`` preset's ``vae_scale``/``vae_shift``).

The latent cache stores normalised latents once so notebooks 03 and 04 encode each image once:
``<name>.safetensors`` (tensor ``latents`` (N, C, h, w)) + ``<name>.ids.json`` (row ids).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
import yaml
from diffusers import AutoencoderKL
from safetensors.torch import load_file, save_file
from torch import Tensor

from unixlib.model.config import PRESETS
from unixlib.model.vae import (
    VAEWrapper,
    build_autoencoder,
    convert_ldm_vae_state_dict,
    ldm_vae_config,
)

__all__ = [
    "LATENT_NORM_FILE",
    "load_latent_cache",
    "load_vae",
    "read_latent_norm",
    "save_latent_cache",
    "write_latent_norm",
]

LATENT_NORM_FILE = "latent_norm.json"
DIFFUSERS_FILES = ("config.json", "diffusion_pytorch_model.safetensors")
LDM_SUFFIXES = frozenset({".ckpt", ".pt", ".pth", ".safetensors"})
# The release's kl-f16 normalisation lives once, in the paper preset (model/config.py).
PAPER_VAE_SCALE: float = PRESETS["paper"]["vae_scale"]
PAPER_VAE_SHIFT: float = PRESETS["paper"]["vae_shift"]


def _write_atomic(path: Path, write: Any) -> None:
    """``write(tmp_path)`` then rename, so a crash never leaves a half-written file."""
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def write_latent_norm(
    directory: Path, scale: float, shift: float, downsample: int, latent_channels: int
) -> Path:
    """Write ``latent_norm.json``: ``z_norm = scale * (z - shift)`` plus the latent geometry."""
    norm = {
        "scale": float(scale),
        "shift": float(shift),
        "downsample": int(downsample),
        "latent_channels": int(latent_channels),
    }
    path = Path(directory) / LATENT_NORM_FILE
    _write_atomic(path, lambda tmp: tmp.write_text(json.dumps(norm, indent=2) + "\n"))
    return path


def read_latent_norm(directory: Path) -> dict[str, float]:
    """Read and check ``<directory>/latent_norm.json`` (keys as :func:`write_latent_norm`)."""
    path = Path(directory) / LATENT_NORM_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: the VAE's latent scale/shift are unknown (train_vae writes it; "
            "for a foreign diffusers VAE pass scale= and shift= to load_vae)"
        )
    norm = json.loads(path.read_text())
    missing = {"scale", "shift", "downsample", "latent_channels"} - set(norm)
    if missing:
        raise ValueError(f"{path}: missing keys {sorted(missing)}")
    if not norm["scale"] > 0:
        raise ValueError(f"{path}: scale must be > 0, got {norm['scale']}")
    return norm


def load_vae(
    path: str | os.PathLike,
    sample_posterior: bool = False,
    scale: float | None = None,
    shift: float | None = None,
    ldm_config: str | os.PathLike | None = None,
) -> VAEWrapper:
    """Load a frozen :class:`VAEWrapper` (on CPU) from local files.

    Args:
        path: a diffusers ``AutoencoderKL`` directory, or an LDM checkpoint file, or a directory
            with one LDM checkpoint and one yaml (see the module docstring).
        sample_posterior: sample ``q(z|x)`` in ``encode`` (the release's quirk) instead of its mean.
        scale, shift: override the normalisation (both or neither). Defaults: the directory's
            ``latent_norm.json``; for an LDM checkpoint the paper's 0.238092 / -0.201906.
        ldm_config: the LDM yaml; default ``<checkpoint stem>.yaml`` beside the checkpoint.
    Raises:
        FileNotFoundError naming the missing file(s); ValueError for a checkpoint whose keys do
        not match its config, or a ``latent_norm.json`` that contradicts the weights.
    """
    path = Path(path)
    if (scale is None) != (shift is None):
        raise ValueError("give both scale and shift, or neither")
    if not path.exists():
        raise FileNotFoundError(f"VAE path {path} does not exist")
    if path.is_dir() and (path / DIFFUSERS_FILES[0]).is_file():
        return _load_diffusers(path, sample_posterior, scale, shift)
    if path.is_dir():
        path, ldm_config = _ldm_files_in(path, ldm_config)
    if path.suffix not in LDM_SUFFIXES:
        raise ValueError(f"{path}: not a VAE checkpoint (expected one of {sorted(LDM_SUFFIXES)})")
    config_path = Path(ldm_config) if ldm_config is not None else path.with_suffix(".yaml")
    if not config_path.is_file():
        raise FileNotFoundError(f"LDM config {config_path} for checkpoint {path} is missing")
    autoencoder = _load_ldm(path, config_path)
    if scale is None:
        scale, shift = PAPER_VAE_SCALE, PAPER_VAE_SHIFT
    return VAEWrapper(autoencoder, scale, shift, sample_posterior)


def _load_diffusers(
    path: Path, sample_posterior: bool, scale: float | None, shift: float | None
) -> VAEWrapper:
    missing = [name for name in DIFFUSERS_FILES if not (path / name).is_file()]
    if missing:
        raise FileNotFoundError(f"diffusers VAE directory {path} lacks {missing}")
    if scale is None and not (path / LATENT_NORM_FILE).is_file():
        # A model directory's vae/ (saving.py) keeps the norm in diffusers' own config keys.
        config = json.loads((path / DIFFUSERS_FILES[0]).read_text())
        if config.get("shift_factor") is not None:
            scale, shift = float(config["scaling_factor"]), float(config["shift_factor"])
    norm = read_latent_norm(path) if scale is None else None  # fail before loading weights
    autoencoder = AutoencoderKL.from_pretrained(path, local_files_only=True, use_safetensors=True)
    if norm is not None:
        geometry = (
            2 ** (len(autoencoder.config.block_out_channels) - 1),
            autoencoder.config.latent_channels,
        )
        found = (norm["downsample"], norm["latent_channels"])
        if found != geometry:
            raise ValueError(
                f"{path / LATENT_NORM_FILE}: (downsample, latent_channels)={found} but the "
                f"weights have {geometry}"
            )
        scale, shift = norm["scale"], norm["shift"]
    return VAEWrapper(autoencoder, scale, shift, sample_posterior)


def _ldm_files_in(directory: Path, ldm_config: str | os.PathLike | None) -> tuple[Path, Path]:
    """The single checkpoint and (unless given) the single yaml inside an LDM directory."""
    ckpts = sorted(p for p in directory.iterdir() if p.suffix in LDM_SUFFIXES)
    yamls = sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml"))
    if len(ckpts) != 1 or (ldm_config is None and len(yamls) != 1):
        raise FileNotFoundError(
            f"{directory}: neither a diffusers VAE ({DIFFUSERS_FILES[0]} missing) nor an LDM "
            f"directory with one checkpoint and one yaml (found checkpoints "
            f"{[p.name for p in ckpts]}, yaml {[p.name for p in yamls]})"
        )
    return ckpts[0], Path(ldm_config) if ldm_config is not None else yamls[0]


def _load_ldm(checkpoint: Path, config_path: Path) -> AutoencoderKL:
    """Build the diffusers twin of an LDM autoencoder and load the converted weights strictly."""
    ldm_yaml = yaml.safe_load(config_path.read_text())
    if not isinstance(ldm_yaml, dict):
        raise ValueError(f"{config_path}: not a yaml mapping")
    config = ldm_vae_config(ldm_yaml)
    if checkpoint.suffix == ".safetensors":
        state = load_file(checkpoint)
    else:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state)  # Lightning checkpoints nest the weights
    converted, _skipped, unrecognised = convert_ldm_vae_state_dict(
        state, levels=len(config["block_out_channels"])
    )
    if unrecognised:
        raise ValueError(f"{checkpoint}: unrecognised LDM keys {unrecognised[:5]} ...")
    autoencoder = build_autoencoder(config)
    result = autoencoder.load_state_dict(converted, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(
            f"{checkpoint} does not match {config_path}: missing {result.missing_keys[:5]}, "
            f"unexpected {result.unexpected_keys[:5]}"
        )
    return autoencoder


def _ids_path(path: Path) -> Path:
    return path.with_name(path.name.removesuffix(".safetensors") + ".ids.json")


def save_latent_cache(latents: Tensor, ids: list[str], path: str | os.PathLike) -> Path:
    """Save normalised latents ``(N, C, h, w)`` and their row ids (unique strings, N of them).

    Writes ``path`` (must end in ``.safetensors``) and ``<stem>.ids.json``; returns ``path``.
    """
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"latent cache path must end in .safetensors, got {path.name}")
    if latents.dim() != 4 or not torch.isfinite(latents).all():
        raise ValueError(f"latents must be finite (N, C, h, w), got {tuple(latents.shape)}")
    ids = [str(i) for i in ids]
    if len(ids) != len(latents) or len(set(ids)) != len(ids):
        raise ValueError(f"need {len(latents)} unique ids, got {len(ids)} ({len(set(ids))} unique)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tensor = latents.detach().to("cpu", torch.float32).contiguous()
    _write_atomic(path, lambda tmp: save_file({"latents": tensor}, str(tmp)))
    meta = json.dumps({"ids": ids, "shape": list(tensor.shape)})
    _write_atomic(_ids_path(path), lambda tmp: tmp.write_text(meta))
    return path


def load_latent_cache(path: str | os.PathLike) -> tuple[Tensor, list[str]]:
    """Read what :func:`save_latent_cache` wrote: (latents (N, C, h, w) float32, ids)."""
    path = Path(path)
    missing = [str(p) for p in (path, _ids_path(path)) if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"latent cache incomplete: {missing} missing")
    latents = load_file(path)["latents"]
    meta = json.loads(_ids_path(path).read_text())
    if len(meta["ids"]) != len(latents) or meta["shape"] != list(latents.shape):
        raise ValueError(
            f"{path}: {len(latents)} latents of shape {list(latents.shape)} but the ids file "
            f"lists {len(meta['ids'])} ids for shape {meta['shape']}"
        )
    return latents, meta["ids"]
