"""CheXbert (Smit et al., EMNLP 2020) report labeler from local weights, as a ``Labeler``.

Our own implementation, not the ``f1chexbert`` package. f1chexbert 0.0.2 (the only release;
requires torch>=1.8.1, transformers>=4.23.1, scikit-learn, numpy, appdirs, pandas, and imports
huggingface_hub) installs beside torch 2.13 without moving it, but cannot run offline from a
configured path: its constructor calls ``BertTokenizer.from_pretrained("bert-base-uncased")``
and ``AutoConfig.from_pretrained("bert-base-uncased")`` (hub names) and downloads
``chexbert.pth`` from StanfordAIMI/RRG_scorers into ``~/.cache/chexbert`` unless a file is
already there; it loads that file with ``strict=False`` (a wrong checkpoint passes silently)
and labels one report at a time.

**Model**, as in stanfordmlgroup/CheXbert ``src/models/bert_labeler.py`` (f1chexbert and the
UniX release's ``eval/und_metrics/chexbert.py`` build the same): BERT (bert-base-uncased) over
the tokenized report; the last hidden state of [CLS] goes through dropout (identity at
inference) and 14 linear heads, in CheXpert's condition order (= ``schema.LABELS``: enlarged
cardiomediastinum, cardiomegaly, lung opacity, lung lesion, edema, consolidation, pneumonia,
atelectasis, pneumothorax, pleural effusion, pleural other, fracture, support devices, no
finding). Heads 0-12 have 4 classes (0 blank, 1 positive, 2 negative, 3 uncertain); head 13,
No Finding, has 2 (0 blank, 1 positive). Each head's argmax maps to the project's label values
as CheXbert's ``label.py`` writes them: blank -> NaN, positive -> 1, negative -> 0, uncertain
-> -1 (``understanding.binarize`` then counts uncertain as 0 or as 1).

**Protocol of the paper's numbers** (the UniX release, ``eval/und_metrics/metrics_clinical.py``
and ``chexbert.py``, which follow LLaVA-Rad): each text is cut to its first 512 *characters*
(done by ``understanding.label_reports``), then stripped, newlines replaced by spaces and
stripped again (:func:`preprocess`; the release's two ``str.replace("\\s+", ...)`` calls are
literal-string replacements and change nothing), then tokenized by bert-base-uncased's
WordPiece tokenizer with [CLS]/[SEP]. A class is positive when its head says 1
("uncertain as negative") or 1 or 3 ("uncertain as positive"); blank and negative are 0.
Differences from f1chexbert, for the record: f1chexbert collapses runs of whitespace (the same
WordPiece tokens), cuts no characters but keeps at most 512 *tokens* (``ids[:511] + [SEP]``),
runs the model on ``[CLS] [SEP]`` for an empty report, and its F1 (``mode="rrg"``) counts
uncertain as positive only. We keep f1chexbert's 512-token cut as a guard (the release has none
and would fail on a 512-character text of more than 510 word pieces, which only punctuation
runs produce); blank reports never reach the model (``label_reports``: all NaN).

The checkpoint ``chexbert.pth`` is a ``torch.save`` dict whose ``"model_state_dict"`` has
keys ``module.bert.<BertModel keys>`` and ``module.linear_heads.<i>.weight/bias`` (it was
saved from ``nn.DataParallel``, hence ``module.``). Loading is strict, with one exception:
``bert.embeddings.position_ids`` / ``token_type_ids`` are constant index buffers that some
transformers versions saved and current ones do not; they are dropped if present.

``bert_dir`` is a local Hugging Face folder of bert-base-uncased with ``config.json`` and
tokenizer files (``vocab.txt`` or ``tokenizer.json``); nothing is downloaded.
:func:`check_chexbert` validates both without running the model (for the dry run).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from transformers import BertConfig, BertModel, BertTokenizerFast

from unixlib.data.schema import LABELS

MAX_TOKENS = 512  # BERT's limit; CheXbert keeps [CLS] + 510 pieces + [SEP]
N_CLASSES = 4  # blank / positive / negative / uncertain
# Head class index -> label value (CheXbert's label.py convention).
CLASS_VALUE: tuple[float, ...] = (math.nan, 1.0, 0.0, -1.0)
# Derived buffers (torch.arange / zeros) that older transformers stored in state dicts.
_IGNORABLE = ("bert.embeddings.position_ids", "bert.embeddings.token_type_ids")


class _CheXbertNet(nn.Module):
    """BERT + 14 linear heads on the [CLS] state; parameter names match the checkpoint."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.bert = BertModel(config)
        self.dropout = nn.Dropout(0.1)  # CheXbert's p; a no-op in eval mode
        hidden = config.hidden_size
        heads = [nn.Linear(hidden, N_CLASSES) for _ in range(len(LABELS) - 1)]
        heads.append(nn.Linear(hidden, 2))  # No Finding: blank / positive only
        self.linear_heads = nn.ModuleList(heads)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, 14) class index per head."""
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        cls = self.dropout(hidden[:, 0])
        return torch.stack([head(cls).argmax(dim=-1) for head in self.linear_heads], dim=1)


def preprocess(text: str) -> str:
    """The release's text cleaning before tokenization: strip, newlines -> spaces, strip."""
    return text.strip().replace("\n", " ").strip()


def _require_files(checkpoint: Path, bert_dir: Path) -> None:
    """FileNotFoundError that says what the labeler expects, before any loading."""
    if not checkpoint.is_file():
        raise FileNotFoundError(
            f"CheXbert checkpoint not found: {checkpoint} (expected chexbert.pth, a torch.save "
            "dict with 'model_state_dict', from stanfordmlgroup/CheXbert)"
        )
    if not (bert_dir / "config.json").is_file():
        raise FileNotFoundError(
            f"{bert_dir / 'config.json'} not found: bert_dir must be a local bert-base-uncased "
            "folder with config.json and vocab.txt or tokenizer.json"
        )
    if not any((bert_dir / f).is_file() for f in ("vocab.txt", "tokenizer.json")):
        raise FileNotFoundError(
            f"no tokenizer in {bert_dir}: expected vocab.txt or tokenizer.json (bert-base-uncased)"
        )


def _checkpoint_state(checkpoint: Path) -> dict[str, torch.Tensor]:
    """The checkpoint's state dict with the DataParallel ``module.`` prefix removed."""
    try:  # memory-mapped when the file is in torch's zip format: the dry run reads only names
        ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # the legacy (pre-zip) format cannot be mapped
        try:
            ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
        except Exception as err:  # unpickling errors of several types: say what the file is not
            raise ValueError(f"{checkpoint} is not a readable torch checkpoint: {err}") from err
    if not isinstance(ckpt, dict) or "model_state_dict" not in ckpt:
        raise ValueError(f"{checkpoint}: expected a dict with key 'model_state_dict'")
    return {k.removeprefix("module."): v for k, v in ckpt["model_state_dict"].items()}


def _check_keys(model: nn.Module, state: dict[str, torch.Tensor], source: Path) -> None:
    """Any missing, unexpected or mis-shaped key is a ValueError (model may be on meta)."""
    expected = model.state_dict()
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"{source} does not match the CheXbert model: missing keys {missing}, "
            f"unexpected keys {unexpected}"
        )
    for key, value in expected.items():
        if tuple(state[key].shape) != tuple(value.shape):
            raise ValueError(
                f"{source}: {key} has shape {tuple(state[key].shape)}, the model (config.json "
                f"of bert_dir) expects {tuple(value.shape)}"
            )


def _load_strict(model: nn.Module, state: dict[str, torch.Tensor], source: Path) -> None:
    """Load every parameter; any missing, unexpected or mis-shaped key is a ValueError."""
    state = {k: v for k, v in state.items() if k not in _IGNORABLE}
    _check_keys(model, state, source)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:  # shape mismatch: e.g. a different BERT size in bert_dir
        raise ValueError(f"{source}: {err}") from err


class CheXbertLabeler:
    """Callable ``texts -> DataFrame`` (``schema.LABELS`` columns, 1/0/-1/NaN)."""

    def __init__(
        self,
        checkpoint: str | Path,
        bert_dir: str | Path,
        device: str = "cpu",
        batch_size: int = 16,
    ) -> None:
        checkpoint, bert_dir = Path(checkpoint), Path(bert_dir)
        _require_files(checkpoint, bert_dir)
        config = BertConfig.from_pretrained(bert_dir, local_files_only=True)
        self.tokenizer = BertTokenizerFast.from_pretrained(bert_dir, local_files_only=True)
        self.max_tokens = min(MAX_TOKENS, config.max_position_embeddings)
        self.model = _CheXbertNet(config)
        _load_strict(self.model, _checkpoint_state(checkpoint), checkpoint)
        self.model.to(device).eval()
        self.device = device
        self.batch_size = batch_size

    @torch.no_grad()
    def classes(self, texts: Sequence[str]) -> np.ndarray:
        """(N, 14) head argmax (0 blank, 1 pos, 2 neg, 3 uncertain; No Finding 0/1)."""
        clean = [preprocess(t) for t in texts]
        out = np.zeros((len(clean), len(LABELS)), dtype=int)
        for start in range(0, len(clean), self.batch_size):
            enc = self.tokenizer(
                clean[start : start + self.batch_size],
                padding=True,
                truncation=True,
                max_length=self.max_tokens,
                return_tensors="pt",
            ).to(self.device)
            pred = self.model(enc["input_ids"], enc["attention_mask"])
            out[start : start + len(pred)] = pred.cpu().numpy()
        return out

    def __call__(self, texts: Sequence[str]) -> pd.DataFrame:
        values = np.asarray(CLASS_VALUE)[self.classes(texts)]
        return pd.DataFrame(values, columns=list(LABELS))


def check_chexbert(checkpoint: str | Path, bert_dir: str | Path) -> str:
    """Validate a CheXbert setup without running it; a one-line description, or a clear error.

    Checks the files, that the checkpoint loads (``weights_only``) as a dict with
    ``model_state_dict``, and that its key names and shapes are those of the model that
    ``bert_dir``'s ``config.json`` describes (built on the meta device: no weights allocated).
    """
    checkpoint, bert_dir = Path(checkpoint), Path(bert_dir)
    _require_files(checkpoint, bert_dir)
    config = BertConfig.from_pretrained(bert_dir, local_files_only=True)
    with torch.device("meta"):
        model = _CheXbertNet(config)
    state = {k: v for k, v in _checkpoint_state(checkpoint).items() if k not in _IGNORABLE}
    _check_keys(model, state, checkpoint)
    return (
        f"CheXbert: {checkpoint} (BERT from {bert_dir}: {config.num_hidden_layers} layers, "
        f"hidden {config.hidden_size}; 14 heads; texts cut to 512 characters)"
    )
