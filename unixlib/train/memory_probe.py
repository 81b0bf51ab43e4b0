"""Measure what autograd keeps for one training forward, to check ``memory.py``'s estimate.

``saved_activation_bytes`` runs one forward and backward of a model on a batch and sums the
bytes of every tensor autograd saves for backward (``torch.autograd.graph.saved_tensors_hooks``),
each storage once, leaving out the weights themselves and their autocast copies (tensors of a
parameter's shape): the *activations* term of :class:`~unixlib.train.memory.MemoryEstimate`.
It runs on the CPU in seconds for the ``tiny`` preset (``tests/test_memory_probe.py``); on a GPU
``python -m unixlib.bench --gpu`` compares ``torch.cuda.max_memory_allocated`` with the total.

Why saved tensors and not the allocator's peak: on the CPU there is no allocator statistic, and
the peak also holds transient buffers (the attention's workspace, the backward's gradients)
that the estimate covers with its fixed reserve, not per token. Not probed: activation
checkpointing (``torch.utils.checkpoint`` keeps each block's input outside these hooks).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from unixlib.train import precision
from unixlib.train.config import TrainConfig
from unixlib.train.setup import set_activation_checkpointing, set_trainable


def prepare_for_stage(model: nn.Module, cfg: TrainConfig) -> None:
    """Trainable groups, activation checkpointing and ``freeze_und`` as the loop sets them."""
    set_trainable(model, cfg.trainable)
    set_activation_checkpointing(model, cfg)
    model.language_model.freeze_und = not {"vision", "connector", "und"} & set(cfg.trainable)
    model.train()


def saved_activation_bytes(
    model: nn.Module, inputs: dict[str, Any], mixed_precision: str = "bf16"
) -> int:
    """Bytes autograd keeps from one forward of ``model(**inputs)`` until its backward.

    Args:
        model: a ``UniX`` prepared as for training (:func:`prepare_for_stage`).
        inputs: ``UniX.forward`` keyword arguments (batch, vit_pixels, latents, ...).
        mixed_precision: ``bf16`` (the estimate's assumption: bf16 activations) or ``no``.
    Returns:
        the sum over distinct storages of the saved tensors, weights excluded.
    """
    device = next(model.parameters()).device
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    weight_shapes = {tuple(p.shape) for p in model.parameters()}
    saved: dict[int, int] = {}

    def keep(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        ptr = storage.data_ptr()
        if ptr not in weights and tuple(t.shape) not in weight_shapes:
            saved[ptr] = max(saved.get(ptr, 0), storage.nbytes())
        return t

    hooks = torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t)
    with hooks, precision.autocast(mixed_precision, device):
        loss = model(**inputs)["loss"]
    loss.backward()
    model.zero_grad(set_to_none=True)
    return sum(saved.values())
