"""Image loading (8/16-bit, RGB), squaring with padding, 8-bit PNG cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from batch_helpers import BAD, mixed_images, png_declaring
from PIL import Image, PngImagePlugin
from test_dicom import write_dicom

from unixlib.data.sources.dicom import DicomError
from unixlib.data.sources.images import (
    MAX_IMAGE_PIXELS,
    ImageError,
    cache_square_png,
    load_image,
    png_significant_bits,
    save_png8,
    to_square,
)


def test_load_8bit_16bit_and_rgb(tmp_path: Path) -> None:
    Image.fromarray(np.array([[0, 51, 255]], dtype=np.uint8)).save(tmp_path / "g8.png")
    np.testing.assert_allclose(load_image(tmp_path / "g8.png"), [[0.0, 0.2, 1.0]], atol=1e-7)

    Image.fromarray(np.array([[0, 13107, 65535]], dtype=np.uint16)).save(tmp_path / "g16.png")
    out = load_image(tmp_path / "g16.png")
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.0, 0.2, 1.0]], atol=1e-7)

    # Pure red -> luma 0.299 * 255 = 76.245 -> 76 (PIL rounds to 8 bits).
    rgb = np.zeros((2, 3, 3), dtype=np.uint8)
    rgb[..., 0] = 255
    Image.fromarray(rgb).save(tmp_path / "red.png")
    np.testing.assert_allclose(load_image(tmp_path / "red.png"), np.full((2, 3), 76 / 255))


def test_bad_files_raise_image_error(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="file not found"):
        load_image(tmp_path / "missing.png")
    Image.fromarray(np.zeros((64, 64), dtype=np.uint8)).save(tmp_path / "ok.jpg")
    (tmp_path / "cut.jpg").write_bytes((tmp_path / "ok.jpg").read_bytes()[:200])
    with pytest.raises(ImageError, match=r"cut\.jpg: unreadable or truncated image"):
        load_image(tmp_path / "cut.jpg")
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(ImageError, match=r"text\.png: not an image \(not a format PIL reads"):
        load_image(tmp_path / "text.png")
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageError, match=r"empty\.jpg: empty file \(0 bytes\)"):
        load_image(tmp_path / "empty.jpg")


def test_mixed_folder_good_files_load_alike_and_bad_ones_say_why(tmp_path: Path) -> None:
    """The batch tests' folder: 8-bit, 12-bit-in-16 and RGBA copies of one picture load as the
    same image; every bad file raises its reason."""
    files = mixed_images(tmp_path)
    gray8 = load_image(files["gray8.png"])
    np.testing.assert_allclose(load_image(files["gray16.png"]), gray8, atol=0.6 / 255)
    np.testing.assert_array_equal(load_image(files["rgba.png"]), gray8)  # alpha dropped
    assert load_image(files["scan.dcm"]).shape == gray8.shape
    for name, reason in BAD.items():
        with pytest.raises((ImageError, DicomError)) as caught:
            load_image(files[name])
        assert caught.value.reason.startswith(reason), (name, caught.value.reason)


def test_oversized_images_are_rejected_from_the_header(tmp_path: Path) -> None:
    """Above MAX_IMAGE_PIXELS nothing is decoded: PIL's own bomb limit (~179M px) and ours
    (33.5M px) both end as "image too large", and a DICOM header is checked the same way.
    The files hold 64 bytes of pixel data: decoding them would say "truncated" instead."""
    side = int(MAX_IMAGE_PIXELS**0.5) + 1  # just over the limit, far under PIL's
    with pytest.raises(ImageError, match=rf"image too large \({side} x {side} = "):
        load_image(png_declaring(tmp_path / "a.png", side, side))
    with pytest.raises(ImageError, match=r"image too large \(1,000,000,000,000 px declared"):
        load_image(png_declaring(tmp_path / "b.png", 1_000_000, 1_000_000))
    dcm = write_dicom(tmp_path / "c.dcm", np.zeros((4, 4), np.uint16), Rows=40_000, Columns=30_000)
    with pytest.raises(ImageError, match=r"image too large \(30000 x 40000 = 1,200,000,000 px"):
        load_image(dcm)
    ok = side - 2
    assert ok * ok <= MAX_IMAGE_PIXELS  # at the limit the header passes and decoding fails
    with pytest.raises(ImageError, match="unreadable or truncated"):
        load_image(png_declaring(tmp_path / "d.png", ok, ok))


def test_to_square_keeps_aspect_and_pads() -> None:
    wide = np.ones((2, 8), dtype=np.float32)  # -> resized to (1, 4), padded to 4 x 4
    out = to_square(wide, 4, pad_value=0.25)
    assert out.shape == (4, 4) and out.dtype == np.float32
    # (4 - 1) // 2 = 1 row on top, 2 below: the odd pixel goes to the bottom.
    np.testing.assert_allclose(out[:, 0], [0.25, 1.0, 0.25, 0.25])
    tall = np.ones((6, 3), dtype=np.float32)  # already the right height: no resampling
    np.testing.assert_allclose(to_square(tall, 6)[0], [0, 1, 1, 1, 0, 0])
    with pytest.raises(ValueError, match="pad_value"):
        to_square(wide, 4, pad_value=2.0)


def test_save_png8_rounds_and_clips(tmp_path: Path) -> None:
    save_png8(np.array([[-1.0, 0.5, 0.999, 2.0]], dtype=np.float32), tmp_path / "a" / "x.png")
    with Image.open(tmp_path / "a" / "x.png") as img:
        assert img.mode == "L"
        np.testing.assert_array_equal(np.asarray(img), [[0, 128, 255, 255]])
    assert not list((tmp_path / "a").glob("*.tmp"))  # the atomic write left nothing behind


def test_cache_square_png(tmp_path: Path) -> None:
    Image.fromarray(np.full((30, 60), 200, dtype=np.uint8)).save(tmp_path / "in.png")
    cache_square_png(tmp_path / "in.png", tmp_path / "out.png", 20)
    with Image.open(tmp_path / "out.png") as img:
        pixels = np.asarray(img)
    assert pixels.shape == (20, 20)
    assert (pixels[:5] == 0).all() and (pixels[15:] == 0).all()  # 10 rows of image, centred
    assert (pixels[5:15] == 200).all()


def _png16(path: Path, values: list[int], sbit: int | None = None) -> Path:
    """A 16-bit grayscale PNG, with an sBIT chunk when ``sbit`` is given."""
    info = PngImagePlugin.PngInfo()
    if sbit is not None:
        info.add(b"sBIT", bytes([sbit]))
    Image.fromarray(np.array([values], dtype=np.uint16)).save(path, pnginfo=info)
    return path


def test_12bit_image_in_16bit_png_scales_by_bits_used(tmp_path: Path) -> None:
    # no sBIT: the largest value (4095) says 12 bits, so 4095 is white, not 1/16 grey
    out = load_image(_png16(tmp_path / "a.png", [0, 2048, 4095]))
    np.testing.assert_allclose(out, [[0.0, 2048 / 4095, 1.0]], atol=1e-7)
    # a dark 12-bit image: the sBIT chunk gives the depth (the maximum alone would say 10)
    dark = _png16(tmp_path / "b.png", [0, 100, 1000], sbit=12)
    assert png_significant_bits(dark) == 12
    np.testing.assert_allclose(load_image(dark), [[0.0, 100 / 4095, 1000 / 4095]], atol=1e-7)
    no_sbit = _png16(tmp_path / "c.png", [0, 100, 1000])
    assert png_significant_bits(no_sbit) is None
    np.testing.assert_allclose(load_image(no_sbit), [[0.0, 100 / 1023, 1000 / 1023]], atol=1e-7)
    # a true 16-bit image keeps 65535
    full = _png16(tmp_path / "d.png", [0, 5000, 65535], sbit=16)
    np.testing.assert_allclose(load_image(full), [[0.0, 5000 / 65535, 1.0]], atol=1e-7)
    # the 8-bit cache of a 12-bit image uses the whole range
    cache_square_png(tmp_path / "a.png", tmp_path / "a8.png", size=3)
    assert np.asarray(Image.open(tmp_path / "a8.png")).max() == 255


def test_every_failure_on_a_corrupt_dicom_is_a_dicom_error(tmp_path: Path) -> None:
    """pydicom fails a DICOM without Rows with an AttributeError; a batch must see a reason."""
    path = write_dicom(tmp_path / "a.dcm", np.zeros((4, 4), np.uint16))
    ds = pydicom.dcmread(path)
    del ds.Rows
    ds.save_as(path)
    with pytest.raises(DicomError, match=r"a\.dcm: not a readable DICOM file \(AttributeError"):
        load_image(path)
    (tmp_path / "folder.png").mkdir()
    with pytest.raises(ImageError, match="a folder, not an image file"):
        load_image(tmp_path / "folder.png")
