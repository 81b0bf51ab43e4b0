"""The report tokenizer: special ids, round trips, persistence, determinism."""

from __future__ import annotations

import json

import pytest

from unixlib.data.text.tokenizer import (
    JANUS_SPECIAL_IDS,
    SPECIAL_TOKENS,
    ReportTokenizer,
    train_bpe,
)

TEXTS = [
    "FINDINGS: The heart is mildly enlarged. No pleural effusion. IMPRESSION: Mild cardiomegaly.",
    "FINDINGS: Small left pleural effusion. No pneumothorax. IMPRESSION: Left effusion.",
    "FINDINGS: Lungs are clear. IMPRESSION: No acute cardiopulmonary process.",
] * 20


def test_special_ids_are_the_first_ids_and_distinct():
    tok = train_bpe(TEXTS, vocab_size=300)
    assert tok.special_ids == {"pad": 0, "bos": 1, "eos": 2, "boi": 3, "eoi": 4}
    assert [tok.tokenizer.id_to_token(i) for i in range(5)] == list(SPECIAL_TOKENS)


def test_round_trip_including_unseen_characters():
    tok = train_bpe(TEXTS, vocab_size=300)
    text = "FINDINGS: Énorme effusion (5 cm) — unseen ✓. IMPRESSION: Effusion."
    ids = tok.encode(text)
    assert all(i >= 5 for i in ids), "encode adds no special tokens"
    assert tok.decode(ids) == text


def test_decode_stops_at_eos_and_drops_specials():
    tok = train_bpe(TEXTS, vocab_size=300)
    ids = [tok.bos, *tok.encode("No effusion."), tok.eos, *tok.encode("garbage")]
    assert tok.decode(ids) == "No effusion."


def test_training_is_deterministic_and_save_load_round_trips(tmp_path):
    a = train_bpe(TEXTS, vocab_size=300, out_dir=tmp_path / "tok")
    b = train_bpe(TEXTS, vocab_size=300)
    assert a.encode(TEXTS[0]) == b.encode(TEXTS[0])
    loaded = ReportTokenizer.load(tmp_path / "tok")
    assert loaded.special_ids == a.special_ids and loaded.encode(TEXTS[1]) == a.encode(TEXTS[1])
    assert loaded.vocab_size == a.vocab_size <= 300


def test_bad_inputs_have_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="zero non-empty texts"):
        train_bpe(["", ""], vocab_size=300)
    with pytest.raises(FileNotFoundError, match=r"no tokenizer\.json"):
        ReportTokenizer.load(tmp_path)


def test_special_ids_are_checked_against_the_vocabulary(tmp_path):
    train_bpe(TEXTS, vocab_size=300, out_dir=tmp_path / "ours")
    specials = tmp_path / "ours" / "special_tokens.json"
    specials.write_text(json.dumps({"pad": 0, "bos": 1, "eos": 2, "boi": 3, "eoi": 5000}))
    with pytest.raises(ValueError, match=r"special ids \{'eoi': 5000\} fall outside"):
        ReportTokenizer.load(tmp_path / "ours")
    # A Janus-Pro directory (no special_tokens.json): its ids index the model's 102,400 rows.
    janus = tmp_path / "janus"
    janus.mkdir()
    (tmp_path / "ours" / "tokenizer.json").rename(janus / "tokenizer.json")
    assert ReportTokenizer.load(janus).special_ids == JANUS_SPECIAL_IDS
