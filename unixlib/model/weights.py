"""Importers of foreign checkpoints into UniX's state-dict naming (model_contract.md).

- :func:`import_janus_pro`: the understanding initialisation from a local Janus-Pro-1B
  directory (DeepSeek ``MultiModalityCausalLM``): its Llama LLM -> the ``und`` branch,
  embeddings and ``lm_head``; its timm SigLIP-L/16 -> ``vision_tower`` (transformers naming,
  fused ``qkv`` split); its ``aligner`` -> ``connector``. Generation weights start as copies of
  the understanding weights (MoT init, as the release's ``init_moe``).
- the official UniX release's importer is in :mod:`unixlib.model.weights_release`, over the
  helpers here.

Each returns an :class:`ImportReport`. Foreign key names were read from deepseek-ai/Janus
(``janus/models/modeling_vlm.py``, ``siglip_vit.py``, ``projector.py``) and ZrH42/UniX
(``modeling/unix/unix.py``, ``qwen2_navit.py``, ``modeling_utils.py``, ``inference/pipeline.py``,
``modeling/autoencoder.py``). Foreign files load with ``torch.load(weights_only=True)`` or
safetensors, never by unpickling arbitrary objects.
"""

from __future__ import annotations

import json
import os
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import Tensor, nn

from unixlib.model.key_maps import Mapped, janus_to_unix

__all__ = [
    "ImportReport",
    "WeightImportError",
    "embedding_rows",
    "import_janus_pro",
    "load_foreign_state_dict",
    "safetensors_header",
]


class WeightImportError(RuntimeError):
    """A strict import found missing, unexpected or shape-mismatched keys (listed)."""


@dataclass
class ImportReport:
    """What an import did, key by key (our names unless said otherwise).

    loaded: copied from the checkpoint. initialised: set by rule (how, e.g. "copied from und").
    missing: in the import's scope but absent from the checkpoint (left at their init).
    unexpected: checkpoint keys with no place in the model. mismatched: (key, ckpt, model)
    shapes. skipped: checkpoint keys deliberately not loaded, with the reason.
    """

    source: str
    loaded: list[str] = field(default_factory=list)
    initialised: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No missing, unexpected or shape-mismatched keys."""
        return not (self.missing or self.unexpected or self.mismatched)

    def __str__(self) -> str:
        lines = [
            f"import from {self.source}: {len(self.loaded)} loaded, "
            f"{len(self.initialised)} initialised by rule, {len(self.skipped)} skipped"
        ]
        reasons: dict[str, int] = {}
        for reason in self.skipped.values():
            reasons[reason] = reasons.get(reason, 0) + 1
        lines += [f"  skipped {n}: {reason}" for reason, n in sorted(reasons.items())]
        for title, keys in (("MISSING", self.missing), ("UNEXPECTED", self.unexpected)):
            lines += [f"  {title} ({len(keys)}):"] + [f"    {k}" for k in keys] if keys else []
        if self.mismatched:
            lines.append(f"  SHAPE MISMATCH ({len(self.mismatched)}):")
            lines += [f"    {k}: checkpoint {a} vs model {b}" for k, a, b in self.mismatched]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def raise_if_incomplete(self) -> None:
        """Raise :class:`WeightImportError` (with the full report) unless :attr:`ok`."""
        if not self.ok:
            raise WeightImportError(str(self))


# ------------------------------------------------------------------------------- file loading


_ST_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


def safetensors_header(path: str | os.PathLike) -> dict[str, tuple[torch.dtype, tuple[int, ...]]]:
    """``{name: (dtype, shape)}`` from a safetensors file's header; no tensor data is read."""
    with open(path, "rb") as f:
        size = int.from_bytes(f.read(8), "little")
        if not 0 < size < 100_000_000:
            raise ValueError(f"{path}: not a safetensors file (header length {size})")
        header = json.loads(f.read(size))
    header.pop("__metadata__", None)
    return {k: (_ST_DTYPES[v["dtype"]], tuple(v["shape"])) for k, v in header.items()}


def load_foreign_state_dict(path: str | os.PathLike, meta: bool = False) -> dict[str, Tensor]:
    """Tensors of a checkpoint file or HF-style directory (safetensors / torch, sharded or not).

    ``.ckpt``/``.pt``/``.bin`` files load with ``weights_only=True``; a Lightning checkpoint's
    ``state_dict`` entry is unwrapped. ``meta=True`` returns meta tensors of the stored
    shapes and dtypes without reading the data (safetensors headers; torch files memory-mapped
    onto the meta device): the dry run's key and shape check of a 1B checkpoint.
    """
    path = Path(path)
    if path.is_dir():
        for name in ("model.safetensors", "pytorch_model.bin"):
            if (path / name).is_file():
                return load_foreign_state_dict(path / name, meta)
        for index in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
            if (path / index).is_file():
                shards = sorted(set(json.loads((path / index).read_text())["weight_map"].values()))
                merged: dict[str, Tensor] = {}
                for shard in shards:
                    merged.update(load_foreign_state_dict(path / shard, meta))
                return merged
        raise FileNotFoundError(f"{path}: no model.safetensors / pytorch_model.bin (or index)")
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        if meta:
            return {
                k: torch.empty(shape, dtype=dtype, device="meta")
                for k, (dtype, shape) in safetensors_header(path).items()
            }
        return load_file(path)
    try:
        kwargs = {"map_location": "meta", "mmap": True} if meta else {"map_location": "cpu"}
        obj = torch.load(path, weights_only=True, **kwargs)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as err:  # refused or unreadable
        raise ValueError(
            f"{path}: cannot be read with torch.load(weights_only=True) ({err}); convert it "
            "to safetensors in a trusted environment first"
        ) from err
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a dict of tensors, got {type(obj).__name__}")
    return {k: v for k, v in obj.items() if isinstance(v, Tensor)}


JANUS_EMBEDDING_KEY = "language_model.model.embed_tokens.weight"


def embedding_rows(janus_dir: str | os.PathLike) -> int:
    """Rows of a Janus-Pro checkpoint's token embedding (102,400 for Janus-Pro-1B), read from
    the stored shape (no data): the ``vocab_size`` a model initialised from it must have."""
    state = load_foreign_state_dict(janus_dir, meta=True)
    if JANUS_EMBEDDING_KEY not in state:
        raise WeightImportError(
            f"{janus_dir}: no {JANUS_EMBEDDING_KEY} (not a Janus-Pro checkpoint?)"
        )
    return int(state[JANUS_EMBEDDING_KEY].shape[0])


# ------------------------------------------------------------------------------- applying


def _apply(
    model: nn.Module, mapped: Mapped, report: ImportReport, scope: tuple[str, ...]
) -> dict[str, Tensor]:
    """Copy mapped tensors into ``model``; fill ``report``; return the model's state dict."""
    ours, skipped, unknown = mapped
    target = model.state_dict()
    report.skipped.update(skipped)
    report.unexpected += unknown
    with torch.no_grad():
        for key, value in ours.items():
            if key not in target:
                report.unexpected.append(key)
            elif tuple(value.shape) != tuple(target[key].shape):
                report.mismatched.append((key, tuple(value.shape), tuple(target[key].shape)))
            else:
                if not (target[key].is_meta or value.is_meta):  # meta: a shape check only
                    target[key].copy_(value)
                report.loaded.append(key)
    done = set(report.loaded) | {k for k, _, _ in report.mismatched}  # listed once, there
    report.missing += [k for k in target if k.startswith(scope) and k not in done]
    return target


def _on_meta(model: nn.Module) -> bool:
    """True when the model's weights are on the meta device (a dry-run check)."""
    return any(p.is_meta for p in model.parameters())


def _copy_und_to_gen(target: dict[str, Tensor], report: ImportReport) -> None:
    """MoT init: every ``.gen.`` weight (and ``norm_gen``) from its understanding twin."""
    filled = set(report.loaded) | set(report.initialised)
    for key in list(report.missing):
        twin = key.replace(".gen.", ".und.").replace("norm_gen", "norm_und")
        if twin != key and twin in filled:
            target[key].copy_(target[twin])
            report.initialised[key] = f"copied from {twin}"
            report.missing.remove(key)


def _note_vit_activation(model: nn.Module, report: ImportReport) -> None:
    """Janus' timm SigLIP (also the release's) uses exact GELU; say so if ours differs."""
    act = getattr(getattr(getattr(model, "vision_tower", None), "config", None), "hidden_act", None)
    if act is not None and act != "gelu":
        report.notes.append(
            f"vision tower uses hidden_act={act!r}; the source ViT used exact GELU ('gelu'), "
            "so its features will differ slightly"
        )


def import_janus_pro(
    model: nn.Module, janus_dir: str | os.PathLike, strict: bool = True
) -> ImportReport:
    """Initialise understanding (and, by copy, generation) weights from Janus-Pro.

    Strict by default: a missing, unexpected or shape-mismatched key raises
    :class:`WeightImportError` naming it (``strict=False`` only reports). A model on the meta
    device is checked without reading any tensor data (keys and shapes only).

    Llama has no q/k/v biases and no q/k norms: those start as zeros / ones (recorded in
    ``initialised``). Keys outside ``language_model.``, ``lm_head.``, ``vision_tower.``,
    ``connector.`` are untouched. Note that Janus' SigLIP uses exact GELU: build the tower
    with ``hidden_act="gelu"`` to reproduce its features.
    """
    report = ImportReport(source=str(janus_dir))
    mapped = janus_to_unix(load_foreign_state_dict(janus_dir, meta=_on_meta(model)))
    scope = ("language_model.", "lm_head.", "vision_tower.", "connector.")
    target = _apply(model, mapped, report, scope)
    with torch.no_grad():
        for key in list(report.missing):
            if re.search(r"\.und\.[qkv]_proj\.bias$", key):
                target[key].zero_()
                report.initialised[key] = "zeros (Llama has no q/k/v bias)"
            elif re.search(r"\.und\.[qk]_norm\.weight$", key):
                target[key].fill_(1.0)
                report.initialised[key] = "ones (Llama has no q/k norm)"
            else:
                continue
            report.missing.remove(key)
        _copy_und_to_gen(target, report)
    _note_vit_activation(model, report)
    if strict:
        report.raise_if_incomplete()
    return report
