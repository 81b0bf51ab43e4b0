"""CheXbert (Smit et al., EMNLP 2020) report labeler from local weights, as a ``Labeler``.

The model, as in stanfordmlgroup/CheXbert ``src/models/bert_labeler.py``: BERT
(bert-base-uncased) over the tokenized report (at most 512 tokens: [CLS], 510 word pieces,
[SEP]); the last hidden state of [CLS] goes through dropout (identity at inference) and 14
linear heads, in CheXpert's condition order (= ``schema.LABELS``). Heads 0-12 have 4 classes
(0 blank, 1 positive, 2 negative, 3 uncertain); head 13, No Finding, has 2 (0 blank,
1 positive). Each head's argmax maps to the project's label values as CheXbert's own
``label.py`` writes them: blank -> NaN, positive -> 1, negative -> 0, uncertain -> -1.

The checkpoint ``chexbert.pth`` is a ``torch.save`` dict whose ``"model_state_dict"`` has
keys ``module.bert.<BertModel keys>`` and ``module.linear_heads.<i>.weight/bias`` (it was
saved from ``nn.DataParallel``, hence ``module.``). Loading is strict, with one exception:
``bert.embeddings.position_ids`` / ``token_type_ids`` are constant index buffers that some
transformers versions saved and current ones do not; they are dropped if present.

``bert_dir`` is a local Hugging Face folder of bert-base-uncased with ``config.json`` and
tokenizer files (``vocab.txt`` or ``tokenizer.json``); nothing is downloaded.
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
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict) or "model_state_dict" not in ckpt:
        raise ValueError(f"{checkpoint}: expected a dict with key 'model_state_dict'")
    return {k.removeprefix("module."): v for k, v in ckpt["model_state_dict"].items()}


def _load_strict(model: nn.Module, state: dict[str, torch.Tensor], source: Path) -> None:
    """Load every parameter; any missing, unexpected or mis-shaped key is a ValueError."""
    state = {k: v for k, v in state.items() if k not in _IGNORABLE}
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise ValueError(
            f"{source} does not match the CheXbert model: missing keys {missing}, "
            f"unexpected keys {unexpected}"
        )
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
        # CheXbert's preprocessing: strip and collapse whitespace.
        clean = [" ".join(t.split()) for t in texts]
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
