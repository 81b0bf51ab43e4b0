"""A self-contained model directory, in the Hugging Face layout.

What :func:`save_pretrained` writes (every stage's ``final/`` folder is one)::

    config.json                      UniXConfig (vocabulary, special ids, sizes, VAE geometry)
    model.safetensors                every weight but the VAE's, or, above ``max_shard_size``,
    model-00001-of-0000N.safetensors   shards plus ``model.safetensors.index.json``
    model.safetensors.index.json       ({"metadata": {"total_size"}, "weight_map": {key: file}})
    vae/config.json                  the diffusers AutoencoderKL, with ``scaling_factor`` and
    vae/diffusion_pytorch_model.safetensors   ``shift_factor`` set to the model's latent norm
    tokenizer.json, special_tokens.json   the report tokenizer (when given)
    README.md                        the model card (when given, see card.py)

A diffusers user gets the right latents from ``vae/`` alone:
``(vae.encode(x).latent_dist.mode() - shift_factor) * scaling_factor`` is what the model sees.
:func:`load_pretrained` (``UniX.from_pretrained``) builds the model on the meta device and assigns the stored tensors
(no random initialisation, no second copy). Directories of earlier versions (one
``model.safetensors`` holding the VAE too, no ``vae/``) still load.

Foreign checkpoints (Janus-Pro, the official release) are imported by
:mod:`unixlib.model.weights` instead.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch
from safetensors.torch import load_file, save_file

from unixlib.model.config import UniXConfig
from unixlib.model.flow import sincos_2d_table

if TYPE_CHECKING:
    from unixlib.model.unix import UniX

MODEL_FILE, CONFIG_FILE = "model.safetensors", "config.json"
INDEX_FILE = "model.safetensors.index.json"
VAE_DIR, VAE_WEIGHTS = "vae", "diffusion_pytorch_model.safetensors"
VAE_PREFIX = "vae.autoencoder."
CARD_FILE = "README.md"
DEFAULT_MAX_SHARD_SIZE = "5GB"  # transformers' default
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB)?\s*$", re.IGNORECASE)
_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}


class SavesItself(Protocol):
    """A tokenizer that writes its files into a directory (``ReportTokenizer``)."""

    def save(self, out_dir: Path) -> None: ...


def parse_size(size: int | str) -> int:
    """Bytes of ``5GB``, ``200MB``, ``1000`` (decimal units, as transformers)."""
    if isinstance(size, int):
        return size
    m = _SIZE.match(size)
    if not m:
        raise ValueError(f"size {size!r}: expected bytes or a number with B/KB/MB/GB/TB")
    return int(float(m[1]) * _UNITS[(m[2] or "B").upper()])


def _shards(state: dict[str, torch.Tensor], limit: int) -> list[dict[str, torch.Tensor]]:
    """Split in key order into shards of at most ``limit`` bytes (a larger tensor alone)."""
    shards: list[dict[str, torch.Tensor]] = [{}]
    used = 0
    for key, tensor in state.items():
        size = tensor.numel() * tensor.element_size()
        if shards[-1] and used + size > limit:
            shards.append({})
            used = 0
        shards[-1][key] = tensor
        used += size
    return shards


def save_weights(
    state: dict[str, torch.Tensor], out_dir: Path, max_shard_size: int | str
) -> list[Path]:
    """``model.safetensors``, or shards + ``model.safetensors.index.json`` above the limit."""
    for stale in [*out_dir.glob("model-*-of-*.safetensors"), out_dir / INDEX_FILE]:
        stale.unlink(missing_ok=True)  # an earlier save with another sharding
    shards = _shards(state, parse_size(max_shard_size))
    if len(shards) == 1:
        save_file(shards[0], str(out_dir / MODEL_FILE), metadata={"format": "pt"})
        return [out_dir / MODEL_FILE]
    (out_dir / MODEL_FILE).unlink(missing_ok=True)
    names = [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
    weight_map = {}
    for name, shard in zip(names, shards, strict=True):
        save_file(shard, str(out_dir / name), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(shard, name))
    total = sum(t.numel() * t.element_size() for t in state.values())
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (out_dir / INDEX_FILE).write_text(json.dumps(index, indent=2) + "\n")
    return [out_dir / n for n in names]


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    """Every tensor of ``model.safetensors`` or of the shards its index names (CPU)."""
    if (path / MODEL_FILE).is_file():
        return load_file(str(path / MODEL_FILE))
    if not (path / INDEX_FILE).is_file():
        raise FileNotFoundError(
            f"{path / MODEL_FILE} is missing (not a saved UniX model: no {MODEL_FILE} and no "
            f"{INDEX_FILE})"
        )
    weight_map: dict[str, str] = json.loads((path / INDEX_FILE).read_text())["weight_map"]
    state: dict[str, torch.Tensor] = {}
    for name in sorted(set(weight_map.values())):
        if not (path / name).is_file():
            raise FileNotFoundError(f"{path / name} is missing (named by {INDEX_FILE})")
        state.update(load_file(str(path / name)))
    if set(state) != set(weight_map):
        raise ValueError(f"{path}: the shards hold other tensors than {INDEX_FILE} lists")
    return state


def save_vae(model: UniX, out_dir: Path) -> Path:
    """``vae/``: the autoencoder as a diffusers directory whose config carries the latent norm."""
    autoencoder = model.vae.autoencoder
    autoencoder.register_to_config(
        scaling_factor=float(model.config.vae_scale), shift_factor=float(model.config.vae_shift)
    )
    autoencoder.save_pretrained(str(out_dir / VAE_DIR), safe_serialization=True)
    return out_dir / VAE_DIR


def save_pretrained(
    model: UniX,
    out_dir: Path,
    tokenizer: SavesItself | None = None,
    card: str | None = None,
    max_shard_size: int | str = DEFAULT_MAX_SHARD_SIZE,
) -> Path:
    """Write the model directory described in the module docstring; returns ``out_dir``.

    Args:
        model: a UniX (unsharded; gather an FSDP model first).
        tokenizer: saved beside the weights, so the directory is usable on its own.
        card: the model card's Markdown (``card.model_card``).
        max_shard_size: bytes or ``"5GB"``-style; larger weights are split into shards.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.config.to_json_file(str(out_dir / CONFIG_FILE))
    state = {
        k: v.detach().contiguous().cpu()
        for k, v in model.state_dict().items()
        if not k.startswith(VAE_PREFIX)
    }
    save_weights(state, out_dir, max_shard_size)
    save_vae(model, out_dir)
    if tokenizer is not None:
        tokenizer.save(out_dir)
    if card is not None:
        (out_dir / CARD_FILE).write_text(card)
    return out_dir


def read_config(path: Path, **overrides: Any) -> UniXConfig:
    """The directory's ``config.json`` as a UniXConfig, with ``overrides`` applied."""
    if not (path / CONFIG_FILE).is_file():
        raise FileNotFoundError(f"{path / CONFIG_FILE} is missing (not a saved UniX model)")
    values = json.loads((path / CONFIG_FILE).read_text())
    values.update(overrides)
    return UniXConfig(
        **{k: v for k, v in values.items() if k not in ("model_type", "transformers_version")}
    )


def _vae_state(path: Path, config: UniXConfig) -> dict[str, torch.Tensor]:
    """The ``vae/`` weights under the model's key prefix; checks its norm against the config."""
    vae_dir = path / VAE_DIR
    if not (vae_dir / VAE_WEIGHTS).is_file():
        raise FileNotFoundError(f"{vae_dir / VAE_WEIGHTS} is missing")
    vae_config = json.loads((vae_dir / CONFIG_FILE).read_text())
    stored = (vae_config.get("scaling_factor"), vae_config.get("shift_factor"))
    if stored != (config.vae_scale, config.vae_shift):
        raise ValueError(
            f"{vae_dir / CONFIG_FILE}: scaling_factor/shift_factor {stored} differ from the "
            f"model's vae_scale/vae_shift {(config.vae_scale, config.vae_shift)}"
        )
    return {VAE_PREFIX + k: v for k, v in load_file(str(vae_dir / VAE_WEIGHTS)).items()}


def _fill_nonpersistent_buffers(model: UniX) -> None:
    """Compute the buffers that are not saved (still on the meta device after loading)."""
    model.latent_pos_embed = sincos_2d_table(model.config.hidden_size, model.config.max_latent_size)
    for name, buf in model.named_buffers():
        if not buf.is_meta:
            continue
        owner, _, leaf = name.rpartition(".")
        if leaf != "position_ids":  # SigLIP's arange; anything else would be a new buffer
            raise ValueError(f"buffer {name} is neither saved nor known to from_pretrained")
        values = torch.arange(buf.shape[-1], dtype=buf.dtype).expand(buf.shape).contiguous()
        model.get_submodule(owner).register_buffer(leaf, values, persistent=False)


def _ablation_weights(
    state: dict[str, torch.Tensor], saved: UniXConfig, config: UniXConfig
) -> dict[str, torch.Tensor]:
    """The two ablations of notebook 06 that change the module set on purpose, loading a MoT
    checkpoint: ``mot=False`` drops the generation weight set (a stage-1 MoT model is exactly a
    shared-weight model whose generation copies were never used); ``gen_conditioning=
    "final_states"`` adds ``cond_proj``, starting as the identity. Nothing else may differ."""
    if saved.mot and not config.mot:
        state = {k: v for k, v in state.items() if not _is_gen_weight(k)}
    if saved.gen_conditioning != "final_states" == config.gen_conditioning:
        d = config.hidden_size
        state = {**state, "cond_proj.weight": torch.eye(d), "cond_proj.bias": torch.zeros(d)}
    return state


def _is_gen_weight(key: str) -> bool:
    return key.startswith("language_model.norm_gen.") or (
        key.startswith("language_model.layers.") and ".gen." in key
    )


def load_pretrained(
    model_class: type[UniX], path: Path, device: str | torch.device = "cpu", **overrides: Any
) -> UniX:
    """Load what :func:`save_pretrained` wrote, onto ``device``.

    ``overrides`` change config fields first (e.g. ``image_size_gen=512, max_latent_size=32``
    for stage 3 - the position table is recomputed, not stored, so it extends without new
    weights). The model is built on the meta device and the stored tensors are assigned to it
    (``load_state_dict(assign=True)``, strict): no random initialisation is run.
    Raises FileNotFoundError naming what is missing, ValueError for mismatched files.
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"model directory {path} does not exist")
    config = read_config(path, **overrides)
    state = load_weights(path)
    if (path / VAE_DIR).is_dir():
        state.update(_vae_state(path, config))
    state = _ablation_weights(state, read_config(path), config)
    with torch.device("meta"):
        model = model_class(config)
    missing = sorted(set(model.state_dict()) - set(state))
    unexpected = sorted(set(state) - set(model.state_dict()))
    if missing or unexpected:
        raise ValueError(
            f"{path}: the weights do not match config.json (missing {missing[:5]}, "
            f"unexpected {unexpected[:5]})"
        )
    model.load_state_dict(state, strict=True, assign=True)
    _fill_nonpersistent_buffers(model)
    return model.to(device)


class ModelDirectory:
    """``UniX.from_pretrained`` / ``UniX.save_pretrained``: the model directory of this module
    as methods, in the Hugging Face style (a mixin of :class:`~unixlib.model.unix.UniX`)."""

    @classmethod
    def from_pretrained(cls, path, device="cpu", **overrides):
        """Load a model directory; see :func:`load_pretrained`."""
        return load_pretrained(cls, path, device, **overrides)

    def save_pretrained(self, path, **kwargs):
        """Write a model directory; see :func:`save_pretrained`."""
        return save_pretrained(self, path, **kwargs)
