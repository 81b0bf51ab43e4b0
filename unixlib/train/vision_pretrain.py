"""A short stand-in for the pretrained vision tower the paper starts from.

UniX starts stage 1 from Janus-Pro, whose SigLIP tower was pretrained on image-text pairs: the
report loss only has to teach the language side what the image features mean. A profile without
Janus-Pro (the CPU smoke run) starts the tower from random weights, and a few hundred steps of
report cross-entropy must then teach vision and language at once, which they do slowly (the model
writes the same normal report for most images). ``TrainConfig.vision_pretrain_steps`` stands in
for that pretraining: before stage 1, the tower (and nothing else) is trained with a throw-away
linear head on its mean-pooled output tokens to predict the 14 labels of the training images
(binary cross-entropy; uncertain as positive, unmentioned as negative). The head is discarded;
stage 1 then trains as the paper's. (A head on the flattened tokens instead of their mean was
measured too: similar label AUROCs, worse reports after stage 1 on the smoke run.)

It runs only in stage 1 of a fresh run whose tower is random (no ``janus_dir``), on the stage's
own training images at the stage's resolution; the labels are the dataset's (SynthCXR's truth,
MIMIC's CheXpert labels, or the rule labeler's for a folder of reports).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unixlib.data.datasets import label_targets
from unixlib.data.schema import LABELS
from unixlib.model.unix import UniX
from unixlib.model.vision import preprocess_for_vit, vit_features


def pretrain_vision_tower(
    model: UniX,
    images: Tensor,
    labels: pd.DataFrame,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    device: torch.device,
) -> list[float]:
    """Train ``model.vision_tower`` for ``steps`` steps to predict the 14 labels of ``images``
    ((N, 1, H, W) in [0, 1]) through a linear head on its mean-pooled tokens; return the losses.

    Batches are drawn from a generator seeded with ``seed`` (the same tower on every rank)."""
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images for {len(labels)} label rows")
    if steps < 1 or len(images) == 0:
        raise ValueError(
            f"vision pretraining needs steps >= 1 and images, got {steps}, {len(images)}"
        )
    tower, size = model.vision_tower, model.config.image_size_und
    targets = label_targets(labels)
    head = nn.Linear(model.config.vit_hidden_size, len(LABELS)).to(device)
    params = [*tower.parameters(), *head.parameters()]
    optimizer = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.95), weight_decay=0.0)
    gen = torch.Generator().manual_seed(seed)
    was_training = tower.training
    tower.train()
    losses = []
    for _ in range(steps):
        idx = torch.randint(0, len(images), (batch_size,), generator=gen)
        pixels = preprocess_for_vit(images[idx], size).to(device)  # (B, 3, S, S)
        pooled = vit_features(tower, pixels).mean(dim=1)  # (B, C)
        loss = F.binary_cross_entropy_with_logits(head(pooled), targets[idx].to(device))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
    tower.train(was_training)
    return losses


def run_vision_pretraining(
    model: UniX, dataset, steps: int, batch_size: int, lr: float, seed: int, device: torch.device
) -> dict:
    """:func:`pretrain_vision_tower` on a stage-1 dataset's images and labels; returns a record
    (steps, first/last loss, seconds) for the run folder."""
    t0 = time.perf_counter()
    images = dataset.images()  # (N, 1, S, S) at the stage's resolution
    losses = pretrain_vision_tower(
        model, images, dataset.rows[list(LABELS)], steps, batch_size, lr, seed, device
    )
    k = max(1, steps // 10)
    return {
        "steps": steps,
        "loss_first": float(np.mean(losses[:k])),
        "loss_last": float(np.mean(losses[-k:])),
        "seconds": round(time.perf_counter() - t0, 1),
        "losses": losses,
    }
