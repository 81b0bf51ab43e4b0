"""Fully sharded data parallelism for UniX (FSDP2: ``torch.distributed.fsdp.fully_shard``).

``TrainConfig.parallel`` selects it over DDP when several processes train (the default for the
``paper`` preset, whose weights, gradients and AdamW state do not fit replicated on every GPU).

What is sharded: each unit below is all-gathered for its forward and backward and freed after.

* every MoT block ``language_model.layers[i]``, both branches as one unit although a stage trains
  only one of them: FSDP2 shards each parameter on its own (one DTensor per parameter), so the
  frozen branch is gathered for the forward but gets no gradient and no optimizer state and stays
  bit-identical;
* every SigLIP encoder layer, when the stage trains the tower;
* the root (``UniX``): embeddings, lm_head, connector, generation I/O, REPA projector, norms.

Kept whole on every rank: the VAE, and the SigLIP tower when it is frozen. Both are frozen and the
loop also calls them outside ``UniX.forward`` (latents; the REPA target), where the weights of a
sharded module would not be gathered.

Gradients: the reduce-scatter averages over ranks as DDP's all-reduce does, so the loop's
``loss x world`` scaling is the same; accumulating micro-batches skip it
(``set_requires_gradient_sync``); ``clip_grad_norm_`` over the DTensor gradients is the global
norm. FSDP2 reduces the gradients a rank has, so all ranks must use the same parameters: they
do, since every rank's micro-batch holds the same number of und and gen examples
(``batches.task_counts``).

Checkpoints of the paper preset (``TrainConfig.checkpoint_format`` auto) are written sharded:
every rank saves its own shards of the weights, the AdamW state and the EMA with
``torch.distributed.checkpoint`` (:func:`save_sharded`), so no rank ever holds the whole
optimizer; :func:`load_sharded` reads them back into any layout (another world size, or one
plain process for evaluation: DCP reshards from its metadata). Otherwise checkpoints keep the
one-process format of checkpoint.py: full state dicts, gathered with
``torch.distributed.checkpoint.state_dict`` on every rank (a collective) into rank 0's CPU memory
and written by rank 0; on load rank 0 reads them and sends every rank its shards. A run saved under
FSDP thus resumes under DDP or in one process and vice versa, and ``final/`` is a normal
``save_pretrained`` folder. The EMA is kept over the local shards (its buffers are DTensors like
the parameters) and gathered the same way.
"""

from __future__ import annotations

from itertools import chain
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
from torch.distributed.tensor import DTensor

from unixlib.model.unix import UniX

_GATHER = StateDictOptions(full_state_dict=True, cpu_offload=True)  # full tensors on rank 0's CPU
_FROM_RANK0 = StateDictOptions(full_state_dict=True, broadcast_from_rank0=True)


def mixed_precision_policy(bf16: bool) -> MixedPrecisionPolicy:
    """bf16: weights are all-gathered and gradients reduce-scattered in bf16 (half the traffic
    and the gathered memory), while the shards, the optimizer and its update stay fp32. Inputs
    are not cast (``cast_forward_inputs=False``): autocast picks the compute dtype, and flow
    times and latents keep fp32 into the embedders. fp32 (the CPU tests) keeps all in fp32."""
    if not bf16:
        return MixedPrecisionPolicy()
    return MixedPrecisionPolicy(
        param_dtype=torch.bfloat16, reduce_dtype=torch.bfloat16, cast_forward_inputs=False
    )


def shard_model(model: UniX, device: torch.device, bf16: bool = False) -> UniX:
    """Shard ``model`` in place over all ranks (see the module docstring); returns it.

    Call after ``set_trainable`` and before building the optimizer: sharding replaces every
    parameter (except the ones kept whole) by a DTensor holding this rank's shard. ``bf16``:
    the mixed-precision policy of :func:`mixed_precision_policy` (the loop sets it on GPUs)."""
    mesh = init_device_mesh(device.type, (dist.get_world_size(),))
    mp = mixed_precision_policy(bf16)
    for layer in model.language_model.layers:
        fully_shard(layer, mesh=mesh, mp_policy=mp)
    tower = model.vision_tower
    whole = set(model.vae.parameters())
    if any(p.requires_grad for p in tower.parameters()):
        for layer in getattr(tower, "vision_model", tower).encoder.layers:
            fully_shard(layer, mesh=mesh, mp_policy=mp)
    else:
        whole |= set(tower.parameters())
    fully_shard(model, mesh=mesh, ignored_params=whole, mp_policy=mp)
    return model


def is_sharded(module: nn.Module) -> bool:
    """True when ``module`` holds DTensor shards (a model after :func:`shard_model`, its EMA)."""
    return any(isinstance(t, DTensor) for t in chain(module.parameters(), module.buffers()))


def reads_full_state(module: nn.Module) -> bool:
    """Whether this rank reads a checkpoint's full state for ``module`` (all ranks of a plain
    or DDP module; only rank 0 of a sharded one, which then sends the others their shards)."""
    return not is_sharded(module) or dist.get_rank() == 0


def full_state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    """The full (unsharded) state dict of ``module``: its own for a plain module; for a sharded
    one, gathered into rank 0's CPU memory and empty on the other ranks (all ranks must call)."""
    if not is_sharded(module):
        return module.state_dict()
    return get_model_state_dict(module, options=_GATHER)


def load_full_state_dict(module: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load a full state dict, strictly: into a plain module as it is; into a sharded one from
    rank 0's ``state`` (the other ranks pass ``{}``; all ranks must call)."""
    if not is_sharded(module):
        module.load_state_dict(state, strict=True)
    else:
        set_model_state_dict(module, state, options=_FROM_RANK0)


SHARDED_DIR = "sharded"  # the DCP folder inside a checkpoint directory


def _sharded_state(
    model: nn.Module, optimizer: torch.optim.Optimizer | None, ema: nn.Module | None
) -> dict[str, Any]:
    """The state DCP saves or loads in place: this rank's model (DTensor shards under FSDP,
    full tensors otherwise), the optimizer keyed by parameter name, the EMA buffers."""
    state: dict[str, Any] = {"model": get_model_state_dict(model)}
    if optimizer is not None:
        state["optim"] = get_optimizer_state_dict(model, optimizer)
    if ema is not None:
        state["ema"] = ema.state_dict()
    return state


def save_sharded(
    path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, ema: nn.Module | None
) -> None:
    """Every rank writes its shards to ``path`` (a DCP folder); all ranks must call."""
    state = _sharded_state(model, optimizer, ema)
    dcp.save(state, checkpoint_id=str(path), no_dist=not dist.is_initialized())


def load_sharded(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    ema: nn.Module | None = None,
) -> None:
    """Load a DCP folder written by :func:`save_sharded` into ``model`` (sharded over any
    number of ranks, or a plain model in one process), and the optimizer and EMA if given."""
    state = _sharded_state(model, optimizer, ema)
    dcp.load(state, checkpoint_id=str(path), no_dist=not dist.is_initialized())
    set_model_state_dict(model, state["model"])
    if optimizer is not None:
        set_optimizer_state_dict(model, optimizer, state["optim"])
    if ema is not None:
        ema.load_state_dict(state["ema"])


def _param_names(model: nn.Module, optimizer: torch.optim.Optimizer) -> list[str]:
    """Names of the optimizer's parameters in the index order of ``Optimizer.state_dict()``."""
    names = {id(p): n for n, p in model.named_parameters()}
    return [names[id(p)] for group in optimizer.param_groups for p in group["params"]]


def _rekey(state: dict[str, Any], key: dict) -> dict[str, Any]:
    """An optimizer state dict with its parameter keys mapped through ``key``."""
    return {
        "state": {key[k]: v for k, v in state["state"].items()},
        "param_groups": [
            {**group, "params": [key[k] for k in group["params"]]}
            for group in state["param_groups"]
        ],
    }


def full_optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """``optimizer.state_dict()`` with full tensors (keyed by parameter index as usual); for a
    sharded model gathered on rank 0 and empty on the other ranks (all ranks must call)."""
    if not is_sharded(model):
        return optimizer.state_dict()
    state = get_optimizer_state_dict(model, optimizer, options=_GATHER)  # keyed by name
    if dist.get_rank() != 0:
        return {}
    names = _param_names(model, optimizer)
    return _rekey(state, {n: i for i, n in enumerate(names)})


def load_full_optimizer_state(
    model: nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]
) -> None:
    """Load what :func:`full_optimizer_state` returns (rank 0's ``state`` for a sharded model,
    ``{}`` on the other ranks; all ranks must call)."""
    if not is_sharded(model):
        optimizer.load_state_dict(state)
        return
    if state:
        state = _rekey(state, dict(enumerate(_param_names(model, optimizer))))
    set_optimizer_state_dict(model, optimizer, state, options=_FROM_RANK0)


def gather_model(model: UniX) -> UniX | None:
    """A plain UniX (CPU) with the full weights of sharded ``model`` on rank 0, for
    ``save_pretrained``; None on the other ranks (all ranks must call)."""
    state = get_model_state_dict(model, options=_GATHER)
    if dist.get_rank() != 0:
        return None
    with torch.device("meta"):  # no second allocation: the gathered tensors are assigned
        plain = UniX(model.config)
    plain.load_state_dict(state, strict=True, assign=True)
    return plain
