"""Learning-rate schedules, built from ``transformers``' schedule functions.

- :func:`constant_with_warmup` (stages 1-3, the paper's constant LR after a linear warm-up):
  ``transformers.get_constant_schedule_with_warmup`` counted from 1, so that the first update
  trains at ``lr / warmup_steps`` rather than at 0 (factor ``min(1, (step + 1) / warmup)`` at
  optimiser step ``step`` = 0, 1, ...).
- :func:`cosine_with_warmup` (the small VAE): ``transformers.
  get_cosine_with_min_lr_schedule_with_warmup_lr_rate``: warm-up ``(step + 1) / warmup``, then a
  half cosine that reaches ``min_lr_ratio`` at the last step.

Both return a ``LambdaLR`` whose ``state_dict`` the checkpoints save as before.
"""

from __future__ import annotations

import torch
from torch.optim.lr_scheduler import LambdaLR
from transformers import (
    get_constant_schedule_with_warmup,
    get_cosine_with_min_lr_schedule_with_warmup_lr_rate,
)


def constant_with_warmup(optimizer: torch.optim.Optimizer, warmup_steps: int) -> LambdaLR:
    """Linear warm-up over ``warmup_steps`` updates (none for 0), then the optimiser's LR."""
    for group in optimizer.param_groups:  # LambdaLR's base LR when it starts past step 0
        group.setdefault("initial_lr", group["lr"])
    # last_epoch=0: the scheduler's first step is 1, so update 0 uses factor 1 / warmup
    return get_constant_schedule_with_warmup(optimizer, warmup_steps, last_epoch=0)


def cosine_with_warmup(
    optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int, min_lr_ratio: float
) -> LambdaLR:
    """Linear warm-up over ``warmup_steps``, then cosine decay to ``lr * min_lr_ratio`` at the
    last of ``total_steps`` updates."""
    return get_cosine_with_min_lr_schedule_with_warmup_lr_rate(
        optimizer, warmup_steps, total_steps, min_lr_rate=min_lr_ratio
    )
