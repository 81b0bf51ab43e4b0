"""BioViL-T alignment on a tiny model saved in the release's own formats (a CXR-BERT
``pytorch_model.bin`` + ``config.json`` and a ``biovil_t_image_model_proj_size_128.pt`` state
dict, real key names), the preprocessing by hand, and CheXGenBench's rounding."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import BertConfig, BertModel

from unixlib.data.synth.synthetic import SynthCXR
from unixlib.eval.biovil import (
    IMAGE_WEIGHTS,
    BioViLT,
    _remap_to_uint8,
    check_biovil,
    chexgenbench_mean,
    preprocess_image,
)
from unixlib.eval.biovil_nets import BioViLTImageNet, ProjectionHead, ResNetTrunk

WORDS = ["heart", "size", "normal", "enlarged", "no", "pleural", "effusion", "lungs", "clear"]
PROJ = 8


def _write(directory: Path) -> Path:
    """The HF folder of microsoft/BiomedVLP-BioViL-T, shrunk: CXR-BERT files + image weights."""
    directory.mkdir()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", *WORDS]
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n")
    (directory / "tokenizer_config.json").write_text(
        json.dumps({"do_lower_case": True, "tokenizer_class": "CXRBertTokenizer"})
    )
    bert_cfg = BertConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=24,
        max_position_embeddings=24,
    )
    cfg = bert_cfg.to_dict() | {"model_type": "cxr-bert", "projection_size": PROJ}
    cfg |= {
        "architectures": ["CXRBertModel"],
        "auto_map": {"AutoModel": "modeling_cxrbert.CXRBertModel"},
    }
    (directory / "config.json").write_text(json.dumps(cfg))
    torch.manual_seed(0)
    text = {
        f"bert.{k}": v for k, v in BertModel(bert_cfg, add_pooling_layer=False).state_dict().items()
    }
    text |= {
        f"cls_projection_head.{k}": v for k, v in ProjectionHead(16, PROJ).state_dict().items()
    }
    text |= {
        "cls.predictions.bias": torch.zeros(len(vocab)),
        "bert.embeddings.position_ids": torch.arange(24)[None],
    }
    torch.save(text, directory / "pytorch_model.bin")
    image = BioViLTImageNet(base=4, blocks=(1, 2, 1, 1), classes=10, vit=8, joint=PROJ)
    state = image.state_dict()
    for key, value in state.items():  # BatchNorm statistics that eval mode must use
        if key.endswith("running_var"):
            value.uniform_(0.5, 2.0)
        elif key.endswith("running_mean"):
            value.normal_(0, 0.1)
    state |= {
        "encoder.vit_pooler.type_embed": torch.zeros(2, 1, 8),
        "encoder.vit_pooler.blocks.0.norm1.weight": torch.ones(8),
    }
    torch.save(state, directory / IMAGE_WEIGHTS)
    return directory


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return _write(tmp_path_factory.mktemp("biovil") / "BiomedVLP-BioViL-T")


@pytest.fixture(scope="module")
def biovil(model_dir) -> BioViLT:
    return BioViLT(model_dir, device="cpu", batch_size=2)


def test_real_resnet50_names_and_size():
    with torch.device("meta"):
        trunk = ResNetTrunk()  # torchvision's resnet50(): 25,557,032 parameters with its fc
        image = BioViLTImageNet(64, (3, 4, 6, 3), 1000, 256, 128)
    assert sum(p.numel() for p in trunk.parameters()) == 25_557_032
    shapes = {k: tuple(v.shape) for k, v in image.state_dict().items()}
    assert shapes["encoder.encoder.layer1.0.downsample.0.weight"] == (256, 64, 1, 1)
    assert shapes["encoder.encoder.layer4.2.bn3.running_var"] == (2048,)
    assert shapes["encoder.encoder.fc.weight"] == (1000, 2048)
    assert shapes["encoder.backbone_to_vit.weight"] == (256, 2048, 1, 1)
    assert shapes["encoder.missing_previous_emb"] == (1, 256, 1, 1)
    assert shapes["projector.model.0.weight"] == (128, 512, 1, 1)
    assert shapes["projector.model.3.bias"] == (128,)
    assert "encoder.encoder.layer2.0.downsample.1.num_batches_tracked" in shapes


def test_remap_to_uint8_by_hand():
    u8 = np.array([[51, 153], [102, 51]], dtype=np.uint8)
    # (x - 51) / 102 * 255 = [[0, 255], [127.5, 0]], truncated
    assert _remap_to_uint8(u8).tolist() == [[0, 255], [127, 0]]
    assert _remap_to_uint8(np.full((2, 2), 7, np.uint8)).tolist() == [[0, 0], [0, 0]]


def test_preprocess_image_resizes_the_short_side_and_crops_like_torchvision():
    rng = np.random.default_rng(0)
    image = rng.uniform(0.2, 0.6, size=(700, 600))  # H 700, W 600
    got = preprocess_image(image)
    assert got.shape == (3, 448, 448) and torch.equal(got[0], got[2])
    # by hand: 8 bits, stretched; W 600 -> 512, H 700 -> int(512 * 700 / 600) = 597;
    # crop top round(74.5) = 74 (round half to even, as torchvision's int(round())), left 32
    u8 = _remap_to_uint8(np.rint(image * 255).astype(np.uint8))
    pil = Image.fromarray(u8).resize((512, 597), Image.BILINEAR)
    expected = np.asarray(pil)[74 : 74 + 448, 32 : 32 + 448] / 255.0
    np.testing.assert_allclose(got[0].numpy(), expected, atol=1e-6)
    assert u8.min() == 0 and u8.max() == 255  # [0.2, 0.6] stretched to the full 8 bits


def test_embeddings_are_unit_deterministic_and_batch_free(biovil):
    images = np.stack([SynthCXR(0, 96).sample(i).image for i in range(3)])  # (3, 96, 96)
    emb = biovil.image_embed(images[:, None])
    assert emb.shape == (3, PROJ) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(biovil.image_embed(images[2:]), emb[2:], atol=1e-6)
    texts = ["Heart size normal.", "No pleural effusion. Lungs clear", "enlarged"]
    txt = biovil.text_embed(texts)
    np.testing.assert_allclose(np.linalg.norm(txt, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(biovil.text_embed(texts[2:]), txt[2:], atol=1e-6)  # no padding
    # trailing "!?." are dropped before tokenizing, as hi-ml does
    np.testing.assert_allclose(biovil.text_embed(["Heart size normal!?"]), txt[:1], atol=1e-6)


def test_alignment_is_the_cosine_of_the_pairs(biovil):
    images = np.stack([SynthCXR(0, 64).sample(i).image for i in range(2)])
    texts = ["heart enlarged", "lungs clear"]
    scores = biovil.alignment(images, texts)
    expected = (biovil.image_embed(images) * biovil.text_embed(texts)).sum(axis=1)
    np.testing.assert_allclose(scores, expected, rtol=1e-6)
    assert scores.shape == (2,) and np.all(np.abs(scores) <= 1.0 + 1e-6)
    with pytest.raises(ValueError, match="2 images but 1 texts"):
        biovil.alignment(images, texts[:1])


def test_text_checks_follow_hi_ml(biovil):
    with pytest.raises(ValueError, match=r"text 1 contains a special token"):
        biovil.text_embed(["heart", "effusion [SEP] heart"])
    biovil.text_embed(["[MASK] effusion"])  # [MASK] is allowed
    with pytest.raises(ValueError, match=r"text 0 has 32 tokens, more than BioViL-T's 24"):
        biovil.text_embed([" ".join(["heart"] * 30)])


def test_chexgenbench_mean_rounds_twice():
    # each score to 3 decimals (0.123, 0.2, 0.300), then the mean 0.207666... to 3
    assert chexgenbench_mean([0.12345, 0.2, 0.3004]) == 0.208
    with pytest.raises(ValueError, match="no scores"):
        chexgenbench_mean([])


def test_check_biovil_and_bad_files(model_dir, tmp_path):
    line = check_biovil(model_dir)
    assert line.startswith(f"BioViL-T: {model_dir}") and IMAGE_WEIGHTS in line
    broken = _write(tmp_path / "broken")
    state = torch.load(broken / IMAGE_WEIGHTS, weights_only=True)
    state["projector.model.3.weight"] = torch.zeros(PROJ, PROJ + 1, 1, 1)
    torch.save(state, broken / IMAGE_WEIGHTS)
    with pytest.raises(ValueError, match=r"wrong shape \['projector.model.3.weight'\]"):
        check_biovil(broken)
    text = torch.load(broken / "pytorch_model.bin", weights_only=True)
    torch.save({**text, "classifier.weight": torch.zeros(2)}, broken / "pytorch_model.bin")
    with pytest.raises(ValueError, match=r"keys outside CXR-BERT: \['classifier.weight'\]"):
        check_biovil(broken)
    (broken / IMAGE_WEIGHTS).unlink()
    with pytest.raises(FileNotFoundError, match="BioViL-T image weights not found"):
        check_biovil(broken)
    with pytest.raises(FileNotFoundError, match=r"no config\.json"):
        check_biovil(tmp_path / "absent")
