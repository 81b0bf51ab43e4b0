"""Torch-facing datasets: understanding (image -> report) and generation (report -> image).

Both read the processed table of notebook 01 (``processed.parquet`` + image cache + tokenizer)
and return plain examples; the training loop turns a list of examples into sequence plans and a
packed batch (``unixlib.data.packing``). Everything an example holds is a pure function of
(seed, index, epoch), so a resumed run sees exactly the same data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch import Tensor

from unixlib.data.processed import unusable_reason
from unixlib.data.schema import GEN_TEXT_COLUMN, LABELS, TASK_COLUMN
from unixlib.data.text.prompts import training_prompt
from unixlib.data.text.reports import format_report, report_body
from unixlib.data.text.tokenizer import ReportTokenizer


@dataclass
class Example:
    """One training example.

    Attributes:
        index: row position in the dataset.
        image: (1, H, W) float32 in [0, 1], the cached image resized to the stage's resolution.
        report_ids: the cleaned report's token ids (truncated to ``max_report_tokens``).
        prompt_ids: the instruction's ids (understanding only; empty for generation).
    """

    index: int
    image: Tensor
    report_ids: list[int]
    prompt_ids: list[int]


def label_targets(labels: pd.DataFrame) -> Tensor:
    """(N, 14) float32 binary targets in LABELS order from label columns: positive or uncertain
    (1, -1) -> 1, negative or not mentioned (0, NaN) -> 0 (for label heads trained with BCE)."""
    missing = [c for c in LABELS if c not in labels.columns]
    if missing:
        raise KeyError(f"labels lack the CheXpert columns {missing}")
    values = labels[list(LABELS)].to_numpy(dtype=np.float64, na_value=np.nan)  # (N, 14)
    return torch.from_numpy(np.isin(values, (1.0, -1.0)).astype(np.float32))


def load_image(path: Path, size: int) -> Tensor:
    """A cached 8-bit PNG as (1, size, size) float32 in [0, 1] (bilinear resize if needed)."""
    try:
        with Image.open(path) as im:
            im = im.convert("L")
            if im.size != (size, size):
                im = im.resize((size, size), Image.BILINEAR)
            arr = np.asarray(im, dtype=np.float32) / 255.0
    except (OSError, ValueError) as err:
        raise OSError(f"cannot read cached image {path}: {err}") from err
    return torch.from_numpy(arr)[None]


# The report texts a dataset can train on (schema.py); rows are selected the same way for both.
# The report texts a dataset can train on. ``report_raw_sections`` is derived, not stored: the
# FINDINGS and IMPRESSION sections of the raw report as they came (headers and everything
# outside those sections dropped, the noise inside them kept): the cleaning ablation's raw arm,
# so that both arms carry the same sections and differ only by the rewriting.
REPORT_COLUMNS = ("report_clean", "report_raw", "report_raw_sections")


def report_texts(rows: pd.DataFrame, column: str) -> pd.Series:
    """The report texts of ``rows`` for ``column`` (one of :data:`REPORT_COLUMNS`)."""
    if column == "report_raw_sections":
        return rows["report_raw"].fillna("").map(lambda t: format_report(*report_body(t)))
    return rows[column]


def task_texts(frame: pd.DataFrame, task: str, report_column: str = "report_clean") -> pd.Series:
    """The text each row trains ``task`` on: ``report_column`` (:func:`report_texts`), except
    for generation where the row has a generation prompt of its own (the optional
    ``report_gen`` column, ``schema``: the LLaVA-Rad annotated prompt, used verbatim). Missing
    texts are ""."""
    texts = report_texts(frame, report_column).fillna("").astype(str)
    if task == "gen" and GEN_TEXT_COLUMN in frame.columns:
        prompt = frame[GEN_TEXT_COLUMN].fillna("").astype(str)
        texts = prompt.where(prompt != "", texts)
    return texts


class ReportImageDataset(torch.utils.data.Dataset):
    """Image-report pairs of one split (usable rows only: image, cleaned report, frontal).

    Args:
        frame: the processed table (``processed.parquet``).
        data_root: the folder ``image_path`` is relative to.
        tokenizer: the run's tokenizer.
        split: ``train`` / ``validate`` / ``test``.
        image_size: resolution returned (the stage's: 384/256/512 in the paper).
        task: ``und`` (adds an instruction prompt) or ``gen``.
        max_report_tokens: reports are truncated to this many tokens (the paper truncates
            texts to 512 characters for evaluation; training length is a memory knob); 0 keeps
            them whole.
        seed: picks each example's prompt template per epoch.
        report_column: ``report_clean`` (every stage), or for the cleaning ablation
            ``report_raw`` (the source's text as it came) or ``report_raw_sections`` (its
            FINDINGS and IMPRESSION sections, noise included: see :data:`REPORT_COLUMNS`).

    With the manifest's optional ``task`` column (``schema``: the paper's two annotation sets),
    only the rows of ``task``'s set are used (the others are counted as skipped), and a
    generation example's text is the row's ``report_gen`` when it has one (:func:`task_texts`).
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        data_root: Path,
        tokenizer: ReportTokenizer,
        split: str,
        image_size: int,
        task: str,
        max_report_tokens: int = 256,
        seed: int = 0,
        report_column: str = "report_clean",
    ) -> None:
        if task not in ("und", "gen"):
            raise ValueError(f"task must be 'und' or 'gen', got {task!r}")
        if report_column not in REPORT_COLUMNS:
            raise ValueError(
                f"report_column must be one of {REPORT_COLUMNS}, got {report_column!r}"
            )
        in_split = frame[frame["split"] == split]
        texts = task_texts(in_split, task, report_column)
        reasons = unusable_reason(in_split)
        if task == "gen" and GEN_TEXT_COLUMN in in_split.columns:
            # A row of the generation set only has no cleaned report: its prompt is report_gen.
            prompted = in_split[GEN_TEXT_COLUMN].fillna("") != ""
            reasons[(reasons == "no cleaned report") & prompted] = ""
        if TASK_COLUMN in in_split.columns:
            other = ~in_split[TASK_COLUMN].isin([task, "both"])
            reasons[other] = f"not in the {task} annotation set"  # the reason that decides
        skipped = ", ".join(f"{n} {r}" for r, n in reasons[reasons != ""].value_counts().items())
        if skipped:  # said, not silently dropped (notebook 01's rejects.csv lists the rest)
            print(
                f"{split}: {int((reasons != '').sum())} of {len(in_split)} rows not used "
                f"({skipped})"
            )
        keep = (reasons == "").to_numpy()
        rows = in_split[keep].reset_index(drop=True)
        if rows.empty:
            raise ValueError(
                f"no usable {split} rows (image + cleaned report + frontal view)"
                + (f"; skipped: {skipped}" if skipped else "")
            )
        self.rows, self.root, self.tokenizer = rows, Path(data_root), tokenizer
        self.image_size, self.task, self.seed = image_size, task, seed
        self.max_report_tokens = max_report_tokens
        self.report_ids = [
            ids[: max_report_tokens or None] for ids in tokenizer.encode_batch(texts[keep].tolist())
        ]

    def __len__(self) -> int:
        return len(self.rows)

    def image(self, index: int) -> Tensor:
        return load_image(self.root / self.rows.at[index, "image_path"], self.image_size)

    def example(self, index: int, epoch: int = 0) -> Example:
        prompt = []
        if self.task == "und":
            prompt = self.tokenizer.encode(training_prompt(self.seed, index, epoch))
        return Example(index, self.image(index), self.report_ids[index], prompt)

    def __getitem__(self, index: int) -> Example:
        return self.example(index)

    def images(self, indices: list[int] | None = None) -> Tensor:
        """(N, 1, H, W) stack of the given (default: all) images, for caching latents."""
        indices = range(len(self)) if indices is None else indices
        return torch.stack([self.image(i) for i in indices])
