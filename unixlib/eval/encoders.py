"""Image encoders for the generation metrics: trained reference encoders, or a local RadDino.

The paper measures generated images with RadDino features (FD, KD, PRDC) and a BioViL-T
image-text cosine (alignment). Without those weights (the default CPU / SynthCXR profile),
:func:`load_or_train` trains two small *reference encoders* once on the train split and caches
them in the run folder, so notebooks 05 and 06 measure with the same files:

    images (N,1,H,W) in [0,1] -> bilinear resize to S -> classifier  -> image_features (N,F)
                                                                     -> image_probs    (N,14)
                                                      -> contrastive -> image_embed    (N,E)
    reports -> run's tokenizer -> ids[:max_text_tokens] -> contrastive -> text_embed  (N,E)

The networks and their training loop (:mod:`unixlib.eval.encoder_nets`) share no weights with
UniX. A cache is reused only when its config and its training-data fingerprint (images as
trained on, labels, reports, tokenizer) both match. :func:`load_raddino` gives a local RadDino
the same ``image_features`` interface (:mod:`unixlib.eval.encoder_pretrained`, re-exported).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file, save_file
from sklearn.metrics import roc_auc_score
from torch import Tensor

from unixlib.config import shown
from unixlib.data.datasets import label_targets
from unixlib.data.schema import LABELS
from unixlib.data.text.tokenizer import ReportTokenizer
from unixlib.eval.encoder_nets import (
    ContrastiveModel,
    EncoderConfig,
    ImageBatch,
    ImageClassifier,
    as_image_batch,
    build_nets,
    pad_ids,
    train_nets,
)
from unixlib.eval.encoder_pretrained import PretrainedImageEncoder, load_raddino

__all__ = [
    "EncoderConfig",
    "PretrainedImageEncoder",
    "ReferenceEncoders",
    "alignment_scores",
    "encoder_quality",
    "load_or_train",
    "load_raddino",
    "recall_at_k",
    "train_reference_encoders",
]

WEIGHTS_FILE, META_FILE = "encoders.safetensors", "config.json"
EVAL_CHUNK = 256  # images / texts per forward pass at inference (bounds memory at 512 px)


def tokenizer_hash(tokenizer: ReportTokenizer) -> str:
    """sha256 of the vocabulary, merges and special ids (the text tower is tied to them)."""
    text = tokenizer.tokenizer.to_str() + json.dumps(tokenizer.special_ids, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def data_fingerprint(
    x: Tensor, y: Tensor, reports: Sequence[str], tokenizer: ReportTokenizer
) -> str:
    """sha256 of what training sees: resized images, targets, reports, tokenizer."""
    h = hashlib.sha256()
    for t in (x, y):
        h.update(str(tuple(t.shape)).encode())
        h.update(t.contiguous().numpy().tobytes())
    h.update("\x1e".join(reports).encode())
    h.update(tokenizer_hash(tokenizer).encode())
    return h.hexdigest()


class ReferenceEncoders:
    """The trained classifier and contrastive model, with numpy in/out for the metrics.

    Image inputs: (N, 1, H, W) or (N, H, W) tensors or arrays in [0, 1], any H = W.
    """

    def __init__(
        self,
        classifier: ImageClassifier,
        contrastive: ContrastiveModel,
        tokenizer: ReportTokenizer,
        cfg: EncoderConfig,
        info: dict[str, Any] | None = None,
    ) -> None:
        self.classifier, self.contrastive = classifier.eval(), contrastive.eval()
        self.tokenizer, self.cfg = tokenizer, cfg
        self.info = dict(info or {})  # fingerprint, losses, train_seconds, n_train
        self.name = f"reference CNN, trained on the train split ({cfg.image_size} px)"

    @torch.no_grad()
    def _images(self, fn: Callable[[Tensor], Tensor], images: ImageBatch, dim: int) -> np.ndarray:
        outs = [
            fn(as_image_batch(images[i : i + EVAL_CHUNK], self.cfg.image_size))
            for i in range(0, len(images), EVAL_CHUNK)
        ]
        return torch.cat(outs).numpy() if outs else np.zeros((0, dim), np.float32)

    def image_features(self, images: ImageBatch) -> np.ndarray:
        """(N, feature_dim) float32 penultimate classifier features (for FD / KD / PRDC)."""
        return self._images(self.classifier.features, images, self.cfg.feature_dim)

    def image_probs(self, images: ImageBatch) -> np.ndarray:
        """(N, 14) float32 sigmoid probabilities in LABELS order."""
        return self._images(lambda x: self.classifier(x).sigmoid(), images, len(LABELS))

    def image_embed(self, images: ImageBatch) -> np.ndarray:
        """(N, embed_dim) float32 unit-norm contrastive image embeddings."""
        return self._images(self.contrastive.embed_images, images, self.cfg.embed_dim)

    @torch.no_grad()
    def text_embed(self, texts: Sequence[str]) -> np.ndarray:
        """(N, embed_dim) float32 unit-norm contrastive text embeddings ("" is allowed)."""
        ids = [r[: self.cfg.max_text_tokens] for r in self.tokenizer.encode_batch(list(texts))]
        outs = [
            self.contrastive.embed_texts(*pad_ids(ids[i : i + EVAL_CHUNK], self.tokenizer.pad))
            for i in range(0, len(ids), EVAL_CHUNK)
        ]
        return torch.cat(outs).numpy() if outs else np.zeros((0, self.cfg.embed_dim), np.float32)

    def save(self, directory: Path) -> None:
        """``encoders.safetensors`` + ``config.json`` (cfg, tokenizer hash, info); the json is
        written last, so an interrupted save is never taken for a valid cache."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {f"classifier.{k}": v for k, v in self.classifier.state_dict().items()}
        state |= {f"contrastive.{k}": v for k, v in self.contrastive.state_dict().items()}
        save_file({k: v.detach().contiguous() for k, v in state.items()}, directory / WEIGHTS_FILE)
        meta = {"config": asdict(self.cfg), "tokenizer_sha256": tokenizer_hash(self.tokenizer)}
        (directory / META_FILE).write_text(json.dumps(meta | self.info, indent=1) + "\n")

    @classmethod
    def load(cls, directory: Path, tokenizer: ReportTokenizer) -> ReferenceEncoders:
        """Load what :meth:`save` wrote; ``tokenizer`` must be the one trained with."""
        directory = Path(directory)
        meta = _read_meta(directory)
        if meta is None or not (directory / WEIGHTS_FILE).is_file():
            raise FileNotFoundError(
                f"{directory} holds no saved reference encoders ({META_FILE} + {WEIGHTS_FILE})"
            )
        if meta.get("tokenizer_sha256") != tokenizer_hash(tokenizer):
            raise ValueError(f"the encoders in {directory} were trained with another tokenizer")
        cfg = EncoderConfig(**meta["config"])
        classifier, contrastive = build_nets(cfg, _vocab(tokenizer))
        state = load_file(directory / WEIGHTS_FILE)
        for prefix, net in (("classifier.", classifier), ("contrastive.", contrastive)):
            net.load_state_dict(
                {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
            )
        info = {k: v for k, v in meta.items() if k not in ("config", "tokenizer_sha256")}
        return cls(classifier, contrastive, tokenizer, cfg, info)


def _read_meta(directory: Path) -> dict[str, Any] | None:
    path = directory / META_FILE
    return json.loads(path.read_text()) if path.is_file() else None


# ---- training -------------------------------------------------------------------------------


def _train(
    x: Tensor,
    y: Tensor,
    reports: Sequence[str],
    tokenizer: ReportTokenizer,
    cfg: EncoderConfig,
    fingerprint: str,
) -> ReferenceEncoders:
    """Train both models on prepared (N, 1, S, S) images and (N, 14) targets; time it."""
    ids = [r[: cfg.max_text_tokens] for r in tokenizer.encode_batch(list(reports))]
    start = time.perf_counter()
    classifier, contrastive, losses = train_nets(x, y, ids, tokenizer.pad, _vocab(tokenizer), cfg)
    seconds = round(time.perf_counter() - start, 2)
    info = {"fingerprint": fingerprint, "n_train": len(x), "train_seconds": seconds}
    return ReferenceEncoders(classifier, contrastive, tokenizer, cfg, info | {"losses": losses})


def _vocab(tokenizer: ReportTokenizer) -> int:
    # Janus-Pro's pad id lies past its tokenizer file's vocabulary; the table must hold it.
    return max(tokenizer.vocab_size, tokenizer.pad + 1)


def _prepare(
    images: ImageBatch, labels: pd.DataFrame, reports: Sequence[str], cfg: EncoderConfig
) -> tuple[Tensor, Tensor]:
    if not len(images) == len(labels) == len(reports) > 1:  # BatchNorm needs 2 per batch
        raise ValueError(
            f"need as many (at least 2) images, label rows and reports; got "
            f"{len(images)}, {len(labels)}, {len(reports)}"
        )
    x = torch.cat(
        [
            as_image_batch(images[i : i + EVAL_CHUNK], cfg.image_size)
            for i in range(0, len(images), EVAL_CHUNK)
        ]
    )
    return x, label_targets(labels)  # (N, 1, S, S), (N, 14)


def train_reference_encoders(
    images: ImageBatch,
    labels: pd.DataFrame,
    reports: Sequence[str],
    tokenizer: ReportTokenizer,
    cfg: EncoderConfig,
) -> ReferenceEncoders:
    """Train the classifier (BCE on the 14 labels) and the contrastive model (SigLIP loss).

    Args:
        images: (N, 1, H, W) train-split images in [0, 1].
        labels: their LABELS columns (1 / 0 / -1 / NaN; -1 is trained as 1, NaN as 0).
        reports: their cleaned reports.
        tokenizer: the run's tokenizer (the text tower reads its ids).
        cfg: sizes, steps, seed.
    """
    x, y = _prepare(images, labels, reports, cfg)
    return _train(x, y, reports, tokenizer, cfg, data_fingerprint(x, y, reports, tokenizer))


def load_or_train(
    directory: Path,
    images: ImageBatch,
    labels: pd.DataFrame,
    reports: Sequence[str],
    tokenizer: ReportTokenizer,
    cfg: EncoderConfig,
) -> ReferenceEncoders:
    """The encoders cached in ``directory`` if trained with ``cfg`` on the same data (same
    fingerprint), else freshly trained and saved there. Prints which, in one line."""
    directory = Path(directory)
    x, y = _prepare(images, labels, reports, cfg)
    fingerprint = data_fingerprint(x, y, reports, tokenizer)
    meta = _read_meta(directory)
    if meta is None or not (directory / WEIGHTS_FILE).is_file():
        reason = "no cache"
    elif meta.get("config") != asdict(cfg):
        reason = "config changed"
    elif meta.get("fingerprint") != fingerprint:
        reason = "training data or tokenizer changed"
    else:
        try:
            enc = ReferenceEncoders.load(directory, tokenizer)
        except (RuntimeError, ValueError, OSError) as err:  # written by another code version
            reason = f"cache unreadable: {str(err).splitlines()[0]}"
        else:
            print(
                f"reference encoders: loaded from {shown(directory)} (trained on {enc.info['n_train']} "
                f"images in {enc.info['train_seconds']:.1f} s)"
            )
            return enc
    enc = _train(x, y, reports, tokenizer, cfg, fingerprint)
    enc.save(directory)
    print(
        f"reference encoders: trained in {enc.info['train_seconds']:.1f} s on {len(x)} "
        f"images ({reason}), saved to {shown(directory)}"
    )
    return enc


# ---- quality of the reference encoders (on the test split) ---------------------------------


def recall_at_k(sim: np.ndarray, k: int) -> float:
    """Share of rows whose diagonal entry ranks in the row's top k of (N, N) ``sim``.

    Rank = number of entries strictly above the diagonal one, so ties count in its favour:
    retrieving a report identical to the right one (templated normal reports) is a hit.
    """
    rank = (sim > np.diag(sim)[:, None]).sum(axis=1)  # (N,)
    return float((rank < k).mean())


def alignment_scores(
    enc: ReferenceEncoders, images: ImageBatch, texts: Sequence[str]
) -> np.ndarray:
    """(N,) cosine of each image with its own text (the alignment score, per image)."""
    return (enc.image_embed(images) * enc.text_embed(texts)).sum(axis=1)


def encoder_quality(
    enc: ReferenceEncoders, images: ImageBatch, labels: pd.DataFrame, reports: Sequence[str]
) -> tuple[pd.DataFrame, dict[str, float]]:
    """How good the reference encoders are, on held-out (test) pairs.

    Returns:
        per-class AUROC of ``image_probs`` against ``labels == 1`` (columns ``class``,
        ``n_pos``, ``auroc``; NaN where a class lacks positives or negatives), and retrieval
        among the N given pairs: ``i2t_r1``, ``i2t_r5``, ``t2i_r1``, ``t2i_r5``, chance levels
        ``chance_r1`` = 1/N and ``chance_r5`` = 5/N, and the mean cosine of matched
        (``cos_matched``) and of mismatched pairs (``cos_unmatched``), the scale on which to
        read an alignment score.
    """
    probs = enc.image_probs(images)  # (N, 14)
    positive = labels[list(LABELS)].to_numpy(dtype=np.float64, na_value=np.nan) == 1  # (N, 14)
    rows = []
    for c, name in enumerate(LABELS):
        n_pos = int(positive[:, c].sum())
        both = 0 < n_pos < len(positive)
        auroc = roc_auc_score(positive[:, c], probs[:, c]) if both else float("nan")
        rows.append({"class": name, "n_pos": n_pos, "auroc": float(auroc)})
    sim = enc.image_embed(images) @ enc.text_embed(reports).T  # (N, N) image i vs text j
    n = len(sim)
    off = ~np.eye(n, dtype=bool)
    retrieval = {
        "i2t_r1": recall_at_k(sim, 1),
        "i2t_r5": recall_at_k(sim, 5),
        "t2i_r1": recall_at_k(sim.T, 1),
        "t2i_r5": recall_at_k(sim.T, 5),
        "chance_r1": 1 / n,
        "chance_r5": min(1.0, 5 / n),
        "cos_matched": float(np.diag(sim).mean()),
        "cos_unmatched": float(sim[off].mean()) if n > 1 else float("nan"),
    }
    return pd.DataFrame(rows, columns=["class", "n_pos", "auroc"]), retrieval
