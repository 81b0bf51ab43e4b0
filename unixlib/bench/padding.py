"""``padding_fraction_*``: how many token positions of training micro-batches are padding.

Two layouts of the same samples: *padded* (one sample per row, every row as long as the
longest) and *packed* (one sequence of every sample's real tokens, rounded up to a block
multiple: 128 on CUDA for flex_attention, none on the CPU). Two length distributions:

* ``smoke``: the smoke profile's own micro-batches, stages 1-3, built as training builds them
  (``build_source(...).micro_batch``) from the run's ``data/`` (or, when that is missing, a
  small SynthCXR set made in a temporary folder as the tests make theirs);
* ``paper``: the paper's shapes (576 ViT tokens in stage 1, 256 / 1,024 latent tokens in stages
  2 / 3, per-GPU micro-batches of the ``paper`` profile) with report lengths drawn from the IU
  X-ray reports of ``../shared/data``, tokenised by the repository's byte-level BPE and scaled
  so that the longest is the paper's cap of 512 tokens (no MIMIC-CXR reports are available here).
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence
from contextlib import redirect_stdout
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from unixlib.config import load as load_profile
from unixlib.config import project_path
from unixlib.data import processed
from unixlib.data.sources.prepare import prepare
from unixlib.data.text.clean import clean_manifest
from unixlib.data.text.iu_mesh import load_iu_reports
from unixlib.data.text.tokenizer import train_bpe
from unixlib.model.attention import FLEX_BLOCK
from unixlib.model.config import preset
from unixlib.train.batches import build_source
from unixlib.train.config import STAGE_NOTEBOOKS, stage_config

CUDA_BLOCK = FLEX_BLOCK  # packed sequences on CUDA are padded to a multiple of this
PAPER_MAX_REPORT = 512  # the paper profile's max_report_tokens
PROMPT_TOKENS = 24  # an instruction prompt (memory.PROMPT_TOKENS)
TEXT_DROPOUT = 0.1  # TrainConfig.text_dropout_prob
IU_CSV = "../shared/data/iu_reports/iu_reports_trainval.csv"
# (tokens of a sample besides its report, image tokens in it, micro-batch of the paper profile)
PAPER_STAGES = {
    1: (4 + 576 + PROMPT_TOKENS + 1, 16),  # [bos, boi] vit [eoi, prompt] [report, eos]
    2: (2 + 16 * 16, 32),  # [bos, report, boi] vae[16 x 16] (256 px, kl-f16)
    3: (2 + 32 * 32, 32),  # 512 px: 32 x 32 latents
}


def layout_positions(lengths: Sequence[int], packed: bool, multiple: int = 1) -> int:
    """Token positions of a micro-batch of samples of ``lengths`` real tokens: rows x longest
    (padded), or the sum rounded up to ``multiple`` (packed)."""
    if not lengths or min(lengths) < 1:
        raise ValueError(f"a micro-batch needs samples of >= 1 token, got {list(lengths)}")
    if packed:
        return -(-sum(lengths) // multiple) * multiple
    return len(lengths) * max(lengths)


def pooled_fraction(batches: Sequence[Sequence[int]], packed: bool, multiple: int = 1) -> float:
    """Padding share of all positions of ``batches`` (each a list of sample lengths)."""
    real = sum(sum(b) for b in batches)
    return 1.0 - real / sum(layout_positions(b, packed, multiple) for b in batches)


def stage_fractions(batches: Sequence[Sequence[int]]) -> dict[str, float]:
    """Padded, packed (CPU: no block) and packed-for-CUDA (block 128) padding fractions."""
    return {
        "padded": pooled_fraction(batches, False),
        "packed": pooled_fraction(batches, True),
        "packed_block128": pooled_fraction(batches, True, CUDA_BLOCK),
        "micro_batches": len(batches),
        "samples_per_micro_batch": len(batches[0]),
        "mean_tokens_per_sample": float(np.mean([x for b in batches for x in b])),
    }


def _synth_data(root: Path, n_train: int) -> tuple:
    """A small SynthCXR set processed as notebook 01 does (64 px, BPE of 1,024), in ``root``."""
    paths = processed.DataPaths(root)
    prepare("synth", root, image_size=64, n_train=n_train, n_validate=4, n_test=4, seed=0)
    clean_manifest(paths.manifest, paths.manifest_clean)
    data = processed.fill_labels(pd.read_parquet(paths.manifest_clean))
    processed.build_tokenizer(data, paths.tokenizer, vocab_size=1024)
    data.to_parquet(paths.processed)
    return processed.load_data(paths)


def _stage_lengths(data: tuple, n_batches: int) -> dict[int, list[list[int]]]:
    """Per smoke stage, the sample lengths of its first ``n_batches`` micro-batches."""
    profile = load_profile("smoke")
    out = {}
    for stage, nb in STAGE_NOTEBOOKS.items():
        cfg = stage_config(stage, profile.params[nb])
        size = {"image_size_und" if stage == 1 else "image_size_gen": cfg.image_size}
        mc = preset(profile.params["02_train_ar"]["preset"], **size)
        source = build_source(cfg, mc, data=data)
        source.gen_pixels = False  # lengths only
        out[stage] = [sample_lengths(source.micro_batch(s, 0).batch) for s in range(n_batches)]
    return out


def smoke_lengths(quick: bool) -> tuple[dict[int, list[list[int]]], str]:
    """Per smoke stage, the sample lengths of its first micro-batches (20; quick: 3), from the
    smoke run's data, or a temporary SynthCXR set (said on stderr) when it has none."""
    n_batches = 3 if quick else 20
    root = project_path(load_profile("smoke").params["02_train_ar"]["run_dir"]) / "data"
    if processed.DataPaths(root).processed.is_file():
        return _stage_lengths(processed.load_data(processed.DataPaths(root)), n_batches), str(root)
    n_train = 48 if quick else 400
    print(
        f"padding_fraction_smoke: no smoke data at {root} (run notebook 01 or `make reproduce`);"
        f" using a temporary SynthCXR set of {n_train} training images",
        file=sys.stderr,
    )
    # stdout carries one JSON row a line: data preparation's messages go to stderr
    with tempfile.TemporaryDirectory(prefix="bench_smoke_") as tmp, redirect_stdout(sys.stderr):
        data = _synth_data(Path(tmp) / "data", n_train)
        return _stage_lengths(data, n_batches), f"temporary SynthCXR ({n_train} training images)"


def sample_lengths(batch: object) -> list[int]:
    """Real tokens of each sample of a batch, either layout."""
    segments = getattr(batch, "segments", None)
    if segments is not None and getattr(batch, "packed", False):
        return [end - start for start, end in segments]
    return [int(n) for n in batch.lengths]


@lru_cache(maxsize=4)  # a BPE is trained per call: --gpu --dry asks for it several times
def iu_report_lengths(csv_path: str | Path = IU_CSV, cap: int = PAPER_MAX_REPORT) -> np.ndarray:
    """Token lengths of the IU X-ray reports (a byte-level BPE of 1,024 tokens trained on them,
    the smoke tokenizer's size), scaled so the longest is ``cap`` tokens, each at least 1."""
    path = project_path(csv_path)
    if not path.is_file():
        raise FileNotFoundError(
            f"padding_fraction_paper needs the IU X-ray reports CSV at {path} "
            "(../shared/data/iu_reports/; pass another path with --iu-reports)"
        )
    texts = load_iu_reports(path)
    tokenizer = train_bpe(texts, vocab_size=1024)
    raw = np.array([len(ids) for ids in tokenizer.encode_batch(texts)], dtype=float)
    return np.clip(np.round(raw * cap / raw.max()), 1, cap).astype(int)


def paper_lengths(
    report_lengths: np.ndarray, n_batches: int, seed: int = 0
) -> dict[int, list[list[int]]]:
    """Per paper stage, ``n_batches`` micro-batches of sample lengths (reports drawn at random)."""
    rng = np.random.default_rng(seed)
    out = {}
    for stage, (fixed, batch) in PAPER_STAGES.items():
        draws = rng.choice(report_lengths, size=(n_batches, batch))
        if stage > 1:  # text dropout for CFG (TrainConfig.text_dropout_prob): empty context
            draws[rng.random(draws.shape) < TEXT_DROPOUT] = 0
        out[stage] = [[fixed + int(r) for r in row] for row in draws]
    return out
