"""The packing benchmarks (issue 23): padding fractions, packed vs padded step, the kernel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from unixlib.bench import padding
from unixlib.bench.common import mixed_batch, paired_medians, result_row, tiny_model, training_step
from unixlib.data.packing import padding_fraction
from unixlib.model.attention import attention_kernel
from unixlib.model.config import preset
from unixlib.train import precision

PADDING_GOAL = 0.05  # packed training: under 5% of the token positions are padding


def _padding_row(
    name: str, stages: dict[int, list[list[int]]], multiple: int, **settings: Any
) -> dict:
    """A row of padded vs packed token positions pooled over the stages (ratio: positions
    saved), each stage's fractions, and the goal on the packed fraction of ``multiple``."""
    batches = [b for stage in stages.values() for b in stage]
    padded = sum(padding.layout_positions(b, False) for b in batches)
    packed = sum(padding.layout_positions(b, True, multiple) for b in batches)
    row = result_row(
        name,
        float(padded),
        float(packed),
        None,
        unit="positions",
        baseline="padded: one sample per row, rows as long as the longest",
        candidate=f"packed: one sequence per micro-batch, rounded up to {multiple}",
        padded_fraction=padding.pooled_fraction(batches, False),
        packed_fraction=padding.pooled_fraction(batches, True, multiple),
        pack_multiple=multiple,
        stages={str(k): padding.stage_fractions(v) for k, v in stages.items()},
        **settings,
    )
    row["target"] = f"packed_fraction < {PADDING_GOAL:g}"
    row["meets_target"] = row["packed_fraction"] < PADDING_GOAL
    return row


def bench_padding_smoke(quick: bool) -> dict:
    """The smoke profile's micro-batches (stages 1-3), padded vs packed as trained on the CPU
    (no block multiple); the CUDA block's fraction is in each stage's ``packed_block128``."""
    stages, data = padding.smoke_lengths(quick)
    return _padding_row("padding_fraction_smoke", stages, 1, preset="tiny", data=data)


def bench_padding_paper(quick: bool, iu_reports: str | Path = padding.IU_CSV) -> dict:
    """Paper shapes, IU report lengths scaled to 512 tokens, packed with CUDA's 128 block."""
    reports = padding.iu_report_lengths(iu_reports)
    stages = padding.paper_lengths(reports, 5 if quick else 200)
    return _padding_row(
        "padding_fraction_paper",
        stages,
        padding.CUDA_BLOCK,
        preset="paper",
        report_tokens={
            "source": str(iu_reports),
            "n": int(reports.size),
            "mean": float(reports.mean()),
            "median": float(sorted(reports)[reports.size // 2]),
            "max": int(reports.max()),
        },
    )


def smoke_shaped_inputs(packed: bool, quick: bool, seed: int = 0) -> dict[str, Any]:
    """The smoke run's stage-1 shape: 16 understanding samples (quick: 4) with reports of 10
    to 96 tokens (the smoke profile's ``max_report_tokens``), the same samples either layout."""
    cfg = preset("tiny")
    gen = torch.Generator().manual_seed(seed)
    n = 4 if quick else 16
    lengths = torch.randint(10, 97, (n,), generator=gen).tolist()
    return mixed_batch(cfg, n, 0, lengths, seed=seed, packed=packed)


def bench_packed_vs_padded(quick: bool, repeats: int) -> dict:
    """One training step (forward, backward, AdamW; the precision the smoke profile trains
    in here) on the same samples: padded rows with a dense mask vs one packed sequence."""
    padded_in, packed_in = smoke_shaped_inputs(False, quick), smoke_shaped_inputs(True, quick)
    padded_step = training_step(tiny_model().train(), padded_in)
    packed_step = training_step(tiny_model().train(), packed_in)
    padded_step(), packed_step()
    base, cand = paired_medians(padded_step, packed_step, repeats)
    cpu = torch.device("cpu")
    return result_row(
        "packed_vs_padded_step",
        base,
        cand,
        1.3,
        baseline=f"padded {list(padded_in['batch'].shape)}, {attention_kernel(padded_in['batch'], cpu)}",
        candidate=f"packed {list(packed_in['batch'].shape)}, {attention_kernel(packed_in['batch'], cpu)}",
        precision=precision.describe("auto", cpu),
        preset="tiny",
        batch=len(packed_in["batch"].tasks),
        tokens=int(packed_in["batch"].lengths.sum()),
        padded_fraction=padding_fraction(padded_in["batch"]),
        packed_fraction=padding_fraction(packed_in["batch"]),
        repeats=repeats,
    )


def bench_attention_kernel() -> dict:
    """Which attention kernel runs for a packed and a padded batch, here and on CUDA (the
    choice depends on the device's type only: no GPU is needed to name it)."""
    batches = {
        "packed": smoke_shaped_inputs(True, True),
        "padded": smoke_shaped_inputs(False, True),
    }
    row: dict[str, Any] = {"name": "attention_kernel"}
    for device in ("cpu", "cuda"):
        for layout, inputs in batches.items():
            row[f"{device}_{layout}"] = attention_kernel(inputs["batch"], torch.device(device))
    row.update(threads=torch.get_num_threads(), device="cpu", preset="tiny")
    return row
