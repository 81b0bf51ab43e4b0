"""Train every ablation run (per seed) and measure it on the test split.

Each distinct run of :mod:`variants` is trained once per seed with ``train.loop.train`` into
``<run_dir>/ablations/<run>/seed<k>/`` (a run whose ``final/`` was written from the same
config, the same start weights and in the same precision is reused, so an interrupted notebook
continues where it stopped; a retrained stage 1 or 2 upstream, or another CPU resolving
``mixed_precision: auto`` differently, trains it again: :func:`fingerprint`). Measurements reuse
notebook 05's pieces: the rule labeler's F1, the reference encoders (cached by 05 in
``<run_dir>/eval/reference_encoders``), FD/KD on their features, image-text alignment and
finding faithfulness. Reports depend only on the understanding side's weights, so they are
written once per distinct set of those weights (hashed), not once per variant.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from unixlib.config import project_path
from unixlib.config.device import resolve_device
from unixlib.eval import baselines, generation, image_eval, report_eval
from unixlib.experiments.ablations.variants import Variant, run_config, runs
from unixlib.experiments.evaluation import Encoders, EvalInputs, EvalSettings, labeler_of
from unixlib.experiments.evaluators import sample_autocast
from unixlib.experiments.samples import generate_images, generate_reports
from unixlib.model.unix import UniX
from unixlib.train import precision
from unixlib.train.checkpoint import file_sha256
from unixlib.train.config import TrainConfig
from unixlib.train.launch import read_metrics, run_stage
from unixlib.train.loop import train
from unixlib.train.setup import group_of

# The F1 convention of the ablation tables (PAPER.md Table 5 matches the paper's Table 2 UniX
# row with uncertain findings counted as positive): micro/macro over the 14 classes.
F1_COLUMNS = {"micro_f1": "micro14_upos", "macro_f1": "macro14_upos"}
UND_GROUPS = ("vision", "connector", "und")


@dataclass
class TrainedRun:
    """One trained run: where it is, and what its training cost."""

    cfg: TrainConfig
    final_dir: Path
    seconds: float  # wall time of the training (0 when reused)
    step_seconds: float  # median optimizer-step time from metrics.jsonl
    reused: bool


def _step_seconds(run_dir: Path) -> float:
    """Median optimizer-step time of a run (NaN for a run logged before ``step_seconds``)."""
    metrics = read_metrics(run_dir)
    return float(metrics["step_seconds"].median()) if "step_seconds" in metrics else float("nan")


FINGERPRINT_FILE = "ablation_fingerprint.json"


def fingerprint(cfg: TrainConfig) -> dict:
    """What a finished ablation run was trained from: its config, the SHA-256 of each of the
    start model's weight files (the ``init_from`` path alone would not see a stage retrained
    upstream) and the precision ``mixed_precision`` resolves to on this machine."""
    start = project_path(cfg.init_from) if cfg.init_from else None
    weights = sorted(start.glob("*.safetensors")) if start else []
    device = resolve_device(cfg.device)
    return {
        "config": json.loads(json.dumps(cfg.to_dict())),
        "start_weights_sha256": {p.name: file_sha256(p) for p in weights} or None,
        "precision": precision.describe(cfg.mixed_precision, device),
    }


def measurement_labeler(s: EvalSettings) -> report_eval.Labeler:
    """Notebook 06's labeler: notebook 05's (CheXbert when the settings name its files, else
    the rule labeler; ``evaluation.labeler_of``), labelling each distinct text once."""
    return report_eval.memoized(labeler_of(s)[0])


def train_runs(
    variants: list[Variant],
    recipes: dict[int, dict],
    run_dir: str,
    seeds: list[int],
    batch_size: int,
    nproc: int = 1,
) -> dict[tuple[str, int], TrainedRun]:
    """Train every distinct run of ``variants`` for every seed (``recipes``: stage -> flat
    TrainConfig parameters, as notebooks pass them to ``stage_config``; ``nproc`` > 1 hands
    each run to torchrun, as notebooks 02-04 do)."""
    out = {}
    for seed in seeds:
        for name, v in runs(variants).items():
            cfg = run_config(v, recipes[v.stage], run_dir, seed, batch_size)
            where = project_path(cfg.run_dir)
            final = where / "final"
            saved = where / FINGERPRINT_FILE
            wanted = fingerprint(cfg)
            reuse = (
                (final / "model.safetensors").is_file()
                and saved.is_file()
                and json.loads(saved.read_text()) == wanted
            )
            t0 = time.perf_counter()
            if reuse:
                print(f"{name} seed {seed}: reusing {final}")
            else:
                print(f"{name} seed {seed}: {v.label} ({cfg.steps} steps, batch {cfg.batch_size})")
                if nproc > 1:
                    run_stage(cfg, nproc=nproc)
                else:  # no per-step bar: eleven of them would flood the notebook
                    train(cfg, progress=False)
                saved.write_text(json.dumps(wanted, indent=2))
            out[(name, seed)] = TrainedRun(
                cfg, final, 0.0 if reuse else time.perf_counter() - t0, _step_seconds(where), reuse
            )
    return out


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
    """Scores models on the test rows of ``inputs`` with notebook 05's measures.

    The real-image features, probabilities and the references' text embeddings are computed
    once; reports are memoised by :func:`und_fingerprint`.
    """

    def __init__(self, inputs: EvalInputs, encoders: Encoders, s: EvalSettings) -> None:
        self.inputs, self.encoders, self.s = inputs, encoders, s
        real = inputs.images("test", s.encoder.image_size, s.n_test)
        self.real_feats = encoders.feats(self._feature_images("test"))
        self.real_probs = encoders.reference.image_probs(real)
        self.text = encoders.reference.text_embed(inputs.prompts)
        self.val_feats = encoders.feats(self._feature_images("validate"))
        self._reports: dict[str, list[str]] = {}
        self.labeler = measurement_labeler(s)

    def _feature_images(self, split: str) -> torch.Tensor:
        """Real images for the image features, read at ``real_image_size`` when set (notebook
        06 sets it to the arms' generation size), so that with RadDino they pass no smaller
        bottleneck than the generated images (``evaluators.feature_image_size``)."""
        s = self.s
        size = s.real_image_size or s.encoder.image_size
        return self.inputs.images(split, size, s.n_test if split == "test" else 0)

    def f1(self, texts: list[str]) -> dict[str, float]:
        scores = report_eval.score_methods(self.inputs.references, {"m": texts}, self.labeler)
        return {k: float(scores.at["m", col]) for k, col in F1_COLUMNS.items()}

    def reports(self, model: UniX) -> list[str]:
        key = und_fingerprint(model)
        if key not in self._reports:
            size = model.config.image_size_und
            images = self.inputs.images("test", size, self.s.n_test)
            with sample_autocast(self.s.sample_dtype, next(model.parameters()).device):
                self._reports[key] = generate_reports(
                    model,
                    images,
                    self.inputs.tokenizer,
                    self.s.max_new_tokens,
                    batch_size=self.s.batch_size,
                )
        return self._reports[key]

    def images(self, model: UniX, reports: list[str]) -> np.ndarray:
        """Images of ``reports`` at the model's size, with its sampler and the evaluation's
        sampler overrides."""
        s = self.s
        model.config.with_sampler(s.sampler)
        with sample_autocast(s.sample_dtype, next(model.parameters()).device):
            return generate_images(
                model,
                reports,
                self.inputs.tokenizer,
                seed=s.seed,
                batch_size=s.batch_size,
                max_report_tokens=s.max_report_tokens,
            )

    def image_scores(self, images: np.ndarray) -> dict[str, float]:
        """FD, KD (vs real test), alignment, and finding faithfulness (0 chance, 1 real)."""
        feats = self.encoders.feats(images)
        kd, _ = generation.kernel_distance(
            self.real_feats, feats, self.s.kd_subsets, seed=self.s.seed
        )
        emb = self.encoders.reference.image_embed(images)
        return {
            "fd": generation.frechet_distance(self.real_feats, feats),
            "kd": kd,
            "alignment": generation.alignment_score(emb, self.text),
            "faithfulness": self.faithfulness(self.encoders.reference.image_probs(images)),
        }

    def faithfulness(self, probs: np.ndarray) -> float:
        classes = image_eval.FAITHFULNESS_CLASSES
        labels = self.inputs.labels
        gen = generation.faithfulness(probs, labels, classes)
        real = generation.faithfulness(self.real_probs, labels, classes)
        summary = generation.faithfulness_summary(gen, real, real)
        return image_eval.mean_fraction(summary, classes)

    def baselines(self, start: UniX, start_name: str) -> pd.DataFrame:
        """Rows of what trivial methods get on the same rows: F1 of the most frequent and the
        retrieved training report; FD/KD of real validation images (the floor); the ablations'
        start model as it is (before any ablation training); alignment and faithfulness of its
        images from shuffled reports (chance)."""
        train = self.inputs.split_rows("train")
        reports = train["report_clean"].tolist()
        size = self.s.encoder.image_size
        ref = self.encoders.reference
        retrieved = baselines.retrieval_reports(
            ref.image_features(self.inputs.images("train", size)),
            reports,
            ref.image_features(self.inputs.images("test", size, self.s.n_test)),
        )
        n = len(self.inputs.references)
        rows = [
            {
                "label": "baseline: most frequent report",
                **self.f1([baselines.most_frequent_report(reports)] * n),
            },
            {"label": "baseline: retrieval (nearest image)", **self.f1(retrieved)},
        ]
        kd, _ = generation.kernel_distance(
            self.real_feats, self.val_feats, self.s.kd_subsets, seed=self.s.seed
        )
        real_val = generation.frechet_distance(self.real_feats, self.val_feats)
        rows.append({"label": "baseline: real validation images", "fd": real_val, "kd": kd})
        own = self.image_scores(self.images(start, self.inputs.prompts))
        rows.append(
            {
                "label": f"baseline: {start_name}, no ablation training",
                **self.f1(self.reports(start)),
                **own,
            }
        )
        shuffled = baselines.shuffled_reports(self.inputs.prompts, self.s.seed)
        scores = self.image_scores(self.images(start, shuffled))
        rows.append(
            {
                "label": f"baseline: {start_name} from shuffled reports",
                "alignment": scores["alignment"],
                "faithfulness": scores["faithfulness"],
            }
        )
        return pd.DataFrame(rows)


def measure(
    variants: list[Variant],
    trained: dict[tuple[str, int], TrainedRun],
    measurer: Measurer,
    device: str = "auto",
) -> pd.DataFrame:
    """One row per (variant, seed): F1 (always), image scores (arms that draw), parameters,
    step time. Columns: study, label, run, seed, micro_f1, macro_f1, fd, kd, alignment,
    faithfulness, parameters, parameters_trained, step_seconds, train_seconds."""
    dev = resolve_device(device)
    by_run = {}
    for (name, seed), run in trained.items():
        model = UniX.from_pretrained(run.final_dir).to(dev).eval()
        v = next(x for x in variants if x.run == name)
        row = {
            "run": name,
            "seed": seed,
            **measurer.f1(measurer.reports(model)),
            **parameter_summary(model, run.cfg.trainable),
            "step_seconds": run.step_seconds,
            "train_seconds": run.seconds,
        }
        if v.draws:
            row.update(measurer.image_scores(measurer.images(model, measurer.inputs.prompts)))
        by_run[(name, seed)] = row
        del model
    rows = [
        {"study": v.study, "label": v.label, **row}
        for v in variants
        for (name, _), row in by_run.items()
        if name == v.run
    ]
    return pd.DataFrame(rows)


def load_model(path: str | Path, device: str = "auto") -> UniX:
    return UniX.from_pretrained(project_path(path)).to(resolve_device(device)).eval()


def loss_curves(trained: dict[tuple[str, int], TrainedRun], names: list[str]) -> pd.DataFrame:
    """metrics.jsonl of the named runs, stacked: run, seed, step, flow, repa, ce."""
    frames = []
    for (name, seed), run in trained.items():
        if name in names:
            m = read_metrics(run.cfg.run_dir)[["step", "ce", "flow", "repa"]]
            frames.append(m.assign(run=name, seed=seed))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def as_int_seeds(seeds: list | tuple) -> list[int]:
    """Seeds from a notebook parameter: a non-empty list of ints (else a TypeError)."""
    if isinstance(seeds, int) or not seeds or not all(isinstance(x, int) for x in seeds):
        raise TypeError(f"seeds must be a non-empty list of ints, got {seeds!r}")
    return list(seeds)
