"""CheXbertLabeler on a tiny random BERT saved with the real chexbert.pth key layout."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import BertConfig, BertModel, BertTokenizer

from unixlib.data.schema import LABELS
from unixlib.eval.chexbert import CheXbertLabeler, check_chexbert, preprocess
from unixlib.eval.understanding import label_reports

HIDDEN = 32
WORDS = [
    *("heart", "size", "normal", "enlarged", "no", "pleural", "effusion"),
    *("lungs", "clear", "pneumothorax", "the", "is"),
]
TEXTS = ["The heart is enlarged.", "No pleural effusion. Lungs clear.", "pneumothorax"]


def _bert_dir(root: Path) -> Path:
    """config.json + a small WordPiece vocab, as a local HF folder."""
    bert_dir = root / "bert"
    bert_dir.mkdir()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", *WORDS]
    (bert_dir / "vocab.txt").write_text("\n".join(vocab) + "\n")
    # BertTokenizer(vocab=...) reads the file (transformers 5 ignores BertTokenizerFast's
    # vocab_file argument and would save a tokenizer.json that maps every word to [UNK]).
    BertTokenizer(vocab=str(bert_dir / "vocab.txt")).save_pretrained(bert_dir)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=64,
    )
    config.save_pretrained(bert_dir)
    return bert_dir


def _state_dict(bert_dir: Path) -> dict[str, torch.Tensor]:
    """Random weights under the checkpoint's names: module.bert.* and module.linear_heads.*."""
    torch.manual_seed(0)
    bert = BertModel(BertConfig.from_pretrained(bert_dir))
    sd = {f"module.bert.{k}": v.clone() for k, v in bert.state_dict().items()}
    for i in range(14):
        n_out = 2 if i == 13 else 4
        sd[f"module.linear_heads.{i}.weight"] = torch.randn(n_out, HIDDEN)
        sd[f"module.linear_heads.{i}.bias"] = torch.zeros(n_out)
    return sd


def _save(sd: dict[str, torch.Tensor], path: Path) -> Path:
    torch.save({"model_state_dict": sd, "epoch": 1}, path)
    return path


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    bert_dir = _bert_dir(tmp_path)
    return bert_dir, _state_dict(bert_dir)


def test_loads_and_labels_in_schema(setup, tmp_path: Path) -> None:
    bert_dir, sd = setup
    labeler = CheXbertLabeler(_save(sd, tmp_path / "chexbert.pth"), bert_dir, batch_size=2)
    df = labeler(TEXTS)
    assert list(df.columns) == list(LABELS) and len(df) == len(TEXTS)
    values = df.to_numpy().ravel()
    assert all(math.isnan(v) or v in (1.0, 0.0, -1.0) for v in values)
    # No Finding has only blank/positive.
    assert set(df["no_finding"].fillna(9.0)) <= {1.0, 9.0}
    # Batching does not change the labels (batch of 2 + 1 vs one batch of 3).
    whole = CheXbertLabeler(tmp_path / "chexbert.pth", bert_dir, batch_size=8)(TEXTS)
    assert df.equals(whole)


def test_head_biases_force_known_labels(setup, tmp_path: Path) -> None:
    bert_dir, sd = setup
    big = 100.0  # dwarfs the random logits (|w . cls| is a few units)
    sd["module.linear_heads.1.bias"][1] = big  # cardiomegaly -> positive
    sd["module.linear_heads.9.bias"][2] = big  # pleural effusion -> negative
    sd["module.linear_heads.6.bias"][3] = big  # pneumonia -> uncertain
    sd["module.linear_heads.0.bias"][0] = big  # enlarged cardiomediastinum -> blank
    sd["module.linear_heads.13.bias"][0] = big  # no finding -> blank
    df = CheXbertLabeler(_save(sd, tmp_path / "c.pth"), bert_dir)(TEXTS)
    assert (df["cardiomegaly"] == 1.0).all()
    assert (df["pleural_effusion"] == 0.0).all()
    assert (df["pneumonia"] == -1.0).all()
    assert df["enlarged_cardiomediastinum"].isna().all()
    assert df["no_finding"].isna().all()
    sd["module.linear_heads.13.bias"][:] = torch.tensor([0.0, big])
    df = CheXbertLabeler(_save(sd, tmp_path / "c.pth"), bert_dir)(TEXTS)
    assert (df["no_finding"] == 1.0).all()


def test_is_a_labeler_for_label_reports(setup, tmp_path: Path) -> None:
    bert_dir, sd = setup
    sd["module.linear_heads.1.bias"][1] = 100.0
    labeler = CheXbertLabeler(_save(sd, tmp_path / "c.pth"), bert_dir)
    # Long text: truncated to 512 chars then to the model's 64 positions without error.
    df = label_reports([*TEXTS, "the heart is enlarged " * 50, ""], labeler)
    assert list(df["cardiomegaly"][:4]) == [1.0] * 4
    assert df.iloc[4].isna().all()  # blank text never reaches the model


def test_legacy_position_ids_buffer_is_tolerated(setup, tmp_path: Path) -> None:
    bert_dir, sd = setup
    sd["module.bert.embeddings.position_ids"] = torch.arange(64).unsqueeze(0)
    CheXbertLabeler(_save(sd, tmp_path / "c.pth"), bert_dir)


def test_missing_or_unexpected_key_is_a_clear_error(setup, tmp_path: Path) -> None:
    bert_dir, sd = setup
    missing = dict(sd)
    del missing["module.linear_heads.13.bias"]
    with pytest.raises(ValueError, match=r"missing keys \['linear_heads.13.bias'\]"):
        CheXbertLabeler(_save(missing, tmp_path / "m.pth"), bert_dir)
    extra = {**sd, "module.classifier.weight": torch.zeros(2, HIDDEN)}
    with pytest.raises(ValueError, match=r"unexpected keys \['classifier.weight'\]"):
        CheXbertLabeler(_save(extra, tmp_path / "u.pth"), bert_dir)
    wrong = {**sd, "module.linear_heads.13.weight": torch.zeros(4, HIDDEN)}
    with pytest.raises(ValueError, match=r"linear_heads\.13\.weight"):
        CheXbertLabeler(_save(wrong, tmp_path / "w.pth"), bert_dir)
    torch.save(sd, tmp_path / "flat.pth")
    with pytest.raises(ValueError, match="model_state_dict"):
        CheXbertLabeler(tmp_path / "flat.pth", bert_dir)


def test_missing_files_are_clear_errors(setup, tmp_path: Path) -> None:
    bert_dir, sd = setup
    ckpt = _save(sd, tmp_path / "chexbert.pth")
    with pytest.raises(FileNotFoundError, match="CheXbert checkpoint not found"):
        CheXbertLabeler(tmp_path / "absent.pth", bert_dir)
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        CheXbertLabeler(ckpt, tmp_path / "no_bert_here")
    for name in ("vocab.txt", "tokenizer.json"):
        (bert_dir / name).unlink(missing_ok=True)
    with pytest.raises(FileNotFoundError, match=r"vocab\.txt or tokenizer\.json"):
        CheXbertLabeler(ckpt, bert_dir)


def test_class_to_value_mapping() -> None:
    from unixlib.eval.chexbert import CLASS_VALUE

    assert np.isnan(CLASS_VALUE[0]) and CLASS_VALUE[1:] == (1.0, 0.0, -1.0)


def test_the_fixture_tokenizer_knows_its_words(setup, tmp_path: Path) -> None:
    bert_dir, sd = setup
    labeler = CheXbertLabeler(_save(sd, tmp_path / "c.pth"), bert_dir)
    ids = labeler.tokenizer("The heart is enlarged.")["input_ids"]
    vocab = labeler.tokenizer.get_vocab()
    assert ids == [vocab[t] for t in ("[CLS]", "the", "heart", "is", "enlarged", ".", "[SEP]")]


def test_preprocess_is_the_release_cleaning() -> None:
    # strip, newline -> space, strip; other whitespace is left to BERT's own splitting
    assert preprocess("  FINDINGS:\nHeart  normal.\n ") == "FINDINGS: Heart  normal."
    assert preprocess("\n\n") == ""


def test_long_reports_keep_cls_the_first_pieces_and_sep(setup, tmp_path: Path) -> None:
    """f1chexbert's cut ``ids[:max - 1] + [SEP]``, at the model's position limit (64 here,
    512 for bert-base-uncased); it also shows texts are labelled, not rejected."""
    bert_dir, sd = setup
    labeler = CheXbertLabeler(_save(sd, tmp_path / "c.pth"), bert_dir)
    text = " ".join(WORDS * 10)  # 120 words -> 122 ids untruncated
    full = labeler.tokenizer(text)["input_ids"]
    cut = labeler.tokenizer(text, truncation=True, max_length=labeler.max_tokens)["input_ids"]
    assert len(full) == 122 and labeler.max_tokens == 64
    assert cut == [*full[:63], labeler.tokenizer.sep_token_id]
    assert labeler.classes([text]).shape == (1, 14)


def test_labels_are_deterministic_and_batch_independent(setup, tmp_path: Path) -> None:
    bert_dir, sd = setup
    labeler = CheXbertLabeler(_save(sd, tmp_path / "c.pth"), bert_dir, batch_size=1)
    texts = [*TEXTS, "The heart is enlarged. " * 5]  # different lengths: padding in a batch
    one = labeler.classes(texts)
    labeler.batch_size = 4
    np.testing.assert_array_equal(labeler.classes(texts), one)
    np.testing.assert_array_equal(labeler.classes(texts), one)


def test_check_chexbert_describes_or_rejects(setup, tmp_path: Path) -> None:
    bert_dir, sd = setup
    ckpt = _save(sd, tmp_path / "chexbert.pth")
    line = check_chexbert(ckpt, bert_dir)
    assert line.startswith(f"CheXbert: {ckpt}") and "2 layers, hidden 32" in line
    wrong = {**sd, "module.linear_heads.2.weight": torch.zeros(3, HIDDEN)}
    with pytest.raises(ValueError, match=r"linear_heads\.2\.weight has shape \(3, 32\)"):
        check_chexbert(_save(wrong, tmp_path / "w.pth"), bert_dir)
    missing = {k: v for k, v in sd.items() if "linear_heads.0." not in k}
    with pytest.raises(ValueError, match="missing keys"):
        check_chexbert(_save(missing, tmp_path / "m.pth"), bert_dir)
    with pytest.raises(FileNotFoundError, match="CheXbert checkpoint not found"):
        check_chexbert(tmp_path / "absent.pth", bert_dir)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"junk\.pth is not a readable torch checkpoint"):
        check_chexbert(tmp_path / "junk.pth", bert_dir)
