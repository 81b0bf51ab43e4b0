"""The evaluation of one run, step by step: what notebook 05 and ``python -m unixlib evaluate``
both call.

    load_inputs            the test split (references, labels, images), train/validation images,
                           and Table 2's rows (the same test rows, or the paper's own
                           understanding test set when notebook 01 wrote one)
    build_encoders         reference encoders trained on the train split (cached), or local weights
    understanding          reports of the model and of the baselines -> Table 2, NLG, per-class F1
    generate_sets          images of the stage-2 / stage-3 models, shuffled and unconditional
    generation             Table 3, Table 4, finding faithfulness

(``outputs.py`` writes what these return.)

Everything is computed on the same test rows in the same run, so every model number stands
beside its baselines. One exception, as in the paper: with the official release's
``test_data.json`` (``release-eval``; ``data/sources/understanding_test.py``) Table 2 is on
those 2,365 pairs, each image prompted with its own instruction and judged against its own
reference, while Tables 3-4 stay on the LLaVA-Rad annotation test split. Otherwise Table 2's
rows are the test rows, prompted with ``EVAL_PROMPT`` and judged against their cleaned reports.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from unixlib.config import project_path, stage_dir
from unixlib.config.device import resolve_device
from unixlib.config.progress import bar
from unixlib.data.datasets import ReportImageDataset, load_image, task_texts
from unixlib.data.processed import DataPaths, cleaning_note, load_processed
from unixlib.data.schema import LABELS
from unixlib.data.sources.letterbox import RELEASE_CANVAS
from unixlib.data.text.prompts import EVAL_PROMPT
from unixlib.data.text.tokenizer import ReportTokenizer
from unixlib.eval import baselines, image_eval, report_eval
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
from unixlib.experiments import evaluators, generation_tables, understanding_tables
from unixlib.experiments.rejects import Rejects, readable_rows
from unixlib.experiments.samples import generate_images, generate_reports
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

    def feats(self, images: np.ndarray | torch.Tensor) -> np.ndarray:
        """(N, F) features of (N, H, W) or (N, 1, H, W) images in [0, 1]."""
        return self.features.image_features(images)


def build_encoders(inputs: EvalInputs, s: EvalSettings) -> Encoders:
    """Reference encoders trained once on the train split and cached in
    ``<run_dir>/eval/reference_encoders`` (the same files for notebooks 05 and 06)."""
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
    test_images = inputs.images("test", size, s.n_test)
    quality, retrieval = encoder_quality(enc, test_images, inputs.labels, inputs.references)
    resize = s.raddino_resize or None  # CheXGenBench's 299 px bottleneck, for every image
    features = load_raddino(Path(s.raddino_dir), resize_first=resize) if s.raddino_dir else enc
    return Encoders(enc, features, quality, retrieval)


def understanding(
    model: UniX, inputs: EvalInputs, encoders: Encoders, s: EvalSettings
) -> dict[str, object]:
    """Reports of the model and the three baselines for every image of Table 2's rows
    (``inputs.und``: each prompted with its row's instruction), and their tables."""
    t0 = time.perf_counter()
    und = inputs.und
    references, prompts = und["reference"].tolist(), und["prompt"].tolist()
    with evaluators.sample_autocast(s.sample_dtype, model):
        written = generate_reports(
            model,
            inputs.und_images(model.config.image_size_und, s.und_preprocess),
            inputs.tokenizer,
            s.max_new_tokens,
            prompt=prompts,
            batch_size=s.batch_size,
        )
    train = inputs.split_rows("train")
    train_reports = train["report_clean"].tolist()
    size = s.encoder.image_size
    retrieved = baselines.retrieval_reports(
        encoders.reference.image_features(inputs.images("train", size)),
        train_reports,
        encoders.reference.image_features(inputs.und_images(size)),
    )
    n = len(references)
    methods = {
        MODEL: written,
        ALWAYS: [baselines.most_frequent_report(train_reports)] * n,
        RANDOM: baselines.random_reports(train_reports, n, s.seed),
        RETRIEVAL: retrieved,
    }
    kinds = {name: ("model" if name.startswith("UniX") else "baseline") for name in methods}
    labeler, labeler_name = labeler_of(s)
    label = report_eval.memoized(labeler)  # each distinct text labelled once, for every table
    scores = report_eval.score_methods(references, methods, label)
    rows = report_eval.report_rows(references, methods, label)
    r = s.resampling
    table2, quoted = understanding_tables.table2(rows, kinds, labeler_name, r)
    baseline_names = [m for m in methods if kinds[m] == "baseline"]
    comparisons, verdicts = understanding_tables.compare(rows, MODEL, baseline_names, r=r)
    annotator = evaluators.radgraph_annotator(s)
    radgraph = evaluators.radgraph_f1(annotator, references, methods) if annotator else {}
    return {
        "methods": methods,  # name -> one report per row of inputs.und
        "scores": scores,  # every number on the whole test set (fractions)
        "rows": rows,  # per-study labels and scores (what the intervals resample)
        "table2": table2,
        "table2_quoted": quoted,
        "comparisons": comparisons,
        "verdicts": verdicts,
        "nlg": understanding_tables.nlg_table(rows, scores, kinds, r, radgraph),
        "radgraph": radgraph,  # method -> (N,) RadGraph F1 per row ({} without its weights)
        "per_class": understanding_tables.per_class_f1(rows, r),
        "labeler": labeler_name,
        "test_set": inputs.und_set,
        "seconds": time.perf_counter() - t0,
    }


def generate_sets(
    models: dict[int, UniX], inputs: EvalInputs, s: EvalSettings
) -> dict[str, np.ndarray]:
    """(N, H, W) images per set, row i made for test row i: each stage's model from the test
    rows' generation prompts (``inputs.prompts``; at the size and with the sampler of its
    checkpoint); the last stage's from shuffled prompts and unconditionally. With
    ``generated_pixels="release"`` the sets also keep the release's 8-bit RGB
    (:class:`evaluators.ImageSets`)."""
    if s.generated_pixels not in evaluators.GENERATED_PIXELS:
        raise ValueError(f"generated_pixels must be one of {evaluators.GENERATED_PIXELS}")
    kw = dict(seed=s.seed, batch_size=s.batch_size, max_report_tokens=s.max_report_tokens)
    kw["release_pixels"] = s.generated_pixels == "release"
    sets = evaluators.ImageSets()  # gray, and the release's 8-bit RGB when asked for
    last = models[max(models)]
    with evaluators.sample_autocast(s.sample_dtype, last):
        for stage, model in models.items():
            images = generate_images(model, inputs.prompts, inputs.tokenizer, **kw)
            sets.add(f"UniX stage {stage}", images)
        shuffled = baselines.shuffled_reports(inputs.prompts, s.seed)
        sets.add(SHUFFLED, generate_images(last, shuffled, inputs.tokenizer, **kw))
        # Without a report the conditional and unconditional velocities are the same forward
        # ([bos, boi] either way), so guidance is the identity: scale 1 gives the same images
        # at half the cost.
        blank = [""] * len(inputs.prompts)
        uncond = generate_images(last, blank, inputs.tokenizer, cfg_scale=1.0, **kw)
        sets.add(UNCONDITIONAL, uncond)
    return sets


def generation(
    sets: dict[str, np.ndarray], inputs: EvalInputs, encoders: Encoders, s: EvalSettings
) -> dict[str, object]:
    """Tables 3 and 4, the real-image reference, the paired comparisons and finding
    faithfulness for the generated sets, against the real test images of the same rows (read
    for the features at :func:`evaluators.feature_image_size`: no smaller than the generated)."""
    size = s.encoder.image_size
    real = inputs.images("test", size, s.n_test)
    res = {name: images.shape[-1] for name, images in sets.items()}  # generated size, px
    feature_size = evaluators.feature_image_size(s, encoders.features, res)
    real_features_in = inputs.images("test", feature_size, s.n_test)
    # the pretrained encoders read the generations as the release saved them, when it did
    scored = {k: getattr(sets, "rgb", {}).get(k, v) for k, v in sets.items()}
    pretrained = isinstance(encoders.features, PretrainedImageEncoder)
    feature_in = scored if pretrained else sets
    feats = {k: encoders.feats(v) for k, v in bar(feature_in.items(), desc="features")}
    real_feats = encoders.feats(real_features_in)
    bio = evaluators.biovil(s)
    if bio is not None:  # the paper's alignment: BioViL-T, CheXGenBench's per-image rounding
        align = evaluators.biovil_alignment(
            bio, {**scored, REAL_TEST: real_features_in}, inputs.prompts
        )
    else:
        text = encoders.reference.text_embed(inputs.prompts)
        embeds = {k: encoders.reference.image_embed(v) for k, v in sets.items()}
        embeds[REAL_TEST] = encoders.reference.image_embed(real)
        align = {k: image_eval.alignment_rows(e, text) for k, e in embeds.items()}
    last = max(k for k in sets if k.startswith("UniX stage"))
    name, r = encoders.features.name, s.resampling
    probs = {k: encoders.reference.image_probs(v) for k, v in sets.items()}
    probs[REAL_TEST] = encoders.reference.image_probs(real)
    faith = image_eval.faithfulness_table(probs, inputs.labels, last, REAL_TEST, SHUFFLED)
    sets_of = {"auroc_generated": last, "auroc_real": REAL_TEST, "auroc_shuffled": SHUFFLED}
    faith = generation_tables.faithfulness_intervals(
        faith, probs, inputs.labels, sets_of, s.resampling
    )
    mean_row = faith[faith["class"] == "mean"].iloc[0]
    table3, quoted3 = generation_tables.table3(real_feats, feats, align, res, name, s.n_shards, r)
    table4, quoted4 = generation_tables.table4(real_feats, feats, inputs.labels, res, name, r)
    pairs = [(last, SHUFFLED), (last, UNCONDITIONAL)]
    pairs += [(k, last) for k in sets if k.startswith("UniX stage") and k != last]
    comparisons, verdicts = generation_tables.compare(real_feats, feats, align, pairs, r)
    return {
        "table3": table3,
        "table3_quoted": quoted3,
        "real_reference": generation_tables.real_reference(real_feats, feats, seed=s.seed),
        "comparisons": comparisons,
        "verdicts": verdicts,
        "table4": table4,
        "table4_quoted": quoted4,
        "faithfulness": faith,
        "faithfulness_mean": image_eval.mean_fraction(faith, image_eval.FAITHFULNESS_CLASSES),
        # the headline: every class the classifier can judge on real images (the mean row)
        "faithfulness_all": float(mean_row["fraction_of_the_way"]),
        "faithfulness_all_interval": (
            float(mean_row["fraction_of_the_way_low"]),
            float(mean_row["fraction_of_the_way_high"]),
        ),
        "alignment": {k: float(v.mean()) for k, v in align.items()},
        "alignment_encoder": "BioViL-T" if bio is not None else evaluators.REFERENCE_ALIGNMENT,
        "real_image_size": feature_size,  # px the real images were read at for the features
        # Table 3's numbers per shard, their mean (the paper's) and pooled, both reported
        "shards": generation_tables.shard_table(real_feats, feats, s.n_shards, s.seed),
        "encoder": name,
        "features": {REAL_TEST: real_feats, **feats},  # (N, F) per set, row i = study i
    }
