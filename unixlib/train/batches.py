"""Micro-batches as pure functions of (seed, step, micro-step, rank).

Each task (und, gen) reads an endless stream over its dataset: stream position ``k`` is example
``perm_e[k % n]`` of epoch ``e = k // n`` (a permutation seeded by (seed, e)). The micro-batch of
(step, micro, rank) takes the next ``n_task`` positions of each task's stream, so

* resuming at step s needs no sampler state (the data position is ``s`` itself), and
* ``world`` processes with batch ``B`` read exactly the examples one process with batch
  ``world * B`` reads: the same global batch, which the DDP test checks.

Every random draw of an example (flow time, noise, text dropout) is seeded by its stream
position too, so it does not depend on how the global batch is split across devices.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from unixlib.config import project_path
from unixlib.data.datasets import ReportImageDataset
from unixlib.data.packing import (
    PackedBatch,
    SamplePlan,
    SpecialTokens,
    generation_plan,
    pack,
    text_dropout,
    understanding_plan,
)
from unixlib.data.processed import DataPaths, load_data
from unixlib.data.text.tokenizer import ReportTokenizer
from unixlib.model.config import UniXConfig
from unixlib.model.flow import sample_train_timesteps
from unixlib.model.vision import preprocess_for_vit
from unixlib.train.config import TrainConfig


@lru_cache(maxsize=8)
def _permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    return np.random.default_rng((seed, epoch)).permutation(n)


def stream_index(seed: int, k: int, n: int) -> tuple[int, int]:
    """(example index, epoch) at stream position ``k`` of a dataset of ``n`` examples."""
    epoch = k // n
    return int(_permutation(seed, epoch, n)[k % n]), epoch


def example_seed(seed: int, k: int) -> int:
    """The seed of generation example ``k`` of the run's stream (a 62-bit int).

    Not ``hash((seed, k, ...))``: Python salts ``str`` hashes per interpreter (PYTHONHASHSEED), so
    a resumed run or another rank would draw different times and noise."""
    return int(np.random.SeedSequence([seed, k]).generate_state(1, np.uint64)[0] >> 2)


def task_counts(batch_size: int, ratio: tuple[int, int]) -> tuple[int, int]:
    """Examples of (und, gen) in a micro-batch of ``batch_size`` for the und:gen ``ratio``."""
    und = round(batch_size * ratio[0] / (ratio[0] + ratio[1]))
    return und, batch_size - und


@dataclass
class MicroBatch:
    """Everything one forward pass needs (CPU tensors; the loop moves them)."""

    batch: PackedBatch
    vit_pixels: Tensor | None  # (Nu, 3, S, S) preprocessed for SigLIP
    # (Ng, 1, H, W) in [0, 1]: VAE input and REPA target input; None when the run reads latents
    # from its cache and has no REPA (BatchSource.gen_pixels False): nothing would look at them
    gen_images: Tensor | None
    gen_indices: list[int]  # dataset rows of the generation examples (latent cache lookup)
    timesteps: Tensor | None  # (Ng,)
    noise_seeds: list[int]  # one per generation example; noise is drawn on the model's device
    n_ce: int  # answer tokens with cross-entropy
    n_flow: int  # latent tokens with flow loss
    n_gen: int  # generation examples (REPA is a mean over them)


@dataclass
class BatchSource:
    """Builds micro-batches for one run. ``datasets`` maps ``und``/``gen`` to a dataset."""

    datasets: dict[str, ReportImageDataset]
    special: SpecialTokens
    batch_size: int
    grad_accum: int
    ratio: tuple[int, int]
    seed: int
    vit_size: int  # SigLIP input side (und)
    vit_grid: tuple[int, int]
    latent_grid: tuple[int, int]
    timestep_shift: float
    text_dropout_prob: float
    world_size: int = 1
    rank: int = 0
    gen_pixels: bool = True  # decode generation images (False: latents cached, no REPA)
    layout: str = "ours"  # sequence layout of the plans (UniXConfig.sequence_layout)
    packing: bool = True  # all samples in one row (False: one per row, padded)
    pad_to_multiple_of: int = 1  # the sequence length's multiple (flex's tile on CUDA)
    max_tokens: int = 0  # token budget of one forward (0 = none): micro_batches

    def _positions(self, task_index: int, count: int, step: int, micro: int) -> range:
        slot = (step * self.grad_accum + micro) * self.world_size + self.rank
        return range(slot * count, (slot + 1) * count)

    def micro_batch(self, step: int, micro: int) -> MicroBatch:
        """The whole micro-batch ``(step, micro)`` as one batch (packed into one row when
        ``packing``; the token budget is not applied: see :meth:`micro_batches`)."""
        return self._assemble(self._examples(step, micro))

    def micro_batches(self, step: int, micro: int, min_pieces: int = 1) -> list[MicroBatch]:
        """The micro-batch ``(step, micro)`` as the forwards that run it: one, or with a
        ``max_tokens`` budget as few pieces (the samples in order) as fit it, at least
        ``min_pieces`` (the largest piece is halved until there are that many). The pieces'
        counts (``n_ce``, ``n_flow``, ``n_gen``) sum to the whole micro-batch's."""
        examples = self._examples(step, micro)
        if not self.max_tokens and min_pieces <= 1:
            return [self._assemble(examples)]
        budget = self.max_tokens or sum(e.plan.length for e in examples)
        groups = split_by_tokens([e.plan for e in examples], budget)
        groups = _at_least(groups, min_pieces)
        return [self._assemble([examples[i] for i in group]) for group in groups]

    def _examples(self, step: int, micro: int) -> list[_Example]:
        """The micro-batch's examples in batch order: understanding first, then generation."""
        n_und, n_gen = task_counts(self.batch_size, self.ratio)
        examples = []
        if n_und:
            data = self.datasets["und"]
            for k in self._positions(0, n_und, step, micro):
                idx, epoch = stream_index(self.seed, k, len(data))
                ex = data.example(idx, epoch)
                plan = understanding_plan(
                    ex.prompt_ids, ex.report_ids, self.vit_grid, self.special, k, self.layout
                )
                examples.append(_Example(plan, vit_image=ex.image))
        if n_gen:
            data = self.datasets["gen"]
            for k in self._positions(1, n_gen, step, micro):
                idx, epoch = stream_index(self.seed + 1, k, len(data))
                ex_seed = example_seed(self.seed, k)
                rng = random.Random(ex_seed)
                report = text_dropout(data.report_ids[idx], self.text_dropout_prob, rng)
                g = torch.Generator().manual_seed(ex_seed)
                examples.append(
                    _Example(
                        generation_plan(
                            report, self.latent_grid, self.special, k, layout=self.layout
                        ),
                        gen_image=data.image(idx) if self.gen_pixels else None,
                        gen_row=idx,
                        timestep=sample_train_timesteps(1, self.timestep_shift, g),
                        noise_seed=ex_seed + 1,
                    )
                )
        return examples

    def _assemble(self, examples: list[_Example]) -> MicroBatch:
        """One forward's :class:`MicroBatch` of ``examples`` (in order)."""
        batch = pack(
            [e.plan for e in examples],
            pad_id=self.special.pad,
            pad_to_multiple_of=self.pad_to_multiple_of,
            packed=self.packing,
        )
        vit_images = [e.vit_image for e in examples if e.vit_image is not None]
        gen_images = [e.gen_image for e in examples if e.gen_image is not None]
        gen = [e for e in examples if e.gen_row is not None]
        vit_pixels = (
            preprocess_for_vit(torch.stack(vit_images), self.vit_size) if vit_images else None
        )
        return MicroBatch(
            batch=batch,
            vit_pixels=vit_pixels,
            gen_images=torch.stack(gen_images) if gen_images else None,
            gen_indices=[e.gen_row for e in gen],
            timesteps=torch.cat([e.timestep for e in gen]) if gen else None,
            noise_seeds=[e.noise_seed for e in gen],
            n_ce=batch.ce_index.numel(),
            n_flow=int(batch.flow_mask.sum()),
            n_gen=len(gen),
        )


@dataclass
class _Example:
    """One example of a micro-batch: its plan and what the forward needs beside it."""

    plan: SamplePlan
    vit_image: Tensor | None = None  # (1, H, W) understanding image
    gen_image: Tensor | None = None  # (1, H, W) generation image (when decoded)
    gen_row: int | None = None  # dataset row of a generation example
    timestep: Tensor | None = None  # (1,) flow time
    noise_seed: int = 0


def _at_least(groups: list[list[int]], count: int) -> list[list[int]]:
    """``groups`` with the largest (most samples) halved until there are ``count``."""
    groups = [list(g) for g in groups]
    while len(groups) < count:
        i = max(range(len(groups)), key=lambda j: len(groups[j]))
        if len(groups[i]) < 2:
            raise ValueError(f"cannot split a micro-batch into {count} pieces: too few samples")
        half = len(groups[i]) // 2
        groups[i : i + 1] = [groups[i][:half], groups[i][half:]]
    return groups


def split_by_tokens(plans: list[SamplePlan], max_tokens: int) -> list[list[int]]:
    """Indices of ``plans`` grouped, in order, into as few runs of at most ``max_tokens``
    tokens as possible (greedy: a run closes when the next plan would not fit).

    Raises ``ValueError`` naming a sample longer than ``max_tokens``."""
    groups: list[list[int]] = []
    used = max_tokens + 1  # forces a new group at the first plan
    for i, plan in enumerate(plans):
        if plan.length > max_tokens:
            raise ValueError(
                f"sample {plan.sample_id} ({plan.task}, plan {i} of the micro-batch) has "
                f"{plan.length} tokens, more than max_tokens={max_tokens}"
            )
        if used + plan.length > max_tokens:
            groups.append([])
            used = 0
        groups[-1].append(i)
        used += plan.length
    return groups


def draw_noise(seeds: list[int], shape: tuple[int, ...], device: torch.device) -> Tensor:
    """(len(seeds), *shape) standard normal noise, one CPU generator per example (exactly
    reproducible whatever the batch split), moved to ``device``."""
    out = [torch.randn(shape, generator=torch.Generator().manual_seed(s)) for s in seeds]
    return torch.stack(out).to(device)


def load_training_data(cfg: TrainConfig) -> tuple[pd.DataFrame, ReportTokenizer, DataPaths]:
    """Notebook 01's processed table, tokenizer and paths, read from ``cfg.data_dir``."""
    return load_data(DataPaths(project_path(cfg.data_dir)))


def build_source(
    cfg: TrainConfig,
    mc: UniXConfig,
    world_size: int = 1,
    rank: int = 0,
    data: tuple[pd.DataFrame, ReportTokenizer, DataPaths] | None = None,
) -> BatchSource:
    """The run's :class:`BatchSource`: training-split datasets of the tasks it trains, at the
    model's image sizes (``mc``), for process ``rank`` of ``world_size``. ``data`` is what
    :func:`load_training_data` returned, when the caller has it already."""
    frame, tokenizer, paths = data or load_training_data(cfg)
    datasets = {}
    for task, n, size in (
        ("und", cfg.task_ratio[0], mc.image_size_und),
        ("gen", cfg.task_ratio[1], mc.image_size_gen),
    ):
        if n:
            datasets[task] = ReportImageDataset(
                frame,
                paths.root,
                tokenizer,
                "train",
                size,
                task,
                cfg.max_report_tokens,
                cfg.seed,
                cfg.report_column,
            )
    grid = mc.latent_grid(mc.image_size_gen)
    return BatchSource(
        datasets=datasets,
        special=SpecialTokens.from_mapping(mc.special_ids()),
        batch_size=cfg.batch_size,
        grad_accum=cfg.grad_accum,
        ratio=cfg.task_ratio,
        seed=cfg.seed,
        vit_size=mc.image_size_und,
        vit_grid=(mc.vit_grid, mc.vit_grid),
        latent_grid=(grid, grid),
        timestep_shift=cfg.timestep_shift,
        text_dropout_prob=cfg.text_dropout_prob,
        world_size=world_size,
        rank=rank,
        layout=mc.sequence_layout,
        packing=cfg.packing,
        max_tokens=cfg.max_tokens,
    )


def align_latent_cache(
    latents: Tensor, ids: list[str], dataset: ReportImageDataset, grid: int, patch: int
) -> Tensor:
    """The cached latents ``(N, C, h, w)`` reordered to the dataset's rows (matched by ``id``),
    so that ``result[i]`` is the latent of ``dataset`` row ``i`` (``MicroBatch.gen_indices``).

    Raises ``ValueError`` naming the rows the cache lacks, or when its latent grid is not the
    stage's (the cache was encoded at another resolution)."""
    position = {i: n for n, i in enumerate(ids)}
    wanted = dataset.rows["id"].astype(str).tolist()
    missing = [i for i in wanted if i not in position]
    if missing:
        raise ValueError(
            f"the latent cache lacks {len(missing)} training rows, e.g. "
            f"{missing[:3]}: re-encode it for this dataset"
        )
    side = grid * patch
    if tuple(latents.shape[-2:]) != (side, side):
        raise ValueError(
            f"cached latents are {tuple(latents.shape[-2:])}, the stage needs "
            f"({side}, {side}): the cache was encoded at another image size"
        )
    return latents[[position[i] for i in wanted]]
