"""What one run's evaluation reads (:mod:`.evaluation`): settings, models, test rows, encoders.

EvalSettings      every knob of notebook 05 / ``python -m unixlib evaluate``
load_models       the stage-1/2/3 checkpoints of the run (each with its chosen sampler)
load_inputs       the test split (references, labels, images), train/validation images and
                  Table 2's rows (the test rows, or the release's understanding test set)
labeler_of        the finding labeler: CheXbert when its weights are given, else our rules
build_encoders    reference encoders trained on the train split (cached), or local weights
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from unixlib.config import project_path, stage_dir
from unixlib.config.device import resolve_device
from unixlib.data.datasets import ReportImageDataset, load_image, task_texts
from unixlib.data.processed import DataPaths, cleaning_note, load_processed
from unixlib.data.schema import LABELS
from unixlib.data.sources.letterbox import RELEASE_CANVAS
from unixlib.data.text.prompts import EVAL_PROMPT
from unixlib.data.text.tokenizer import ReportTokenizer
from unixlib.eval.encoders import (
    EncoderConfig,
    PretrainedImageEncoder,
    ReferenceEncoders,
    encoder_quality,
    load_or_train,
    load_raddino,
)
from unixlib.eval.uncertainty import Resampling
from unixlib.eval.understanding import Labeler
from unixlib.experiments import evaluators
from unixlib.experiments.feature_cache import CACHE_SUBDIR, FeatureCache
from unixlib.experiments.rejects import Rejects, readable_rows
from unixlib.experiments.scale import describe_run
from unixlib.model.unix import UniX

REAL_TEST, REAL_VAL = "real (test)", "real (validation)"
SHUFFLED, UNCONDITIONAL = "shuffled reports", "unconditional"
ALWAYS, RANDOM, RETRIEVAL = "most frequent report", "random report", "retrieval (nearest image)"
MODEL = "UniX (this run)"


@dataclass
class EvalSettings:
    """The knobs of one evaluation (notebook 05's parameters).

    Image sizes and the sampler are not among them: they are read from the checkpoints
    (``UniXConfig``, their one home). ``sampler`` overrides the sampling settings on purpose
    (``{"sample_steps": 20}``), and every table that shows generated images says so.
    """

    run_dir: str = "papermill_runs/smoke"
    stages: tuple[int, ...] = (2, 3)  # the checkpoints whose images are evaluated; the last
    # one also writes Table 2's reports
    n_test: int = 0  # 0 = every usable test row
    max_new_tokens: int = 96
    max_report_tokens: int = 96  # generation prompts cut to this many ids (0: not cut)
    sampler: dict[str, Any] = field(default_factory=dict)  # UniXConfig sampler overrides
    batch_size: int = 64  # reports / images per generation batch
    n_shards: int = 4
    n_resamples: int = 1000  # bootstrap resamples of every interval (LLaVA-Rad: 500)
    seed: int = 0
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    raddino_dir: str = ""  # local RadDino (HF) directory: FD/KD/PRDC features instead
    chexbert_checkpoint: str = ""  # chexbert.pth, with a local bert-base-uncased directory:
    chexbert_bert_dir: str = ""  # label reports with CheXbert instead of the rule labeler
    # The other evaluators of the paper's protocol, and the release's feeding (evaluators.py):
    radgraph_model: str = ""  # radgraph.tar.gz or its folder, with the BERT folder it names:
    radgraph_bert_dir: str = ""  # RadGraph F1 (partial) in the NLG table
    biovil_dir: str = ""  # BiomedVLP-BioViL-T folder: Table 3's alignment (else our reference)
    raddino_resize: int = 299  # CheXGenBench: every image through 299 x 299 first (0: none)
    real_image_size: int = 0  # real images for the features, px; 0: the generated images' size
    und_preprocess: str = "cache"  # Table 2's images: "cache", or "release" (white letterbox)
    sample_dtype: str = "bf16"  # bf16 autocast as the release, or "fp32", or "auto"
    generated_pixels: str = "grey"  # the decoder's RGB averaged; "release": 8-bit RGB, scored so

    @classmethod
    def from_params(cls, p: dict) -> EvalSettings:
        """Settings from notebook 05's flat parameters (a profile's ``05_evaluate`` section)."""
        stage = int(p.get("stage", 3))
        if stage not in (2, 3):
            raise ValueError(
                f"stage must be 2 or 3 (a model with a generation branch), got {stage}"
            )
        encoder = EncoderConfig(
            image_size=p.get("encoder_image_size", EncoderConfig.image_size),
            steps=p.get("encoder_steps", EncoderConfig.steps),
            feature_dim=p.get("encoder_feature_dim", EncoderConfig.feature_dim),
            seed=p.get("seed", 0),
        )
        names = {f for f in cls.__dataclass_fields__} - {"stages", "encoder"}
        values = {k: p[k] for k in names if k in p}
        return cls(**values, stages=tuple(range(2, stage + 1)), encoder=encoder)

    @property
    def resampling(self) -> Resampling:
        """How every interval of the evaluation is drawn (resamples, seed)."""
        return Resampling(self.n_resamples, self.seed)


def load_models(s: EvalSettings, device: str = "auto") -> dict[int, UniX]:
    """stage -> the stage's ``final/`` model on ``device`` (eval mode), with the settings'
    sampler overrides applied to its config."""
    dev = resolve_device(device)
    out = {}
    for stage in s.stages:
        path = project_path(stage_dir(s.run_dir, stage)) / "final"
        model = UniX.from_pretrained(path).to(dev).eval()
        model.config.with_sampler(s.sampler)
        out[stage] = model
    return out


def sampler_note(model: UniX, s: EvalSettings) -> str:
    """What a caption says of the sampler: the checkpoint's settings, and the overrides."""
    c = model.config
    lo, hi = c.cfg_interval
    text = (
        f"{c.sample_steps} Euler grid points, CFG {c.cfg_scale:g} on t in ({lo:g}, {hi:g}], "
        f"time shift {c.sample_shift:g}"
    )
    overridden = ", ".join(sorted(s.sampler))
    return text + (f" ({overridden} set by the evaluation)" if overridden else " (as trained)")


@dataclass
class EvalInputs:
    """The evaluation's data, all in test-row order."""

    frame: pd.DataFrame
    tokenizer: ReportTokenizer
    root: Path
    test: pd.DataFrame  # the usable test rows evaluated
    references: list[str]  # their cleaned reports
    labels: pd.DataFrame  # their 14 labels (the dataset's: SynthCXR truth, MIMIC's CheXpert)
    und: pd.DataFrame = field(default_factory=pd.DataFrame)  # Table 2's rows (understanding_rows)
    und_set: str = "the test split"  # what they are, said in Table 2's caption
    scale: str = ""  # the run's data, resolution, model size and schedule (scale.RunScale)
    # The generation prompts of the test rows: the LLaVA-Rad annotated prompt, verbatim, where
    # the data has one (report_gen, as the release feeds it), else the cleaned report.
    prompts: list[str] = field(default_factory=list)
    cleaning: str = "rule-cleaned"  # how the reports were cleaned (cleaning.json), for captions
    rejects: Rejects = field(default_factory=Rejects)  # studies dropped: image unreadable
    _rows: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)
    _images: dict[tuple[str, int, int], torch.Tensor] = field(default_factory=dict, repr=False)

    def split_rows(self, split: str) -> pd.DataFrame:
        """The usable rows of a split, as the training datasets select them (said once); for
        ``test``, once :func:`load_inputs` has run, the evaluated rows."""
        if split not in self._rows:
            # train rows serve the baselines' reports and the reference encoders: the
            # understanding set; validation and test rows are images of the generation set
            task = "und" if split == "train" else "gen"
            data = ReportImageDataset(self.frame, self.root, self.tokenizer, split, 8, task)
            self._rows[split] = data.rows
        return self._rows[split]

    def images(self, split: str, size: int, n: int = 0) -> torch.Tensor:
        """(N, 1, size, size) images of a split's usable rows (the first ``n``; 0 = all),
        read once per (split, size, n) and kept."""
        rows = self.split_rows(split)
        n = n if n < len(rows) else 0  # every row, however it is asked for
        key = (split, size, n)
        if key not in self._images:
            paths = rows["image_path"].iloc[: n or len(rows)]
            self._images[key] = torch.stack([load_image(self.root / p, size) for p in paths])
        return self._images[key]

    def und_images(self, size: int, preprocess: str = "cache") -> torch.Tensor:
        """(N, 1, size, size) images of Table 2's rows (``und``), read once per size (the test
        rows' images when those are Table 2's rows); ``preprocess="release"``: (N, 1, 384,
        384) letterboxed from the original files as the release does (``evaluators``)."""
        if preprocess not in evaluators.UND_PREPROCESS:
            raise ValueError(f"und_preprocess must be one of {evaluators.UND_PREPROCESS}")
        if preprocess == "release":
            key = ("understanding (release)", RELEASE_CANVAS, 0)
            if key not in self._images:
                self._images[key] = evaluators.release_und_images(self.und)
            return self._images[key]
        if self.und["image_path"].tolist() == self.test["image_path"].tolist():
            return self.images("test", size, len(self.test))
        key = ("understanding", size, 0)
        if key not in self._images:
            paths = self.und["image_path"]
            self._images[key] = torch.stack([load_image(self.root / p, size) for p in paths])
        return self._images[key]


def load_inputs(s: EvalSettings, fail_fast: bool = False) -> EvalInputs:
    """The evaluation's data. A test study whose image cannot be read is dropped from every
    table and recorded in ``inputs.rejects`` (with ``fail_fast``: its error is raised)."""
    frame, tokenizer, paths = load_processed(project_path(s.run_dir))
    inputs = EvalInputs(frame, tokenizer, paths.root, frame.iloc[:0], [], frame.iloc[:0])
    inputs.rejects.fail_fast = fail_fast
    test = inputs.split_rows("test")
    test = (test.iloc[: s.n_test] if s.n_test else test).reset_index(drop=True)
    inputs.test = readable_rows(test, paths.root, s.encoder.image_size, inputs.rejects)
    if inputs.test.empty:
        raise ValueError(f"{s.run_dir}: no test study has a readable image ({len(test)} tried)")
    inputs._rows["test"] = inputs.test  # so every image of the test split is an evaluated row's
    inputs.references = inputs.test["report_clean"].tolist()
    inputs.prompts = task_texts(inputs.test, "gen").tolist()
    inputs.labels = inputs.test[list(LABELS)]
    inputs.und, inputs.und_set = understanding_rows(inputs.test, paths, s.n_test)
    if inputs.und["image_path"].tolist() != inputs.test["image_path"].tolist():  # own images
        n = len(inputs.und)
        inputs.und = readable_rows(inputs.und, paths.root, s.encoder.image_size, inputs.rejects)
        if len(inputs.und) < n:
            inputs.und_set += f"; {n - len(inputs.und)} pairs with an unreadable image dropped"
    if len(inputs.rejects):  # rejects.csv beside the tables lists them (evaluate_run)
        print(f"studies dropped from the tables, image unreadable: {len(inputs.rejects)}")
    inputs.scale = describe_run(s.run_dir).phrase()
    inputs.cleaning = cleaning_note(paths)["caption"]
    return inputs


def understanding_rows(
    test: pd.DataFrame, paths: DataPaths, n_test: int = 0
) -> tuple[pd.DataFrame, str]:
    """Table 2's rows (columns ``id, image_path, prompt, reference``) and their description:
    the paper's understanding test set when notebook 01 wrote ``understanding_test.parquet``
    (its first ``n_test`` pairs; 0 = all), else the evaluated test rows, each prompted with
    ``EVAL_PROMPT`` and judged against its cleaned report."""
    if paths.understanding_test.is_file():
        und = pd.read_parquet(paths.understanding_test)
        und = (und.iloc[:n_test] if n_test else und).reset_index(drop=True)
        return und, f"the paper's understanding test set (test_data.json, {len(und)} pairs)"
    und = pd.DataFrame(
        {
            "id": test["id"],
            "image_path": test["image_path"],
            "prompt": EVAL_PROMPT,
            "reference": test["report_clean"],
        }
    )
    return und.reset_index(drop=True), "the test split"


def labeler_of(s: EvalSettings) -> tuple[Labeler | None, str]:
    """CheXbert when the settings name its local files, else the project's rule labeler."""
    if s.chexbert_checkpoint:
        from unixlib.eval.chexbert import CheXbertLabeler

        return CheXbertLabeler(s.chexbert_checkpoint, s.chexbert_bert_dir), "CheXbert"
    return None, "project rule labeler"


@dataclass
class Encoders:
    """The reference encoders, and the image encoder whose features FD/KD/PRDC use."""

    reference: ReferenceEncoders
    features: ReferenceEncoders | PretrainedImageEncoder
    quality: pd.DataFrame  # per-class AUROC of the reference classifier on the test split
    retrieval: dict[str, float]  # recall@1/5 of the contrastive model on the test split
    cache: FeatureCache = field(default_factory=lambda: FeatureCache(None))

    def feats(self, images: np.ndarray | torch.Tensor) -> np.ndarray:
        """(N, F) features of (N, H, W) or (N, 1, H, W) images in [0, 1]."""
        return self.features.image_features(images)

    def fixed(self, kind: str, images: np.ndarray | torch.Tensor) -> np.ndarray:
        """An output of images that do not change within a run (real test or train images),
        through the run's feature cache: ``features`` (FD/KD), ``reference_features``
        (retrieval), ``probs`` (classifier) or ``embed`` (contrastive)."""
        if kind == "features":
            return self.cache.get(kind, self.features, self.feats, images)
        method = {"reference_features": "image_features", "probs": "image_probs"}.get(kind)
        compute = getattr(self.reference, method or "image_embed")
        return self.cache.get(kind, self.reference, compute, images)


def build_encoders(inputs: EvalInputs, s: EvalSettings, quality: bool = True) -> Encoders:
    """Reference encoders trained once on the train split and cached in
    ``<run_dir>/eval/reference_encoders`` (the same files for notebooks 05 and 06), with the
    run's feature cache (``feature_cache.py``). ``quality=False`` skips measuring them on the
    test split (``quality`` / ``retrieval`` left empty: notebook 06 does not show them)."""
    size = s.encoder.image_size
    train = inputs.split_rows("train")
    enc = load_or_train(
        project_path(s.run_dir) / "eval" / "reference_encoders",
        inputs.images("train", size),
        train[list(LABELS)].reset_index(drop=True),
        train["report_clean"].tolist(),
        inputs.tokenizer,
        s.encoder,
    )
    table, retrieval = pd.DataFrame(columns=["class", "n_pos", "auroc"]), {}
    if quality:
        test_images = inputs.images("test", size, s.n_test)
        table, retrieval = encoder_quality(enc, test_images, inputs.labels, inputs.references)
    resize = s.raddino_resize or None  # CheXGenBench's 299 px bottleneck, for every image
    features = load_raddino(Path(s.raddino_dir), resize_first=resize) if s.raddino_dir else enc
    cache = FeatureCache(project_path(s.run_dir) / CACHE_SUBDIR)
    return Encoders(enc, features, table, retrieval, cache)
