"""The image autoencoder of the generation branch: a frozen diffusers ``AutoencoderKL``.

:class:`VAEWrapper` hides three conventions from the rest of the model:

- pixels are gray ``(B, 1, H, W)`` in [-1, 1]; an RGB autoencoder (the release's
  latent-diffusion kl-f16) gets the gray channel repeated on the way in and the channel mean on
  the way out;
- latents are normalised, ``z_norm = scale * (z - shift)`` (the release: ``0.238092 *
  (z + 0.201906)``, i.e. ``shift = -0.201906``), so the flow sees roughly unit-variance data;
- the encoder returns the posterior **mean**; ``sample_posterior=True`` reproduces the release,
  which samples the posterior even at inference (PAPER.md "Known quirks").

Also: the tiny autoencoder config used by the CPU profiles (trained in notebook 03 with
:func:`vae_loss`, then normalised with :func:`latent_stats`), and the conversion of a
latent-diffusion (LDM) autoencoder checkpoint to diffusers naming (used by
``weights_release.import_unix_release``).
"""

from __future__ import annotations

import math
import re
from typing import Any

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL
from torch import Tensor, nn

__all__ = [
    "VAEWrapper",
    "build_autoencoder",
    "convert_ldm_vae_state_dict",
    "latent_stats",
    "ldm_vae_config",
    "tiny_autoencoder_config",
    "vae_loss",
]


class VAEWrapper(nn.Module):
    """Frozen autoencoder with gray-pixel handling and latent normalisation.

    Args:
        autoencoder: a diffusers ``AutoencoderKL`` (1- or 3-channel).
        scale, shift: latent normalisation ``scale * (z - shift)``.
        sample_posterior: sample ``z ~ q(z|x)`` in :meth:`encode` (the release's behaviour)
            instead of taking its mean.
    """

    def __init__(
        self,
        autoencoder: AutoencoderKL,
        scale: float,
        shift: float,
        sample_posterior: bool = False,
    ) -> None:
        super().__init__()
        if scale <= 0:
            raise ValueError(f"latent scale must be > 0, got {scale}")
        self.autoencoder = autoencoder.eval().requires_grad_(False)
        # diffusers' names for the same normalisation, so a saved vae/ config.json carries it
        # (a diffusers user would otherwise get the default 0.18215 and no shift).
        autoencoder.register_to_config(scaling_factor=float(scale), shift_factor=float(shift))
        self.scale = float(scale)
        self.shift = float(shift)
        self.sample_posterior = sample_posterior
        cfg = autoencoder.config
        self.downsample: int = 2 ** (len(cfg.block_out_channels) - 1)
        self.latent_channels: int = int(cfg.latent_channels)
        self.in_channels: int = int(cfg.in_channels)
        self.out_channels: int = int(cfg.out_channels)

    def train(self, mode: bool = True) -> VAEWrapper:
        """The autoencoder is frozen: it stays in eval mode whatever the parent does."""
        super().train(mode)
        self.autoencoder.eval()
        return self

    def encode(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """(B, 1, H, W) pixels in [-1, 1] -> (B, C, H/f, W/f) normalised latents."""
        if images.dim() != 4 or images.shape[1] not in (1, self.in_channels):
            raise ValueError(
                f"expected images (B, 1, H, W) or (B, {self.in_channels}, H, W), "
                f"got {tuple(images.shape)}"
            )
        h, w = images.shape[-2:]
        if h % self.downsample or w % self.downsample:
            raise ValueError(f"image size {h}x{w} is not divisible by the VAE's {self.downsample}")
        if images.shape[1] != self.in_channels:
            images = images.expand(-1, self.in_channels, -1, -1)  # gray -> RGB
        posterior = self.autoencoder.encode(images).latent_dist
        z = posterior.sample(generator) if self.sample_posterior else posterior.mode()
        return self.scale * (z - self.shift)

    def decode(self, latents: Tensor, rgb: bool = False) -> Tensor:
        """(B, C, h, w) normalised latents -> (B, 1, h*f, w*f) pixels, nominally in [-1, 1].

        The output is not clamped; an RGB decoder's channels are averaged to gray, or with
        ``rgb`` kept: (B, 3, h*f, w*f), as the release saves its generations.
        """
        if latents.dim() != 4 or latents.shape[1] != self.latent_channels:
            raise ValueError(
                f"expected latents (B, {self.latent_channels}, h, w), got {tuple(latents.shape)}"
            )
        z = latents / self.scale + self.shift
        pixels = self.autoencoder.decode(z).sample  # (B, out_channels, H, W)
        if rgb or pixels.shape[1] == 1:
            return pixels
        return pixels.mean(dim=1, keepdim=True)


def build_autoencoder(config: dict[str, Any]) -> AutoencoderKL:
    """A randomly initialised ``AutoencoderKL`` from its constructor arguments."""
    try:
        return AutoencoderKL(**config)
    except TypeError as err:  # an unknown key: name it
        raise ValueError(f"bad AutoencoderKL config {sorted(config)}: {err}") from err


def tiny_autoencoder_config(latent_channels: int = 4, downsample: int = 8) -> dict[str, Any]:
    """Constructor arguments of a small gray (1-channel) autoencoder for CPU runs.

    ``downsample`` must be a power of two; it sets the number of levels
    (``log2(downsample) + 1``), each one ResNet block, widths doubling from 8 to at most 64, and
    no attention in the middle block. Narrow full-resolution levels are what make it trainable
    in ~45 s on two CPU cores (measured: [32, 32, 64, 64] with mid attention is ~4x slower per
    step for +1 dB PSNR on SynthCXR at 64 px).
    """
    if downsample < 1 or downsample & (downsample - 1):
        raise ValueError(f"downsample must be a power of two >= 1, got {downsample}")
    levels = downsample.bit_length()  # log2(downsample) + 1
    widths = [min(8 * 2**i, 64) for i in range(levels)]
    return {
        "in_channels": 1,
        "out_channels": 1,
        "latent_channels": latent_channels,
        "block_out_channels": widths,
        "down_block_types": ["DownEncoderBlock2D"] * levels,
        "up_block_types": ["UpDecoderBlock2D"] * levels,
        "layers_per_block": 1,
        "norm_num_groups": 8,
        "mid_block_add_attention": False,
    }


def vae_loss(
    recon: Tensor, target: Tensor, posterior: Any, kl_weight: float, reconstruction: str = "l1"
) -> tuple[Tensor, dict[str, float]]:
    """Autoencoder training loss ``rec + kl_weight * KL`` for the tiny VAE.

    ``rec`` is the per-pixel mean L1 (or MSE); ``KL`` is ``KL(q(z|x) || N(0, I))`` summed over
    a sample's latent elements (diffusers' ``DiagonalGaussianDistribution.kl``) and averaged
    over the batch, so ``kl_weight`` is small (LDM uses 1e-6 with a summed reconstruction).

    Returns:
        (loss, {"rec": float, "kl": float, "loss": float})
    """
    if recon.shape != target.shape:
        raise ValueError(f"recon {tuple(recon.shape)} and target {tuple(target.shape)} differ")
    if reconstruction == "l1":
        rec = (recon - target).abs().mean()
    elif reconstruction == "mse":
        rec = F.mse_loss(recon, target)
    else:
        raise ValueError(f"reconstruction must be 'l1' or 'mse', got {reconstruction!r}")
    kl = posterior.kl().mean()
    loss = rec + kl_weight * kl
    return loss, {"rec": rec.item(), "kl": kl.item(), "loss": loss.item()}


def latent_stats(latents: Tensor) -> tuple[float, float]:
    """``(scale, shift) = (1 / std, mean)`` over every element of a latent cache (N, C, h, w).

    With these, ``scale * (z - shift)`` has zero mean and unit variance on the cache.
    """
    if latents.numel() < 2:
        raise ValueError("need at least two latent values to estimate their spread")
    z = latents.detach().double()
    mean, std = z.mean().item(), z.std().item()
    if not math.isfinite(std) or std == 0.0:
        raise ValueError(f"latents have no spread (std={std}); cannot normalise them")
    return 1.0 / std, mean


# ---------------------------------------------------------------------------------------------
# Latent-diffusion (CompVis LDM) autoencoder checkpoints -> diffusers AutoencoderKL.
# Key layout read from latent-diffusion's ldm/modules/diffusionmodules/model.py; diffusers'
# own converter (loaders/single_file_utils.py) skips attention inside down/up levels, which
# kl-f16 has (attn_resolutions: [16]), so the mapping is written here.
# ---------------------------------------------------------------------------------------------


def ldm_vae_config(ldm_config: dict[str, Any]) -> dict[str, Any]:
    """diffusers ``AutoencoderKL`` arguments for an LDM ``AutoencoderKL`` yaml (as a dict).

    Accepts the whole yaml (``model.params.ddconfig``) or just ``model.params``.
    """
    params = ldm_config.get("model", {}).get("params", ldm_config)
    if "ddconfig" not in params:
        raise ValueError("LDM config has no model.params.ddconfig")
    dd = params["ddconfig"]
    embed_dim = params.get("embed_dim", dd["z_channels"])
    if embed_dim != dd["z_channels"] or not dd.get("double_z", True):
        raise ValueError(
            f"unsupported LDM VAE: embed_dim={embed_dim}, z_channels={dd['z_channels']}, "
            f"double_z={dd.get('double_z')} (diffusers needs embed_dim == z_channels, double_z)"
        )
    levels = len(dd["ch_mult"])
    attn = set(dd.get("attn_resolutions", []))

    def kind(level: int, plain: str, with_attn: str) -> str:
        return with_attn if dd["resolution"] // 2**level in attn else plain

    return {
        "in_channels": dd["in_channels"],
        "out_channels": dd["out_ch"],
        "latent_channels": dd["z_channels"],
        "block_out_channels": [dd["ch"] * m for m in dd["ch_mult"]],
        "layers_per_block": dd["num_res_blocks"],
        "down_block_types": [
            kind(i, "DownEncoderBlock2D", "AttnDownEncoderBlock2D") for i in range(levels)
        ],
        # diffusers' up_blocks[j] is LDM's up[levels - 1 - j] (lowest resolution first)
        "up_block_types": [
            kind(levels - 1 - j, "UpDecoderBlock2D", "AttnUpDecoderBlock2D") for j in range(levels)
        ],
        "norm_num_groups": 32,
        "sample_size": dd["resolution"],
    }


_RESNET = {
    "norm1": "norm1",
    "conv1": "conv1",
    "norm2": "norm2",
    "conv2": "conv2",
    "nin_shortcut": "conv_shortcut",
}
_ATTN = {"norm": "group_norm", "q": "to_q", "k": "to_k", "v": "to_v", "proj_out": "to_out.0"}
_TOP = {"conv_in": "conv_in", "conv_out": "conv_out", "norm_out": "conv_norm_out"}
_LEVEL = re.compile(r"(encoder|decoder)\.(down|up)\.(\d+)\.(block|attn)\.(\d+)\.(\w+)\.(\w+)$")
_SAMPLER = re.compile(r"(encoder|decoder)\.(down|up)\.(\d+)\.(downsample|upsample)\.conv\.(\w+)$")
_MID = re.compile(r"(encoder|decoder)\.mid\.(block_1|block_2|attn_1)\.(\w+)\.(\w+)$")
_TOPLEVEL = re.compile(r"(encoder|decoder)\.(conv_in|conv_out|norm_out)\.(\w+)$")


def _ldm_key(key: str, levels: int) -> tuple[str, bool] | None:
    """LDM key -> (diffusers key, is an attention 1x1 conv to squeeze); None if unknown."""
    if key.startswith(("quant_conv.", "post_quant_conv.")):
        return key, False
    if m := _TOPLEVEL.match(key):
        return f"{m[1]}.{_TOP[m[2]]}.{m[3]}", False
    if m := _LEVEL.match(key):
        part, _, level, kind, j, layer, param = m.groups()
        table = _RESNET if kind == "block" else _ATTN
        if layer not in table:
            return None
        blocks = "down_blocks" if part == "encoder" else "up_blocks"
        idx = int(level) if part == "encoder" else levels - 1 - int(level)
        sub = "resnets" if kind == "block" else "attentions"
        return f"{part}.{blocks}.{idx}.{sub}.{j}.{table[layer]}.{param}", kind == "attn"
    if m := _SAMPLER.match(key):
        part, _, level, kind, param = m.groups()
        if part == "encoder":
            return f"encoder.down_blocks.{level}.downsamplers.0.conv.{param}", False
        return f"decoder.up_blocks.{levels - 1 - int(level)}.upsamplers.0.conv.{param}", False
    if m := _MID.match(key):
        part, block, layer, param = m.groups()
        if block == "attn_1":
            return (
                (f"{part}.mid_block.attentions.0.{_ATTN[layer]}.{param}", True)
                if layer in _ATTN
                else None
            )
        if layer not in _RESNET:
            return None
        return f"{part}.mid_block.resnets.{int(block[-1]) - 1}.{_RESNET[layer]}.{param}", False
    return None


def convert_ldm_vae_state_dict(
    state_dict: dict[str, Tensor], levels: int
) -> tuple[dict[str, Tensor], dict[str, str], list[str]]:
    """Rename an LDM autoencoder state dict to diffusers ``AutoencoderKL`` names.

    Args:
        state_dict: the checkpoint's ``state_dict`` (a ``first_stage_model.`` prefix, as in a
            full latent-diffusion checkpoint, is removed).
        levels: ``len(ddconfig.ch_mult)``, needed to reverse the decoder's level order.
    Returns:
        (converted, skipped {key: reason}, unrecognised keys). Attention q/k/v/proj 1x1
        convolutions (C, C, 1, 1) become linear weights (C, C).
    """
    converted: dict[str, Tensor] = {}
    skipped: dict[str, str] = {}
    unrecognised: list[str] = []
    for raw_key, value in state_dict.items():
        key = raw_key.removeprefix("first_stage_model.")
        if key.startswith("loss."):
            skipped[raw_key] = "LDM training loss (LPIPS / discriminator), not part of the VAE"
            continue
        mapped = _ldm_key(key, levels)
        if mapped is None:
            unrecognised.append(raw_key)
            continue
        new_key, squeeze = mapped
        if squeeze and value.dim() == 4:
            value = value[:, :, 0, 0]  # (C, C, 1, 1) conv -> (C, C) linear
        converted[new_key] = value
    return converted, skipped, unrecognised
