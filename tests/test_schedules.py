"""LR schedules from transformers give the factors of the hand-written ones they replaced."""

from __future__ import annotations

import math

import pytest
import torch

from unixlib.train.schedules import constant_with_warmup, cosine_with_warmup


def _old_warmup_constant(step: int, warmup: int) -> float:
    """The factor unixlib.train.loop used before (``_warmup_constant``)."""
    return min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0


def _old_vae_factor(step: int, warmup: int, steps: int, min_ratio: float) -> float:
    """The factor unixlib.train.vae_train used before (``_lr_factor``)."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def _lrs(scheduler, optimizer, n: int) -> list[float]:
    """The LR of each of ``n`` updates, read as the loops read it (before ``step()``)."""
    out = []
    for _ in range(n):
        out.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    return out


def _optimizer(lr: float) -> torch.optim.Optimizer:
    return torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))], lr=lr)


@pytest.mark.parametrize("warmup", [0, 1, 5, 80])
def test_constant_with_warmup_is_the_old_factor(warmup):
    opt = _optimizer(2e-4)
    lrs = _lrs(constant_with_warmup(opt, warmup), opt, warmup + 20)
    assert lrs == pytest.approx([2e-4 * _old_warmup_constant(s, warmup) for s in range(len(lrs))])
    assert lrs[0] > 0, "the first update trains (HF's plain schedule would start at 0)"


def test_constant_with_warmup_resumes_from_its_state_dict():
    opt = _optimizer(1.0)
    sched = constant_with_warmup(opt, 10)
    _lrs(sched, opt, 4)
    opt2 = _optimizer(1.0)
    sched2 = constant_with_warmup(opt2, 10)
    sched2.load_state_dict(sched.state_dict())
    opt2.param_groups[0]["lr"] = sched2.get_last_lr()[0]
    assert _lrs(sched2, opt2, 8) == pytest.approx(
        [_old_warmup_constant(s, 10) for s in range(4, 12)]
    )


def test_cosine_with_warmup_keeps_the_old_warmup_and_ends_at_the_minimum():
    warmup, steps, ratio = 20, 480, 0.1  # VAETrainConfig's defaults
    opt = _optimizer(1e-3)
    lrs = _lrs(cosine_with_warmup(opt, warmup, steps, ratio), opt, steps)
    old = [1e-3 * _old_vae_factor(s, warmup, steps, ratio) for s in range(steps + 1)]
    assert lrs[:warmup] == pytest.approx(old[:warmup])  # identical warm-up
    # the cosine runs one update ahead of the old one: it reaches lr * ratio on the last update
    # (the old factor reached it one step after training had ended)
    assert lrs[warmup:] == pytest.approx(old[warmup + 1 :])
    assert lrs[-1] == pytest.approx(1e-3 * ratio) and max(lrs) == pytest.approx(1e-3)
