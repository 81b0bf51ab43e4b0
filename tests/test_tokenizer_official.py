"""``ReportTokenizer.encode_official`` frames a prompt as the release's tokenizer does (issue 22,
item 9), on locally built Janus-Pro-format tokenizer directories.

The release (ZrH42/UniX, ``modeling/unix/unix.py``) encodes a prompt with
``tokenizer.encode(prompt)`` of a transformers 4.49 ``LlamaTokenizerFast``; that class's
constructor replaces the post-processor stored in ``tokenizer.json`` by a template built from
``add_bos_token`` / ``add_eos_token`` in ``tokenizer_config.json`` (``update_post_processor``).
The reference below rebuilds that template with the ``tokenizers`` library. (The pinned
transformers 5.24 cannot serve as the reference: its ``AutoTokenizer`` keeps the file's
post-processor, and its ``LlamaTokenizerFast`` rebuilds a SentencePiece-style pipeline that
tokenizes a byte-level BPE differently.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from unixlib.data.text.tokenizer import JANUS_SPECIAL_IDS, ReportTokenizer, train_bpe

BOS, EOS, PAD = "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜▁pad▁｜>"
TEXT = "FINDINGS: clear lungs."
# Ids of TEXT from transformers 4.49.0 (the release's pin, run once outside this repository) on
# the directory _janus_dir builds with add_bos_token true: bos, then the BPE pieces. The same for
# the "template", "bytelevel" and "none" post-processors.
IDS_TRANSFORMERS_449 = [100000, 285, 25, 282, 288, 13]


def _bpe_with_janus_specials() -> Tokenizer:
    """A small byte-level BPE whose special tokens sit at Janus-Pro's ids (100000-100002):
    the vocabulary is padded with filler entries up to 100,000."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(vocab_size=300, initial_alphabet=alphabet, show_progress=False)
    tok.train_from_iterator(["FINDINGS: clear lungs. IMPRESSION: normal chest."] * 4, trainer)
    spec = json.loads(tok.to_str())
    vocab = spec["model"]["vocab"]
    vocab.update({f"<filler_{i}>": i for i in range(len(vocab), 100_000)})
    tok = Tokenizer.from_str(json.dumps(spec))
    tok.add_special_tokens([BOS, EOS, PAD])
    return tok


@pytest.fixture(scope="module")
def janus_tokenizer() -> Tokenizer:
    tok = _bpe_with_janus_specials()
    assert [tok.token_to_id(t) for t in (BOS, EOS, PAD)] == [100000, 100001, 100002]
    return tok


def _janus_dir(
    root: Path, tok: Tokenizer, post: str, add_bos: bool | None, add_eos: bool | None
) -> Path:
    """tokenizer.json with the given post-processor + tokenizer_config.json as Janus-Pro ships it
    (a flag left out when None: LlamaTokenizerFast's default applies)."""
    out = root / f"{post}_{add_bos}_{add_eos}"
    out.mkdir()
    tok = Tokenizer.from_str(tok.to_str())
    if post == "template":  # what a tokenizer saved by LlamaTokenizerFast(add_bos_token) holds
        tok.post_processor = processors.TemplateProcessing(
            single=f"{BOS}:0 $A:0",
            pair=f"{BOS}:0 $A:0 {BOS}:1 $B:1",
            special_tokens=[(BOS, 100000)],
        )
    elif post == "bytelevel":
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.save(str(out / "tokenizer.json"))
    cfg = {"bos_token": {"__type": "AddedToken", "content": BOS}, "eos_token": EOS}
    cfg |= {"pad_token": PAD, "legacy": True, "tokenizer_class": "LlamaTokenizerFast"}
    if add_bos is not None:
        cfg["add_bos_token"] = add_bos
    if add_eos is not None:
        cfg["add_eos_token"] = add_eos
    (out / "tokenizer_config.json").write_text(json.dumps(cfg))
    return out


def _llama_fast_reference(directory: Path, text: str) -> list[int]:
    """transformers 4.49 ``LlamaTokenizerFast(...).encode(text)``: tokenizer.json with its
    post-processor replaced by the template of ``update_post_processor``."""
    cfg = json.loads((directory / "tokenizer_config.json").read_text())
    add_bos, add_eos = cfg.get("add_bos_token", True), cfg.get("add_eos_token", False)
    tok = Tokenizer.from_file(str(directory / "tokenizer.json"))
    single = f"{BOS + ':0 ' if add_bos else ''}$A:0{' ' + EOS + ':0' if add_eos else ''}"
    specials = [(BOS, tok.token_to_id(BOS))] * add_bos + [(EOS, tok.token_to_id(EOS))] * add_eos
    tok.post_processor = processors.TemplateProcessing(single=single, special_tokens=specials)
    return tok.encode(text).ids


@pytest.mark.parametrize("post", ["template", "bytelevel", "none"])
@pytest.mark.parametrize(
    ("add_bos", "add_eos"), [(True, False), (False, False), (True, True), (None, None)]
)
def test_encode_official_matches_the_release_tokenizer(
    janus_tokenizer, tmp_path, post, add_bos, add_eos
):
    directory = _janus_dir(tmp_path, janus_tokenizer, post, add_bos, add_eos)
    tok = ReportTokenizer.load(directory)
    assert tok.special_ids == JANUS_SPECIAL_IDS
    for text in (TEXT, "No pleural effusion. Heart size normal.", ""):
        assert tok.encode_official(text) == _llama_fast_reference(directory, text)
    if add_bos in (True, None) and not add_eos:  # Janus-Pro's own flags (and the defaults)
        assert tok.encode_official(TEXT) == IDS_TRANSFORMERS_449
    # The release then wraps the prompt once more: bos + encode(prompt) + eos, so with
    # add_bos_token the generation context starts with two bos ids.
    assert tok.encode_official(TEXT)[:1] == ([100000] if add_bos is not False else [285])


def test_framing_survives_save_and_load(janus_tokenizer, tmp_path):
    tok = ReportTokenizer.load(_janus_dir(tmp_path, janus_tokenizer, "none", True, True))
    tok.save(tmp_path / "saved")  # e.g. into an exported model directory
    back = ReportTokenizer.load(tmp_path / "saved")
    assert back.official_framing == (True, True)
    assert back.encode_official(TEXT) == tok.encode_official(TEXT)
    assert back.encode_official(TEXT)[0] == 100000 and back.encode_official(TEXT)[-1] == 100001


def test_our_bpe_keeps_its_file_post_processor(tmp_path):
    tok = train_bpe(["FINDINGS: clear lungs."] * 3, vocab_size=280, out_dir=tmp_path)
    assert ReportTokenizer.load(tmp_path).official_framing is None
    assert tok.encode_official(TEXT) == tok.encode(TEXT)  # no post-processor: no specials


def test_a_bos_token_that_maps_elsewhere_is_an_error(janus_tokenizer, tmp_path):
    directory = _janus_dir(tmp_path, janus_tokenizer, "none", True, False)
    cfg = json.loads((directory / "tokenizer_config.json").read_text())
    cfg["bos_token"] = PAD  # id 100002, not the bos (100000) the model's plans use
    (directory / "tokenizer_config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=r"bos_token .* has id 100002 .* uses 100000"):
        ReportTokenizer.load(directory)
