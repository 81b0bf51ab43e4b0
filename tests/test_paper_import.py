"""Paper-scale imports on the meta device: Janus-Pro-1B and the official UniX checkpoint.

The fixture directories (tests/paper_fixtures.py) have the real key names and shapes and no
data, so these tests check the whole key and shape coverage of the ``paper`` preset without
allocating its 3.3B weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.paper_fixtures import VOCAB, write_janus_pro, write_unix_release
from unixlib.data.text.tokenizer import JANUS_SPECIAL_IDS, ReportTokenizer
from unixlib.model.config import preset
from unixlib.model.unix import UniX
from unixlib.model.weights import (
    WeightImportError,
    embedding_rows,
    import_janus_pro,
)
from unixlib.model.weights_release import import_unix_release
from unixlib.train.config import TrainConfig
from unixlib.train.setup import model_config


def _meta_model(**values) -> UniX:
    with torch.device("meta"):
        return UniX(preset("paper", **values))


def test_paper_config_from_janus_dir_takes_embedding_rows(tmp_path: Path) -> None:
    janus = write_janus_pro(tmp_path / "Janus-Pro-1B")
    assert (janus / "pytorch_model.bin").stat().st_size < 1_000_000  # meta tensors: no data
    tok = ReportTokenizer.load(janus)
    assert tok.tokenizer.get_vocab_size() < 1000 and tok.vocab_size == VOCAB
    cfg = TrainConfig(stage=1, preset="paper", janus_dir=str(janus), image_size=384)
    values = model_config(cfg, tok)
    assert values["vocab_size"] == embedding_rows(janus) == VOCAB
    assert {k[:-3]: v for k, v in values.items() if k.endswith("_id")} == JANUS_SPECIAL_IDS
    model = _meta_model(**values)
    report = import_janus_pro(model, janus)  # strict by default
    assert report.ok
    assert "language_model.embed_tokens.weight" in report.loaded
    assert "lm_head.weight" in report.loaded
    # every understanding weight of the 24 blocks is loaded or initialised by rule
    und = [k for k in model.state_dict() if ".und." in k]
    assert len(und) == 24 * 14 and all(k in report.loaded or k in report.initialised for k in und)
    vision = {k for k in model.state_dict() if k.startswith(("vision_tower.", "connector."))}
    assert len(vision) == 24 * 16 + 5 + 4 and vision <= set(report.loaded)


def test_a_tokenizer_sized_vocabulary_is_a_named_error(tmp_path: Path) -> None:
    janus = write_janus_pro(tmp_path / "Janus-Pro-1B")
    model = _meta_model(vocab_size=100_015)  # what the tokenizer's count would have given
    with pytest.raises(WeightImportError, match=r"language_model\.embed_tokens\.weight"):
        import_janus_pro(model, janus)


def test_a_missing_janus_key_is_a_named_error(tmp_path: Path) -> None:
    janus = write_janus_pro(tmp_path / "J", drop="language_model.model.layers.3.mlp.up_proj.weight")
    with pytest.raises(WeightImportError, match=r"layers\.3\.und\.mlp\.up_proj\.weight"):
        import_janus_pro(_meta_model(), janus)


def test_resaved_janus_tokenizer_keeps_the_embedding_allowance(tmp_path: Path) -> None:
    tok = ReportTokenizer.load(write_janus_pro(tmp_path / "J"))
    tok.save(tmp_path / "saved")
    assert (
        json.loads((tmp_path / "saved" / "special_tokens.json").read_text())["embedding_rows"]
        == VOCAB
    )
    again = ReportTokenizer.load(tmp_path / "saved")
    assert again.vocab_size == VOCAB and again.special_ids == JANUS_SPECIAL_IDS


def test_official_unix_checkpoint_covers_the_paper_preset(tmp_path: Path) -> None:
    unix = write_unix_release(tmp_path / "UniX")
    model = _meta_model(image_size_gen=512)
    report = import_unix_release(model, unix)
    assert report.ok
    # both branches, the generation I/O and the VAE, everything but the (absent) REPA head
    state = model.state_dict()
    assert {k for k in state if not k.startswith("repa_projector.")} <= set(report.loaded)
    with pytest.raises(WeightImportError, match=r"layers\.5\.gen\.k_norm\.weight"):
        bad = write_unix_release(
            tmp_path / "bad", drop="language_model.model.layers.5.self_attn.k_norm_moe_gen.weight"
        )
        import_unix_release(_meta_model(), bad)
