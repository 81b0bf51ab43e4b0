"""Importer of the official UniX release: ``model.safetensors`` (ZrH42/UniX, BAGEL's
``Qwen2MoTDecoderLayer`` with ``*_moe_gen`` copies) and its latent-diffusion kl-f16 VAE, into
UniX's state-dict naming, over the helpers of :mod:`unixlib.model.weights`.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import yaml
from torch import nn

from unixlib.model.flow import sincos_2d_table
from unixlib.model.key_maps import unix_release_to_unix
from unixlib.model.vae import convert_ldm_vae_state_dict, ldm_vae_config
from unixlib.model.weights import (
    ImportReport,
    _apply,
    _note_vit_activation,
    _on_meta,
    load_foreign_state_dict,
)

__all__ = ["import_unix_release"]


def _find_vae(unix_dir: Path) -> tuple[Path, Path] | None:
    """(checkpoint, yaml) of the release's VAE: ``vae/*.ckpt|safetensors`` + a yaml beside it."""
    for ckpt in sorted((unix_dir / "vae").glob("*")) if (unix_dir / "vae").is_dir() else []:
        if ckpt.suffix in (".ckpt", ".safetensors"):
            for cfg in (ckpt.with_suffix(".yaml"), ckpt.parent / "config.yaml"):
                if cfg.is_file():
                    return ckpt, cfg
    return None


def _note_vae_layout(want: dict, have: dict, report: ImportReport) -> None:
    """Name each architecture field where the LDM yaml and the model's autoencoder differ."""
    for name in (
        "in_channels",
        "latent_channels",
        "block_out_channels",
        "layers_per_block",
        "down_block_types",
        "up_block_types",
    ):
        ckpt, ours = want[name], have[name]
        if isinstance(ckpt, list):
            ckpt, ours = list(ckpt), list(ours)
        if ckpt != ours:
            report.notes.append(f"VAE {name}: checkpoint {ckpt} vs model {ours}")


def import_unix_release(
    model: nn.Module,
    unix_dir: str | os.PathLike,
    vae_checkpoint: str | os.PathLike | None = None,
    vae_config: str | os.PathLike | None = None,
    strict: bool = True,
) -> ImportReport:
    """Load the official UniX weights (``model.safetensors``) and its kl-f16 VAE.

    The VAE is ``vae_checkpoint`` + ``vae_config`` (the LDM yaml) or, by default, the first
    ``unix_dir/vae/*.ckpt`` with ``<name>.yaml`` or ``config.yaml`` beside it; without one,
    ``vae.*`` stays untouched and a note says so. ``repa_projector.*`` is loaded only if the
    checkpoint has it (the released stage-3 model was trained without REPA). Strict by
    default (see :func:`import_janus_pro`); a meta-device model is checked without data.
    """
    unix_dir = Path(unix_dir)
    report = ImportReport(source=str(unix_dir))
    meta = _on_meta(model)
    state = load_foreign_state_dict(unix_dir, meta)
    mapped = unix_release_to_unix(state)
    ours = mapped[0]
    found = _find_vae(unix_dir) if vae_checkpoint is None else (Path(vae_checkpoint), vae_config)
    if found is not None and found[1] is None:
        raise ValueError(f"{found[0]}: give vae_config (the LDM yaml) with vae_checkpoint")
    # In scope: every top-level part of the model, except the REPA projector when the
    # checkpoint has none and the VAE when no VAE checkpoint is found.
    parts = {k.split(".", 1)[0] + "." for k in model.state_dict()}
    if not any(k.startswith("repa_projector.") for k in ours):
        parts.discard("repa_projector.")
    parts.discard("vae.")
    scope = tuple(sorted(parts))
    if found is not None:
        ldm_cfg = yaml.safe_load(Path(found[1]).read_text())
        want = ldm_vae_config(ldm_cfg)
        levels = len(want["block_out_channels"])
        _note_vae_layout(want, model.vae.autoencoder.config, report)
        vae_map = convert_ldm_vae_state_dict(load_foreign_state_dict(found[0], meta), levels)
        ours.update({f"vae.autoencoder.{k}": v for k, v in vae_map[0].items()})
        mapped[1].update(vae_map[1])
        mapped[2].extend(vae_map[2])
        scope += ("vae.",)
        report.source += f" + {found[0]}"
    else:
        report.notes.append("no VAE checkpoint found under vae/: vae.* left untouched")
    _apply(model, mapped, report, scope)
    _note_vit_activation(model, report)
    if "latent_pos_embed.pos_embed" in state and not meta:
        table = state["latent_pos_embed.pos_embed"].float()
        grid = round(table.shape[0] ** 0.5)
        ref = sincos_2d_table(table.shape[1], grid)
        if not torch.allclose(table, ref, atol=1e-2):  # atol: the release stores bf16
            report.notes.append("the release's latent_pos_embed differs from our sin-cos table")
    if strict:
        report.raise_if_incomplete()
    return report
