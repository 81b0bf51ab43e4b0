"""Distributed mode, detected from the environment ``torchrun`` sets (RANK, WORLD_SIZE, ...).

One process without those variables is plain single-device training; with them we join a
process group: gloo on CPU, NCCL on GPU. Nothing else in the loop branches on the backend, and
only :func:`parallelize` and :func:`gradient_sync` on DDP versus FSDP (``TrainConfig.parallel``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.fsdp import FSDPModule
from torch.nn.parallel import DistributedDataParallel

from unixlib.model.unix import UniX
from unixlib.train import fsdp
from unixlib.train.config import TrainConfig
from unixlib.train.setup import ddp_needs_unused_parameters


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_from_env(device: torch.device) -> DistInfo:
    """Join the process group when launched by torchrun; no-op for a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    info = DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        torch.cuda.set_device(device)  # NCCL and FSDP's device mesh use the current device
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, rank=info.rank, world_size=world)
    return info


def parallelize(
    model: UniX,
    mode: str,
    info: DistInfo,
    device: torch.device,
    cfg: TrainConfig | None = None,
    bf16: bool = False,
) -> nn.Module:
    """The module to run forward and backward on: ``model`` itself for one process; DDP around
    it (``mode`` ddp); or, for fsdp, ``model`` sharded in place (fsdp.py; ``bf16``: gathered
    weights and gradient reduction in bf16). Parameters that train must be set before, and the
    optimizer built after (FSDP replaces the parameters). DDP looks for unused parameters only
    when the stage ``cfg`` can leave some without a gradient (``setup.ddp_needs_unused_parameters``;
    always without a ``cfg``)."""
    if not info.enabled:
        return model
    if mode == "fsdp":
        return fsdp.shard_model(model, device, bf16=bf16)
    device_ids = [device.index] if device.type == "cuda" else None
    unused = cfg is None or ddp_needs_unused_parameters(cfg, model.config.mot)
    return DistributedDataParallel(model, device_ids=device_ids, find_unused_parameters=unused)


@contextlib.contextmanager
def gradient_sync(wrapped: nn.Module, sync: bool) -> Iterator[None]:
    """A backward inside reduces gradients across ranks only when ``sync`` (the last
    micro-batch of a step; the others accumulate locally)."""
    if isinstance(wrapped, FSDPModule):
        wrapped.set_requires_gradient_sync(sync)
    if isinstance(wrapped, DistributedDataParallel) and not sync:
        with wrapped.no_sync():
            yield
    else:
        yield


def all_reduce_sum(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum over ranks (identity for one process)."""
    if info.enabled:
        value = value.clone()
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value


def all_reduce_max(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Maximum over ranks (identity for one process)."""
    if info.enabled:
        value = value.clone()
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return value


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
