"""The data behind Fig. 2, taken from the code that trains the model.

Fig. 2 of the paper draws the architecture: one packed sequence per task, which tokens see which,
and what each stage trains. Here every piece comes from the training code itself, so the figure
cannot drift from it:

* :func:`example_packed_batches` builds the plans with ``understanding_plan`` /
  ``generation_plan`` and packs them with ``pack``, exactly as ``train.batches.BatchSource``
  does, then reads the first sample's splits, token kinds, attention mask and RoPE positions
  off the real ``PackedBatch``;
* :func:`trainable_groups_by_stage` reads the stage flags of ``train.config.STAGE_DEFAULTS``
  (or of a run's resolved configs).

The results are plain data (numpy arrays, tuples, a DataFrame) for ``unixlib.viz.fig2``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import pandas as pd

from unixlib.data.packing import pack
from unixlib.data.plans import (
    PAD_CODE,
    TEXT,
    TEXT_CODE,
    VAE,
    VAE_CODE,
    VIT,
    VIT_CODE,
    SamplePlan,
    SpecialTokens,
    Split,
    generation_plan,
    understanding_plan,
)
from unixlib.experiments.hyperparams import GROUP_LABELS
from unixlib.train.config import GROUPS, STAGE_DEFAULTS
from unixlib.viz.architecture import SplitSpan, TaskSequence

PAD = "pad"
KIND_NAMES: dict[int, str] = {PAD_CODE: PAD, TEXT_CODE: TEXT, VIT_CODE: VIT, VAE_CODE: VAE}
TASK_TITLES: dict[str, str] = {
    "und": "understanding (X-ray -> report)",
    "gen": "generation (report -> X-ray)",
    "uncond": "unconditional generation (text dropped, CFG)",
}
STAGE_NAMES: dict[int, str] = {1: "und. SFT", 2: "gen. PT", 3: "gen. FT"}
TRAINED, FROZEN, UNUSED = "trained", "frozen", "unused"
# Rows of the stage panel: each group with what train/setup.py puts in it besides the blocks.
GROUP_ROWS: dict[str, str] = {
    "vision": GROUP_LABELS["vision"],
    "connector": GROUP_LABELS["connector"],
    "und": f"{GROUP_LABELS['und']} (+ embeddings, lm_head)",
    "gen": f"{GROUP_LABELS['gen']} (+ latent in/out, t-embedder)",
}
REPA_ROW, VAE_ROW = "REPA projector", "VAE"


class TokenExample(Protocol):
    """What a training example gives the plans (``data.datasets.Example`` has both)."""

    prompt_ids: Sequence[int]
    report_ids: Sequence[int]


def _text_label(split: Split, special: SpecialTokens, task: str) -> str:
    """``bos boi``, ``eoi + prompt``, ``report + eos``, ``bos + report + boi``, ..."""
    ids = list(split.token_ids)
    names = {special.bos: "bos", special.boi: "boi", special.eoi: "eoi", special.eos: "eos"}
    head = [names[ids.pop(0)]] if ids and ids[0] in names else []
    tail = [names[ids.pop()]] if ids and ids[-1] in names else []
    # The understanding prompt is the only text without loss that is not a report.
    body = ["prompt" if task == "und" and not split.loss else "report"] if ids else []
    parts = head + body + tail
    return " + ".join(parts) if body else " ".join(parts)


def _label(split: Split, special: SpecialTokens, task: str) -> str:
    if split.kind == TEXT:
        return _text_label(split, special, task)
    rows, cols = split.grid
    return f"ViT {rows}x{cols}" if split.kind == VIT else f"noisy latents {rows}x{cols}"


def _spans(plan: SamplePlan, length: int, special: SpecialTokens) -> tuple[SplitSpan, ...]:
    """The plan's splits as token ranges of a packed row of ``length``, padding appended."""
    spans, start = [], 0
    for split in plan.splits:
        label = _label(split, special, plan.task)
        spans.append(SplitSpan(split.kind, start, split.n_tokens, label, split.loss))
        start += split.n_tokens
    if start < length:
        spans.append(SplitSpan(PAD, start, length - start, PAD))
    return tuple(spans)


def _task_plans(
    examples: Sequence[TokenExample],
    vit_grid: tuple[int, int],
    latent_grid: tuple[int, int],
    special: SpecialTokens,
) -> dict[str, list[SamplePlan]]:
    """The plans ``BatchSource.micro_batch`` builds for these examples, per task; the
    unconditional plan is what ``text_dropout`` makes of a report (the empty context)."""
    und = [
        understanding_plan(ex.prompt_ids, ex.report_ids, vit_grid, special, k)
        for k, ex in enumerate(examples)
    ]
    gen = [generation_plan(ex.report_ids, latent_grid, special, k) for k, ex in enumerate(examples)]
    uncond = [generation_plan([], latent_grid, special, k) for k in range(len(examples))]
    return {"und": und, "gen": gen, "uncond": uncond}


def example_packed_batches(
    examples: Sequence[TokenExample],
    vit_grid: tuple[int, int],
    latent_grid: tuple[int, int],
    special: SpecialTokens,
) -> dict[str, TaskSequence]:
    """One real packed batch per task (``und``, ``gen``, ``uncond``), each read at its first
    sample.

    Args:
        examples: a few training examples (``ReportImageDataset.example(i)``, or anything with
            ``prompt_ids`` and ``report_ids``); all of them go into each task's batch, so a
            first sample shorter than the others shows the padding too.
        vit_grid: SigLIP token grid, ``(mc.vit_grid, mc.vit_grid)`` of the model config.
        latent_grid: latent token grid, ``(g, g)`` with ``g = mc.latent_grid(image_size_gen)``.
        special: ``SpecialTokens.from_mapping(mc.special_ids())``.
    """
    if not examples:
        raise ValueError("example_packed_batches: no examples")
    out = {}
    for task, plans in _task_plans(examples, vit_grid, latent_grid, special).items():
        batch = pack(plans, pad_id=special.pad)  # as BatchSource.micro_batch
        out[task] = TaskSequence(
            task=task,
            title=TASK_TITLES[task],
            splits=_spans(plans[0], batch.shape[1], special),
            token_kind=batch.token_kind[0].numpy(),
            kind_names=dict(KIND_NAMES),
            attention_mask=batch.attention_mask[0, 0].numpy(),
            position_ids=batch.position_ids[0].numpy(),
            batch_shape=batch.shape,
        )
    return out


def _state(trainable: Sequence[str], group: str) -> str:
    return TRAINED if group in trainable else FROZEN


def trainable_groups_by_stage(
    stages: Mapping[int, Mapping[str, Any]] | None = None,
) -> pd.DataFrame:
    """Which weights train in each stage: rows are weight groups, columns ``stage N (name)``,
    values ``trained`` / ``frozen`` / ``unused``.

    Args:
        stages: stage -> settings with ``trainable`` (groups of ``train.config.GROUPS``) and
            ``repa_weight``: a run's ``{s: cfg.to_dict()}``; None = ``STAGE_DEFAULTS``.

    The REPA projector belongs to the gen group (``train/setup.py``) but only receives a
    gradient where REPA is on; the VAE is never trained by the three stages.
    """
    columns = {}
    for stage, settings in sorted((STAGE_DEFAULTS if stages is None else stages).items()):
        trainable = tuple(settings["trainable"])
        states = {GROUP_ROWS[g]: _state(trainable, g) for g in GROUPS}
        repa = _state(trainable, "gen")
        states[REPA_ROW] = UNUSED if repa == TRAINED and not settings["repa_weight"] else repa
        states[VAE_ROW] = FROZEN
        name = STAGE_NAMES.get(stage)
        columns[f"stage {stage} ({name})" if name else f"stage {stage}"] = states
    return pd.DataFrame(columns)
