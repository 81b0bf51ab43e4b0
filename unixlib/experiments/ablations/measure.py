"""Measure every ablation arm on the test studies with notebook 05's measures, keeping the
per-study data so that each arm's numbers carry intervals and each verdict a paired test.

Per arm and seed, :class:`StudyData` holds, row i = test study i: the labels of the report the
arm wrote for study i's image (Table 2's rows and prompts, as notebook 05), and for arms that
train the generation branch the features, the image-text cosine and the reference
classifier's probabilities of the image it drew from study i's report. The reference encoders
are notebook 05's (cached in ``<run_dir>/eval/reference_encoders``); reports depend only on
the understanding side's weights, so they are written once per distinct set of those weights.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from unixlib.config.device import resolve_device
from unixlib.data.schema import LABELS
from unixlib.eval import baselines, image_eval, report_eval
from unixlib.eval.understanding import binarize
from unixlib.experiments.ablations.runner import TrainedRun
from unixlib.experiments.ablations.variants import Variant
from unixlib.experiments.evaluation import Encoders, EvalInputs, EvalSettings, labeler_of
from unixlib.experiments.evaluators import sample_autocast
from unixlib.experiments.samples import generate_images, generate_reports
from unixlib.model.unix import UniX
from unixlib.train.setup import group_of

UND_GROUPS = ("vision", "connector", "und")


@dataclass
class StudyData:
    """One arm's outputs per test study (row i = study i); the image fields are None for arms
    that do not train the generation branch (their images are the start's), ``y_gen`` for an
    image-only baseline (its reports are not what it tests)."""

    y_gen: np.ndarray | None  # (N, 14) binary labels of its reports (uncertain as positive)
    feats: np.ndarray | None = None  # (N, F) encoder features of its images
    align: np.ndarray | None = None  # (N,) image-text cosine with the study's report
    probs: np.ndarray | None = None  # (N, 14) reference classifier probabilities


def und_fingerprint(model: UniX) -> str:
    """A hash of every weight the reports depend on (vision tower, connector, und branch)."""
    h = hashlib.sha256()
    for name, p in sorted(model.state_dict().items()):
        if group_of(name) in UND_GROUPS:
            h.update(name.encode())
            h.update(p.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def parameter_summary(model: UniX, trainable: tuple[str, ...]) -> dict[str, int]:
    """Parameters of the model without the frozen VAE, and of the groups the run trained."""
    total = trained = 0
    for name, p in model.named_parameters():
        group = group_of(name)
        if group is None:
            continue
        total += p.numel()
        trained += p.numel() if group in trainable else 0
    return {"parameters": total, "parameters_trained": trained}


class Measurer:
    """Per-study outputs of models on the test studies, with what every arm shares (the
    references' labels, the real images' features and probabilities) computed once.

    Reports are written for Table 2's rows with their own prompts (``inputs.und``, as notebook
    05) and labelled by the evaluation's labeler; images are drawn from the test reports of
    ``inputs.test`` and compared with its real images."""

    def __init__(self, inputs: EvalInputs, encoders: Encoders, s: EvalSettings) -> None:
        self.inputs, self.encoders, self.s = inputs, encoders, s
        real = inputs.images("test", s.encoder.image_size, s.n_test)
        # real images for the features at real_image_size (notebook 06: the arms' generation
        # size), so that with RadDino they pass no smaller bottleneck than the generated ones
        feature_size = s.real_image_size or s.encoder.image_size
        self.real_feats = encoders.fixed("features", inputs.images("test", feature_size, s.n_test))
        self.real_probs = encoders.fixed("probs", real)
        # generation prompts: the annotated prompts verbatim where the data has them
        self.text = encoders.reference.text_embed(inputs.prompts)
        labeler, self.labeler_name = labeler_of(s)
        self.label = report_eval.memoized(labeler)
        self.references = inputs.und["reference"].tolist()
        ref = report_eval.label_reports(self.references, self.label)
        self.y_ref = binarize(ref, "positive")  # (N_und, 14)
        self.label_array = inputs.labels[list(LABELS)].to_numpy(dtype=float)  # (N, 14)
        self._reports: dict[str, list[str]] = {}
        self.work = {"report sets": 0, "images": 0}  # what was sampled (the work summary)

    def reports(self, model: UniX) -> list[str]:
        key = und_fingerprint(model)
        if key not in self._reports:
            with sample_autocast(self.s.sample_dtype, model):
                self._reports[key] = generate_reports(
                    model,
                    self.inputs.und_images(model.config.image_size_und, self.s.und_preprocess),
                    self.inputs.tokenizer,
                    self.s.max_new_tokens,
                    prompt=self.inputs.und["prompt"].tolist(),
                    batch_size=self.s.batch_size,
                )
            self.work["report sets"] += 1
        return self._reports[key]

    def report_labels(self, texts: list[str]) -> np.ndarray:
        """(N, 14) binary labels of reports (uncertain as positive), memoised per text."""
        return binarize(report_eval.label_reports(texts, self.label), "positive")

    def images(self, model: UniX, reports: list[str]) -> np.ndarray:
        """Images of ``reports`` at the model's size, with its sampler and the evaluation's
        sampler overrides."""
        model.config.with_sampler(self.s.sampler)
        s = self.s
        self.work["images"] += len(reports)
        with sample_autocast(s.sample_dtype, model):
            return generate_images(
                model,
                reports,
                self.inputs.tokenizer,
                seed=s.seed,
                batch_size=s.batch_size,
                max_report_tokens=s.max_report_tokens,
            )

    def image_data(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Features, per-study image-text cosine and classifier probabilities of images made
        for the test studies, row by row."""
        ref = self.encoders.reference
        return {
            "feats": self.encoders.feats(images),
            "align": image_eval.alignment_rows(ref.image_embed(images), self.text),
            "probs": ref.image_probs(images),
        }

    def study_data(self, model: UniX, draws: bool) -> StudyData:
        data = StudyData(self.report_labels(self.reports(model)))
        if draws:
            for key, value in self.image_data(self.images(model, self.inputs.prompts)).items():
                setattr(data, key, value)
        return data

    def baselines(self, start: UniX, start_name: str) -> dict[str, StudyData]:
        """What trivial methods get on the same studies: the most frequent and the retrieved
        training report (F1); the ablations' start model as it is, before any ablation
        training; and its images from shuffled reports (chance for alignment and faithfulness)."""
        train = self.inputs.split_rows("train")
        reports = train["report_clean"].tolist()
        size = self.s.encoder.image_size
        retrieved = baselines.retrieval_reports(
            self.encoders.fixed("reference_features", self.inputs.images("train", size)),
            reports,
            self.encoders.fixed("reference_features", self.inputs.und_images(size)),
        )
        n = len(self.references)
        out = {
            "baseline: most frequent report": StudyData(
                self.report_labels([baselines.most_frequent_report(reports)] * n)
            ),
            "baseline: retrieval (nearest image)": StudyData(self.report_labels(retrieved)),
            f"baseline: {start_name}, no ablation training": self.study_data(start, True),
        }
        shuffled = baselines.shuffled_reports(self.inputs.prompts, self.s.seed)
        chance = self.image_data(self.images(start, shuffled))
        out[f"baseline: {start_name} from shuffled reports"] = StudyData(
            None,  # an image baseline: its reports would only repeat the start's F1
            align=chance["align"],
            probs=chance["probs"],
        )
        return out


def measure(
    variants: list[Variant],
    trained: dict[tuple[str, int], TrainedRun],
    measurer: Measurer,
    device: str = "auto",
) -> tuple[pd.DataFrame, dict[tuple[str, int], StudyData]]:
    """Every (run, seed): its per-study data, and one row of costs per (variant, seed)
    (``study, label, run, seed, parameters, parameters_trained, step_seconds,
    train_seconds``). The measures themselves come from the data (``ablations.stats``)."""
    dev = resolve_device(device)
    data, cost = {}, {}
    for (name, seed), run in trained.items():
        model = UniX.from_pretrained(run.final_dir).to(dev).eval()
        v = next(x for x in variants if x.run == name)
        data[(name, seed)] = measurer.study_data(model, v.draws)
        cost[(name, seed)] = {
            **parameter_summary(model, run.cfg.trainable),
            "step_seconds": run.step_seconds,
            "train_seconds": run.seconds,
        }
        del model
    rows = [
        {"study": v.study, "label": v.label, "run": name, "seed": seed, **cost[(name, seed)]}
        for v in variants
        for (name, seed) in trained
        if name == v.run
    ]
    return pd.DataFrame(rows), data
