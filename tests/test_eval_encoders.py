"""Reference encoders (classifier + SigLIP contrastive model), their cache, their quality
metrics, and the RadDino wrapper, on tiny SynthCXR sets and a tiny random DINOv2."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from unixlib.data.schema import LABELS
from unixlib.data.synth.synthetic import SynthCXR
from unixlib.data.text.reports import rule_clean
from unixlib.data.text.tokenizer import ReportTokenizer, train_bpe
from unixlib.eval.encoder_nets import ContrastiveModel, siglip_loss
from unixlib.eval.encoder_pretrained import check_raddino
from unixlib.eval.encoders import (
    EncoderConfig,
    ReferenceEncoders,
    encoder_quality,
    load_or_train,
    load_raddino,
    recall_at_k,
    train_reference_encoders,
)

# A few seconds of training at most: 32 px, narrow nets, a handful of steps.
TINY = EncoderConfig(
    image_size=32,
    width=8,
    feature_dim=16,
    embed_dim=8,
    steps=4,
    batch_size=16,
    max_text_tokens=32,
    text_width=32,
    seed=0,
)


def synth_pairs(n: int, start: int, size: int) -> tuple[torch.Tensor, pd.DataFrame, list[str]]:
    """(n, 1, size, size) SynthCXR images, their 14 label columns, their rule-cleaned reports."""
    samples = list(SynthCXR(seed=0, size=size).generate(n, start))
    images = torch.from_numpy(np.stack([s.image for s in samples]))[:, None]
    labels = pd.DataFrame([s.labels for s in samples])[list(LABELS)]
    return images, labels, [rule_clean(s.report_raw).text for s in samples]


@pytest.fixture(scope="module")
def data() -> tuple[torch.Tensor, pd.DataFrame, list[str]]:
    return synth_pairs(96, 0, 32)


@pytest.fixture(scope="module")
def tokenizer(data) -> ReportTokenizer:
    return train_bpe(data[2], vocab_size=300)


@pytest.fixture(scope="module")
def tiny(data, tokenizer) -> ReferenceEncoders:
    return train_reference_encoders(*data, tokenizer, TINY)


def test_siglip_loss_matches_a_hand_computed_2x2_case():
    img = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    txt = torch.tensor([[0.6, 0.8], [0.0, 1.0]])
    log_t = torch.tensor(math.log(10.0), requires_grad=True)
    bias = torch.tensor(-10.0, requires_grad=True)
    # <img_i, txt_j> = [[0.6, 0], [1, 0.8]] -> logits 10 * dot - 10 = [[-4, -10], [0, -2]];
    # labels +1 on the diagonal, -1 off it; the sum over pairs is divided by the batch (2).
    log_sig = lambda v: -math.log1p(math.exp(-v))  # noqa: E731
    expected = -(log_sig(-4) + log_sig(10) + log_sig(-0.0) + log_sig(-2)) / 2
    assert expected == pytest.approx(3.41914, abs=1e-5)
    loss = siglip_loss(img, txt, log_t, bias)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    loss.backward()
    assert log_t.grad is not None and bias.grad is not None
    model = ContrastiveModel(8, 4, vocab_size=10, max_tokens=8, text_width=32, text_layers=1)
    assert model.log_t.exp().item() == pytest.approx(10.0) and model.bias.item() == -10.0


def test_outputs_have_the_documented_shapes_types_and_norms(tiny, data):
    images = data[0][:5]
    feats, probs = tiny.image_features(images), tiny.image_probs(images)
    emb, txt = tiny.image_embed(images), tiny.text_embed([*data[2][:4], ""])
    assert feats.shape == (5, TINY.feature_dim) and feats.dtype == np.float32
    assert probs.shape == (5, len(LABELS)) and ((probs > 0) & (probs < 1)).all()
    for e in (emb, txt):
        assert e.shape == (5, TINY.embed_dim) and e.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, rtol=1e-5)
    # (N, H, W) arrays and other resolutions are resized to image_size; empty batches are fine.
    big = torch.nn.functional.interpolate(images, size=64, mode="bilinear", antialias=True)
    assert tiny.image_features(big.numpy()[:, 0]).shape == (5, TINY.feature_dim)
    assert tiny.image_features(images[:0]).shape == (0, TINY.feature_dim)
    assert "train split" in tiny.name and "32 px" in tiny.name


def test_save_then_load_gives_identical_outputs(tiny, data, tokenizer, tmp_path):
    tiny.save(tmp_path)
    back = ReferenceEncoders.load(tmp_path, tokenizer)
    images, reports = data[0][:8], data[2][:8]
    for fn in ("image_features", "image_probs", "image_embed"):
        np.testing.assert_array_equal(getattr(back, fn)(images), getattr(tiny, fn)(images))
    np.testing.assert_array_equal(back.text_embed(reports), tiny.text_embed(reports))
    assert back.cfg == TINY and back.info["losses"] == tiny.info["losses"]
    other = train_bpe(["FINDINGS: Something else entirely. IMPRESSION: None."] * 3, 280)
    with pytest.raises(ValueError, match="another tokenizer"):
        ReferenceEncoders.load(tmp_path, other)
    with pytest.raises(FileNotFoundError):
        ReferenceEncoders.load(tmp_path / "absent", tokenizer)


def test_load_or_train_reuses_the_cache_only_for_the_same_config_and_data(
    data, tokenizer, tmp_path, capsys
):
    images, labels, reports = data

    def run(cfg: EncoderConfig = TINY, reports: list[str] = reports) -> str:
        load_or_train(tmp_path, images, labels, reports, tokenizer, cfg)
        return capsys.readouterr().out

    assert "trained in" in (out := run()) and "no cache" in out
    assert "loaded from" in run()
    assert "trained in" in (out := run(replace(TINY, seed=1))) and "config changed" in out
    assert "loaded from" in run(replace(TINY, seed=1))
    changed = [*reports[:-1], reports[-1] + " No pneumothorax."]
    out = run(replace(TINY, seed=1), changed)
    assert "trained in" in out and "training data or tokenizer changed" in out
    meta = (tmp_path / "config.json").read_text()
    assert '"fingerprint"' in meta and '"losses"' in meta and '"seed": 1' in meta


def test_same_seed_gives_identical_weights_and_leaves_the_global_rng_alone(data, tokenizer):
    torch.manual_seed(123)
    expected_draw = torch.rand(3)
    torch.manual_seed(123)
    a = train_reference_encoders(*data, tokenizer, TINY)
    assert torch.equal(torch.rand(3), expected_draw)
    b = train_reference_encoders(*data, tokenizer, TINY)
    c = train_reference_encoders(*data, tokenizer, replace(TINY, seed=1))
    for net in ("classifier", "contrastive"):
        sa, sb = getattr(a, net).state_dict(), getattr(b, net).state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    np.testing.assert_array_equal(a.image_features(data[0]), b.image_features(data[0]))
    assert not np.array_equal(a.image_features(data[0]), c.image_features(data[0]))


class FakeEncoders:
    """Known probabilities and embeddings, for checking encoder_quality's arithmetic."""

    def __init__(self, probs: np.ndarray, img: np.ndarray, txt: np.ndarray) -> None:
        self.probs, self.img, self.txt = probs, img, txt

    def image_probs(self, images) -> np.ndarray:
        return self.probs

    def image_embed(self, images) -> np.ndarray:
        return self.img

    def text_embed(self, texts) -> np.ndarray:
        return self.txt


def test_encoder_quality_on_a_constructed_case():
    n = 6
    labels = pd.DataFrame(0.0, index=range(n), columns=list(LABELS))
    labels["cardiomegaly"] = [1, 0, 1, 0, -1, np.nan]  # uncertain / unmentioned: not positive
    labels["no_finding"] = 1.0  # no negatives -> NaN
    probs = np.full((n, len(LABELS)), 0.5)
    probs[:, LABELS.index("cardiomegaly")] = [0.9, 0.8, 0.3, 0.1, 0.5, 0.2]
    eye = np.eye(n, dtype=np.float32)
    table, r = encoder_quality(FakeEncoders(probs, eye, eye), None, labels, [""] * n)
    by_class = table.set_index("class")
    # positives 0.9 and 0.3 against negatives 0.8, 0.1, 0.5, 0.2: 4 + 2 of 8 pairs ordered.
    assert by_class.loc["cardiomegaly", "auroc"] == pytest.approx(0.75)
    assert by_class.loc["cardiomegaly", "n_pos"] == 2
    assert np.isnan(by_class.loc["no_finding", "auroc"]) and np.isnan(
        by_class.loc["edema", "auroc"]
    )
    assert list(table.columns) == ["class", "n_pos", "auroc"] and len(table) == len(LABELS)
    assert r["i2t_r1"] == r["t2i_r1"] == r["i2t_r5"] == 1.0
    assert r["chance_r1"] == pytest.approx(1 / 6) and r["chance_r5"] == pytest.approx(5 / 6)
    assert r["cos_matched"] == 1.0 and r["cos_unmatched"] == 0.0
    shifted = np.roll(eye, 1, axis=0)  # text i is the embedding of image i - 1: never rank 1
    _, r = encoder_quality(FakeEncoders(probs, eye, shifted), None, labels, [""] * n)
    assert r["i2t_r1"] == r["t2i_r1"] == 0.0


def test_recall_at_k_counts_ties_as_hits():
    sim = np.array([[0.9, 0.1, 0.5], [0.2, 0.3, 0.4], [0.0, 0.6, 0.6]])
    assert recall_at_k(sim, 1) == pytest.approx(2 / 3)  # row 1 ranks second; row 2 ties first
    assert recall_at_k(sim, 2) == 1.0


def tiny_dinov2(directory) -> None:
    from transformers import Dinov2Config, Dinov2Model

    config = Dinov2Config(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        image_size=28,
        patch_size=14,
    )
    torch.manual_seed(0)
    Dinov2Model(config).save_pretrained(directory)


def test_raddino_wrapper_matches_the_hf_image_processor(tmp_path):
    from transformers import BitImageProcessorPil  # RadDino's processor class (PIL backend)

    tiny_dinov2(tmp_path)
    processor = BitImageProcessorPil(
        size={"shortest_edge": 32},
        crop_size={"height": 28, "width": 28},
        do_center_crop=True,
        image_mean=[0.53] * 3,
        image_std=[0.26] * 3,
        resample=3,
    )
    processor.save_pretrained(tmp_path)
    enc = load_raddino(tmp_path, resize_first=None, device="cpu")  # the processor alone
    # 8-bit images, so the processor's uint8 input holds exactly the same values.
    images = np.round(np.stack([SynthCXR(0, 64).sample(i).image for i in range(3)]) * 255) / 255
    pil = [Image.fromarray((im * 255).round().astype(np.uint8)).convert("RGB") for im in images]
    pixels = processor(images=pil, return_tensors="pt").pixel_values  # (3, 3, 28, 28)
    with torch.no_grad():
        expected = enc.model(pixel_values=pixels).pooler_output.numpy()
    feats = enc.image_features(images[:, None])
    assert feats.shape == (3, 32) and feats.dtype == np.float32
    # PIL's and torch's antialiased bicubic differ by a few grey levels at edges.
    np.testing.assert_allclose(feats, expected, atol=0.02)
    assert "RadDino" in enc.name and "28 px" in enc.name


def test_raddino_without_processor_file_and_missing_files(tmp_path):
    model_dir = tmp_path / "rad-dino"
    tiny_dinov2(model_dir)
    enc = load_raddino(model_dir, device="cpu")  # config image_size, ImageNet mean / std
    assert (enc.resize, enc.crop) == (28, 28)
    assert load_raddino(model_dir, image_size=42, device="cpu").crop == 42  # the paper's 299
    assert enc.image_features(np.random.rand(2, 1, 50, 50)).shape == (2, 32)
    with pytest.raises(FileNotFoundError, match="rad-dino"):
        load_raddino(tmp_path / "absent")
    (model_dir / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="no weights"):
        load_raddino(model_dir)


def test_training_learns_findings_and_report_alignment():
    train, test = synth_pairs(800, 0, 64), synth_pairs(200, 10_000, 64)
    tok = train_bpe(train[2], vocab_size=400)
    cfg = EncoderConfig(image_size=64, width=16, steps=150, batch_size=48, max_text_tokens=64)
    enc = train_reference_encoders(*train, tok, cfg)
    table, r = encoder_quality(enc, *test)
    auroc = table.set_index("class").loc["cardiomegaly", "auroc"]
    # Seen: AUROC 0.73-0.80 and i2t recall@5 ~10x chance over seeds 0-2.
    assert auroc > 0.6 and r["i2t_r5"] > 2 * r["chance_r5"], (auroc, r)
    assert r["cos_matched"] > r["cos_unmatched"] + 0.2, r


def _tiny_raddino_with_processor(directory, resize_first=20):
    """A tiny DINOv2 + a RadDino-style processor (shortest edge 32, crop 28, bicubic)."""
    from transformers import BitImageProcessorPil

    tiny_dinov2(directory)
    processor = BitImageProcessorPil(
        size={"shortest_edge": 32},
        crop_size={"height": 28, "width": 28},
        do_center_crop=True,
        image_mean=[0.5307] * 3,
        image_std=[0.2583] * 3,
        resample=3,
    )
    processor.save_pretrained(directory)
    return processor, load_raddino(directory, resize_first=resize_first, device="cpu")


def test_raddino_follows_chexgenbench_resize_then_processor(tmp_path):
    """CheXGenBench: 8-bit RGB -> Resize((299, 299)) bilinear (PIL) -> RadDino's processor on
    that uint8 image. Here 20 px stands in for 299; the images are not square (aspect lost)."""
    processor, enc = _tiny_raddino_with_processor(tmp_path)
    images = np.stack([SynthCXR(0, 64).sample(i).image[:, 8:56] for i in range(3)])  # (3, 64, 48)
    u8 = [np.rint(im * 255).astype(np.uint8) for im in images]
    squeezed = [Image.fromarray(a).convert("RGB").resize((20, 20), Image.BILINEAR) for a in u8]
    pixels = processor(images=squeezed, return_tensors="pt").pixel_values  # (3, 3, 28, 28)
    with torch.no_grad():
        expected = enc.model(pixel_values=pixels).pooler_output.numpy()
    feats = enc.image_features(images[:, None])
    np.testing.assert_allclose(feats, expected, atol=1e-5)  # the same PIL operations
    assert "20 px -> 28 px" in enc.name


def test_real_and_generated_sizes_meet_at_one_resolution(tmp_path):
    """A 64 px image and its own 20 px protocol resize give the same encoder input: every image
    passes the bottleneck once, whatever size it arrives at (real 256 px, generated 512 px)."""
    _, enc = _tiny_raddino_with_processor(tmp_path)
    big = SynthCXR(0, 64).sample(0).image  # (64, 64) in [0, 1]
    small = Image.fromarray(np.rint(big * 255).astype(np.uint8)).resize((20, 20), Image.BILINEAR)
    small = np.asarray(small, dtype=np.float64) / 255.0  # as a 20 px file would load
    a, b = enc._pixels(big[None, None]), enc._pixels(small[None, None])
    assert a.shape == (1, 3, 28, 28) and torch.equal(a, b)
    off = load_raddino(tmp_path, resize_first=None, device="cpu")
    assert not torch.equal(off._pixels(big[None, None]), off._pixels(small[None, None]))


def test_check_raddino_and_weights_that_do_not_match(tmp_path):
    _tiny_raddino_with_processor(tmp_path)
    line = check_raddino(tmp_path)
    assert (
        line.startswith(f"RadDino: {tmp_path}") and "299 x 299 (bilinear) -> 32 px bicubic" in line
    )
    assert "crop 28, mean 0.5307 std 0.2583" in line
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "num_hidden_layers": 2}))
    with pytest.raises(
        ValueError, match=r"weights do not match config\.json: missing .*layer\.1\."
    ):
        load_raddino(tmp_path, device="cpu")
    (tmp_path / "config.json").write_text(json.dumps({**config, "model_type": "vit"}))
    with pytest.raises(ValueError, match="expected 'dinov2'"):
        check_raddino(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "preprocessor_config.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"no preprocessor_config\.json"):
        check_raddino(tmp_path)
