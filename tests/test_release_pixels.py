"""Generated images as the release saves and its scorers read them (issue 22 item 9): the
decoder's RGB, 8-bit by truncation, read as RGB by RadDino (CheXGenBench) and as luma by
BioViL-T (hi-ml), where ours averaged the channels to gray."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from test_biovil import _write as write_biovil
from test_eval_encoders import _tiny_raddino_with_processor

from unixlib.eval.biovil import BioViLT, _remap_to_uint8, _resize_crop, preprocess_image
from unixlib.experiments.evaluators import ImageSets, luma
from unixlib.experiments.samples import generate_images
from unixlib.model.vae import VAEWrapper, build_autoencoder, tiny_autoencoder_config


def _rgb(n: int = 2, size: int = 40, seed: int = 0) -> np.ndarray:
    """(n, 3, size, size) uint8 with channels that differ a little, as a decoder's do."""
    rng = np.random.default_rng(seed)
    gray = rng.integers(20, 230, (n, 1, size, size))
    return (gray + rng.integers(-6, 7, (n, 3, size, size))).clip(0, 255).astype(np.uint8)


def test_luma_is_pil_s_l_conversion() -> None:
    rgb = _rgb(3)
    for i in range(3):
        pil = Image.fromarray(rgb[i].transpose(1, 2, 0)).convert("L")
        np.testing.assert_array_equal(luma(rgb)[i], np.asarray(pil, np.float32) / 255)
    sets = ImageSets()
    sets.add("ours", np.full((2, 4, 4), 0.5, np.float32))
    sets.add("release", rgb)
    assert sets.rgb == {"release": rgb} and np.array_equal(sets["release"], luma(rgb))
    assert np.array_equal(sets["ours"], np.full((2, 4, 4), 0.5, np.float32))


def test_an_rgb_decoder_keeps_its_channels_when_asked() -> None:
    torch.manual_seed(0)
    cfg = tiny_autoencoder_config(latent_channels=4, downsample=4)
    vae = VAEWrapper(build_autoencoder(cfg | {"in_channels": 3, "out_channels": 3}), 1.0, 0.0)
    z = torch.randn(2, 4, 4, 4)
    rgb, gray = vae.decode(z, rgb=True), vae.decode(z)
    assert rgb.shape == (2, 3, 16, 16) and gray.shape == (2, 1, 16, 16)
    assert torch.allclose(rgb.mean(dim=1, keepdim=True), gray, atol=1e-6)


class _Fixed(torch.nn.Module):
    """A stand-in model whose decoder 'draws' fixed RGB values."""

    def __init__(self, values: torch.Tensor) -> None:
        super().__init__()
        self.values = values  # (3,) in [0, 1]
        self.config = type("C", (), {"sequence_layout": "ours"})()

    def generate_image(self, ids, rgb=False, **kw) -> torch.Tensor:
        out = self.values.view(1, 3, 1, 1).expand(len(ids), 3, 2, 2)
        return out if rgb else out.mean(dim=1, keepdim=True)


def test_generations_are_saved_as_the_release_saves_them() -> None:
    from unixlib.data.text.tokenizer import train_bpe

    tok = train_bpe(["FINDINGS: clear."] * 4, vocab_size=260)
    model = _Fixed(torch.tensor([0.5, 0.9999, 1.2]))
    u8 = generate_images(model, ["a", "b"], tok, release_pixels=True)
    assert u8.dtype == np.uint8 and u8.shape == (2, 3, 2, 2)
    assert u8[0, :, 0, 0].tolist() == [127, 254, 255]  # truncation (not 128, 255), clipped
    gray = generate_images(model, ["a"], tok)
    assert gray.shape == (1, 2, 2) and np.allclose(
        gray, (0.5 + 0.9999 + 1.2) / 3
    )  # mean, then clip


def test_raddino_reads_the_release_s_rgb_as_chexgenbench_does(tmp_path) -> None:
    processor, enc = _tiny_raddino_with_processor(tmp_path)  # 20 px stands in for 299
    rgb = _rgb()
    squeezed = [
        Image.fromarray(a.transpose(1, 2, 0)).resize((20, 20), Image.BILINEAR) for a in rgb
    ]  # CheXGenBench: .convert("RGB") of the PNG, Resize((299, 299)), then the processor
    pixels = processor(images=squeezed, return_tensors="pt").pixel_values
    with torch.no_grad():
        expected = enc.model(pixel_values=pixels).pooler_output.numpy()
    np.testing.assert_allclose(enc.image_features(rgb), expected, atol=1e-5)
    # three equal channels read like the gray image they are
    gray = rgb[:, :1].repeat(3, axis=1)
    np.testing.assert_allclose(
        enc.image_features(gray), enc.image_features(rgb[:, :1] / 255.0), atol=1e-6
    )


def test_biovil_reads_the_release_s_rgb_as_hi_ml_does(tmp_path) -> None:
    rgb = _rgb(1)[0]  # (3, H, W)
    pil = Image.fromarray(_remap_to_uint8(rgb.transpose(1, 2, 0))).convert("L")
    assert torch.equal(preprocess_image(rgb), _resize_crop(pil))
    bio = BioViLT(write_biovil(tmp_path / "biovil"), device="cpu")
    assert bio.image_embed(_rgb(2)).shape == (2, 8)
