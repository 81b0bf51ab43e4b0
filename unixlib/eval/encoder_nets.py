"""The reference encoders' networks, losses and training loop (:mod:`unixlib.eval.encoders`).

Two models, trained once on the train split when no pretrained encoder (RadDino, BioViL-T) is
local, and sharing no weights with each other or with UniX::

    classifier    image (N,1,S,S) -> ConvTower -> GELU -> features (N,F) -> Linear -> logits (N,14)
    contrastive   image (N,1,S,S) -> ConvTower (own weights) -> centre -> L2 norm -> (N,E)
                  ids (N,L) + pad mask -> embed + positions -> transformer -> masked mean
                  -> Linear -> centre -> L2 norm -> (N,E)
                  loss: SigLIP's pairwise sigmoid loss on t * <img, txt> + b

``features`` (F = ``feature_dim``) feed FD / KD / PRDC; the contrastive embeddings give the
alignment score (cosine of an image and its report), as BioViL-T does in the paper. Also here:
:class:`EncoderConfig`, the input resize (:func:`as_image_batch`) and the AdamW loop (:func:`fit`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unixlib.data.schema import LABELS

N_CLASSES = len(LABELS)  # the 14 CheXpert observations
ImageBatch = Tensor | np.ndarray  # (N, 1, H, W) or (N, H, W), values in [0, 1]


@dataclass
class EncoderConfig:
    """Reference encoder settings; all of them are part of the cache key."""

    image_size: int = 64  # images are resized to this (bilinear) before encoding
    width: int = 32  # CNN base channels (stages: w, 2w, 4w, 4w)
    feature_dim: int = 128  # penultimate classifier layer = the FD / KD / PRDC features
    embed_dim: int = 64  # contrastive embedding size (alignment score, retrieval)
    steps: int = 300  # AdamW steps for each of the two models
    batch_size: int = 64  # SigLIP sees batch_size - 1 negatives per image
    lr: float = 2e-3  # peak learning rate: linear warm-up over 5% of steps, cosine decay to 0
    weight_decay: float = 0.01  # AdamW's default decoupled decay
    max_text_tokens: int = 96  # reports are cut to their first tokens (findings come first)
    text_width: int = 64  # text transformer width (heads of 32 channels)
    text_layers: int = 1  # attention layers (with positions: word order, so negation, counts)
    seed: int = 0  # initialisation and batch order; same seed -> same weights on CPU


def as_image_batch(images: ImageBatch, size: int, mode: str = "bilinear") -> Tensor:
    """(N, 1, H, W) or (N, H, W) array/tensor in [0, 1] -> (N, 1, size, size) float32.

    Antialiased when shrinking (512 px generations measured at 64 px), as PIL's resize in
    :func:`unixlib.data.datasets.load_image` is, so real and generated images see the same path.
    """
    x = torch.as_tensor(images, dtype=torch.float32)
    x = x.unsqueeze(1) if x.ndim == 3 else x  # (N, 1, H, W)
    if x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"expected (N, 1, H, W) or (N, H, W) images, got {tuple(x.shape)}")
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, (size, size), mode=mode, antialias=True, align_corners=False)
        x = x.clamp(0, 1) if mode == "bicubic" else x  # bicubic overshoots at edges
    return x


def siglip_loss(img: Tensor, txt: Tensor, log_t: Tensor, bias: Tensor) -> Tensor:
    """SigLIP's pairwise sigmoid loss (Zhai et al. 2023, "Sigmoid Loss for Language Image
    Pre-Training", Algorithm 1).

    Every (image i, text j) pair of the batch is an independent binary problem: label
    z_ij = +1 on the diagonal (the image's own report), -1 elsewhere, logit
    t * <img_i, txt_j> + b with t = exp(log_t). The loss is -sum_ij log sigmoid(z_ij * logit_ij)
    divided by the batch size, as in the paper (not by the number of pairs).

    Args:
        img: (B, E) L2-normalised image embeddings.
        txt: (B, E) L2-normalised text embeddings, row i pairs with image i.
        log_t: () learnable log temperature (SigLIP initialises it to log 10).
        bias: () learnable logit bias (initialised to -10 so that the many negatives start
            with a small loss).
    """
    logits = img @ txt.T * log_t.exp() + bias  # (B, B)
    z = 2 * torch.eye(len(img), dtype=logits.dtype, device=logits.device) - 1  # (B, B) of +-1
    return -F.logsigmoid(z * logits).sum() / len(img)


class ConvTower(nn.Module):
    """A small CNN: four stride-2 3x3 conv blocks (GroupNorm, GELU), global average pool,
    linear projection.

    Channels ``width, 2*width, 4*width, 4*width``; a 64 px input ends at 4 x 4. GroupNorm
    rather than BatchNorm so an image's features never depend on the batch it is encoded
    with, nor on train/eval mode statistics.
    """

    def __init__(self, width: int, out_dim: int) -> None:
        super().__init__()
        chans = (1, width, 2 * width, 4 * width, 4 * width)
        blocks: list[nn.Module] = []
        for c_in, c_out in itertools.pairwise(chans):
            blocks += [
                nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False),
                nn.GroupNorm(min(8, c_out), c_out),
                nn.GELU(),
            ]
        self.blocks = nn.Sequential(*blocks)
        self.proj = nn.Linear(chans[-1], out_dim)

    def forward(self, x: Tensor) -> Tensor:
        """(N, 1, S, S) images in [0, 1] -> (N, out_dim)."""
        h = self.blocks(x - 0.5)  # (N, 4w, S/16, S/16); centred input for the first conv
        return self.proj(h.mean(dim=(2, 3)))  # (N, out_dim)


class ImageClassifier(nn.Module):
    """14-label classifier whose penultimate layer gives the FD/KD/PRDC features."""

    def __init__(self, width: int, feature_dim: int) -> None:
        super().__init__()
        self.tower = ConvTower(width, feature_dim)
        self.head = nn.Linear(feature_dim, N_CLASSES)

    def features(self, x: Tensor) -> Tensor:
        """(N, 1, S, S) -> (N, feature_dim), non-negative-ish (after GELU)."""
        return F.gelu(self.tower(x))

    def forward(self, x: Tensor) -> Tensor:
        """(N, 1, S, S) -> (N, 14) logits in LABELS order."""
        return self.head(self.features(x))


def pad_ids(ids: Sequence[Sequence[int]], pad: int) -> tuple[Tensor, Tensor]:
    """Right-pad token id lists to the longest one.

    Returns ``(ids, valid)``: (N, L) int64 and (N, L) bool, True at real tokens. An empty text
    becomes one pad token marked valid, so every row pools over at least one position (an
    all-masked row would make attention and the mean NaN).
    """
    rows = [list(r) if len(r) else [pad] for r in ids]
    length = max(len(r) for r in rows)
    out = torch.full((len(rows), length), pad, dtype=torch.long)  # (N, L)
    valid = torch.zeros(len(rows), length, dtype=torch.bool)  # (N, L)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        valid[i, : len(r)] = True
    return out, valid


class TextTower(nn.Module):
    """Token embeddings + learned positions -> pre-norm transformer encoder -> masked mean.

    Attention over positions (not a bag of words) lets "no pleural effusion" and "pleural
    effusion" embed differently.
    """

    def __init__(
        self, vocab_size: int, max_tokens: int, width: int, layers: int, out_dim: int
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, width)
        self.pos = nn.Parameter(torch.randn(max_tokens, width) * 0.02)
        # No dropout: training is short, and dropout would draw from the global RNG.
        layer = nn.TransformerEncoderLayer(
            width,
            nhead=max(1, width // 32),
            dim_feedforward=4 * width,
            dropout=0.0,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.proj = nn.Linear(width, out_dim)

    def forward(self, ids: Tensor, valid: Tensor) -> Tensor:
        """(N, L) token ids and (N, L) bool validity -> (N, out_dim)."""
        h = self.embed(ids) + self.pos[: ids.shape[1]]  # (N, L, W)
        h = self.norm(self.encoder(h, src_key_padding_mask=~valid))  # (N, L, W)
        w = valid.unsqueeze(-1).to(h.dtype)  # (N, L, 1)
        return self.proj((h * w).sum(1) / w.sum(1))  # (N, out_dim)


class ContrastiveModel(nn.Module):
    """Image and text towers with SigLIP's learnable temperature and bias.

    Each tower's output is centred by a BatchNorm without affine parameters before the L2 norm.
    From scratch, all images (and all reports) start near one shared direction; SigLIP then
    sits at the constant solution (every cosine equal) for longer than our few hundred steps.
    Removing the shared component across the batch (as the BatchNorm in SimCLR's and BYOL's
    projection heads does) lets matching start at once. At eval the running statistics are
    used, so an embedding never depends on its batch.
    """

    def __init__(
        self,
        width: int,
        embed_dim: int,
        vocab_size: int,
        max_tokens: int,
        text_width: int,
        text_layers: int,
    ) -> None:
        super().__init__()
        self.image = ConvTower(width, embed_dim)
        self.text = TextTower(vocab_size, max_tokens, text_width, text_layers, embed_dim)
        self.image_centre = nn.BatchNorm1d(embed_dim, affine=False)
        self.text_centre = nn.BatchNorm1d(embed_dim, affine=False)
        self.log_t = nn.Parameter(torch.tensor(math.log(10.0)))
        self.bias = nn.Parameter(torch.tensor(-10.0))

    def embed_images(self, x: Tensor) -> Tensor:
        """(N, 1, S, S) -> (N, embed_dim), unit norm."""
        return F.normalize(self.image_centre(self.image(x)), dim=-1)

    def embed_texts(self, ids: Tensor, valid: Tensor) -> Tensor:
        """(N, L) ids, (N, L) validity -> (N, embed_dim), unit norm."""
        return F.normalize(self.text_centre(self.text(ids, valid)), dim=-1)

    def loss(self, x: Tensor, ids: Tensor, valid: Tensor) -> Tensor:
        """SigLIP loss of a batch of (N, 1, S, S) images and their reports' ids."""
        return siglip_loss(
            self.embed_images(x), self.embed_texts(ids, valid), self.log_t, self.bias
        )


# ---- training loop (shared by both models) ---------------------------------------------------


def _batches(n: int, batch: int, steps: int, gen: torch.Generator) -> Iterator[Tensor]:
    """``steps`` index batches from successive random permutations of range(n); a permutation's
    remainder shorter than ``batch`` is dropped, so no batch repeats an index."""
    order = torch.empty(0, dtype=torch.long)
    for _ in range(steps):
        if len(order) < batch:
            order = torch.randperm(n, generator=gen)
        yield order[:batch]
        order = order[batch:]


def _lr_factor(step: int, steps: int) -> float:
    """Linear warm-up over the first 5% of steps, then cosine decay to 0 (short runs end
    better with the rate annealed than cut at its peak)."""
    warm = max(1, steps // 20)
    return min(1.0, (step + 1) / warm) * 0.5 * (1 + math.cos(math.pi * step / steps))


def fit(
    model: nn.Module,
    batch_loss: Callable[[Tensor], Tensor],
    n: int,
    steps: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    gen: torch.Generator,
) -> list[float]:
    """Minimise ``batch_loss(indices)`` over ``n`` examples with AdamW for ``steps`` steps.

    ``gen`` alone draws the batches, so a seeded generator (and seeded initialisation) give
    the same weights on CPU. Leaves ``model`` in eval mode; returns each step's loss.
    """
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _lr_factor(s, steps))
    model.train()
    losses = []
    for idx in _batches(n, min(batch_size, n), steps, gen):
        loss = batch_loss(idx)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(round(loss.item(), 5))
    model.eval()
    return losses


def build_nets(cfg: EncoderConfig, vocab_size: int) -> tuple[ImageClassifier, ContrastiveModel]:
    """The two untrained models (initialised from torch's global RNG)."""
    classifier = ImageClassifier(cfg.width, cfg.feature_dim)
    contrastive = ContrastiveModel(
        cfg.width, cfg.embed_dim, vocab_size, cfg.max_text_tokens, cfg.text_width, cfg.text_layers
    )
    return classifier, contrastive


def train_nets(
    x: Tensor,
    y: Tensor,
    ids: Sequence[Sequence[int]],
    pad: int,
    vocab_size: int,
    cfg: EncoderConfig,
) -> tuple[ImageClassifier, ContrastiveModel, dict[str, list[float]]]:
    """Train the classifier (BCE) and then the contrastive model (SigLIP) from ``cfg.seed``.

    Args:
        x: (N, 1, S, S) images in [0, 1], already at ``cfg.image_size``.
        y: (N, 14) float targets in {0, 1}.
        ids: N reports' token ids, truncated to ``cfg.max_text_tokens``.
        pad: the tokenizer's pad id; ``vocab_size`` rows of the token table must hold it.

    Returns:
        both models in eval mode, and each one's loss per step.
    """
    steps = {k: getattr(cfg, k) for k in ("steps", "batch_size", "lr", "weight_decay")}
    with torch.random.fork_rng(devices=[]):  # seed init without disturbing the caller's RNG
        torch.manual_seed(cfg.seed)
        classifier, contrastive = build_nets(cfg, vocab_size)
        gen = torch.Generator().manual_seed(cfg.seed)

        def bce(i: Tensor) -> Tensor:
            return F.binary_cross_entropy_with_logits(classifier(x[i]), y[i])

        def siglip(i: Tensor) -> Tensor:
            return contrastive.loss(x[i], *pad_ids([ids[j] for j in i], pad))

        losses = {
            "classifier": fit(classifier, bce, len(x), gen=gen, **steps),
            "contrastive": fit(contrastive, siglip, len(x), gen=gen, **steps),
        }
    return classifier, contrastive, losses
