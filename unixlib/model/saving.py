"""Saving and loading a UniX model: ``config.json`` + ``model.safetensors``.

The format every stage's ``final/`` folder and every later notebook uses. Foreign checkpoints
(Janus-Pro, the official release) are imported by :mod:`unixlib.model.weights` instead.
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load_file, save_file

from unixlib.model.config import UniXConfig
from unixlib.model.unix import UniX

MODEL_FILE, CONFIG_FILE = "model.safetensors", "config.json"


def save_pretrained(model: UniX, out_dir: Path) -> Path:
    """``config.json`` + ``model.safetensors`` (all weights, the VAE included)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    model.config.to_json_file(str(out_dir / CONFIG_FILE))
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(out_dir / MODEL_FILE))
    return out_dir


def from_pretrained(path: Path, **overrides) -> UniX:
    """Load what :func:`save_pretrained` wrote; ``overrides`` change config fields first (e.g.
    ``image_size_gen=512, max_latent_size=32`` for stage 3 — the position table is recomputed,
    not stored, so it extends without new weights)."""
    path = Path(path)
    for f in (CONFIG_FILE, MODEL_FILE):
        if not (path / f).is_file():
            raise FileNotFoundError(f"{path / f} is missing (not a saved UniX model)")
    saved = json.loads((path / CONFIG_FILE).read_text())
    values = {**saved, **overrides}
    config = UniXConfig(
        **{k: v for k, v in values.items() if k not in ("model_type", "transformers_version")}
    )
    model = UniX(config)
    missing, unexpected = model.load_state_dict(load_file(str(path / MODEL_FILE)), strict=False)
    # Two ablations change the module set on purpose (notebook 06): mot=False drops the
    # generation weight set (a stage-1 MoT model is exactly a shared model whose gen copies
    # were never used), gen_conditioning="final_states" adds cond_proj (identity at start).
    dropped = saved.get("mot", True) and not config.mot
    added = saved.get("gen_conditioning", "attention") != config.gen_conditioning
    missing = [k for k in missing if not (added and k.startswith("cond_proj."))]
    unexpected = [k for k in unexpected if not (dropped and _is_gen_weight(k))]
    if missing or unexpected:
        raise KeyError(f"{path / MODEL_FILE} does not match the model: missing {missing[:5]}"
                       f"{'...' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}"
                       f"{'...' if len(unexpected) > 5 else ''}")  # fmt: skip
    return model


def _is_gen_weight(key: str) -> bool:
    return key.startswith("language_model.norm_gen.") or (
        key.startswith("language_model.layers.") and ".gen." in key
    )
