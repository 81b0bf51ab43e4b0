"""DICOM -> float image: Modality LUT, VOI LUT / window, MONOCHROME1, errors.

Generated files have hand-computed expectations; the real files in ../shared/data check
compressed transfer syntaxes and the LUT-sequence code paths.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

from unixlib.data.sources.dicom import DicomError, apply_window, read_dicom
from unixlib.data.sources.images import load_image


def write_dicom(path: Path, pixels: np.ndarray, bits_stored: int = 12, **attrs: object) -> Path:
    """An uncompressed single-frame grayscale DICOM with the given stored values."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "CR"
    ds.Rows, ds.Columns = pixels.shape[-2:]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 1 if pixels.dtype == np.int16 else 0
    for key, value in attrs.items():
        setattr(ds, key, value)
    ds.PixelData = pixels.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def test_minmax_when_no_window(tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "a.dcm", np.array([[0, 1000], [2000, 4000]], dtype=np.uint16))
    out = read_dicom(path)
    assert out.dtype == np.float32 and out.shape == (2, 2)
    np.testing.assert_allclose(out, [[0.0, 0.25], [0.5, 1.0]], atol=1e-7)


def test_rescale_then_linear_window(tmp_path: Path) -> None:
    # modality = 2 * stored - 1000 = [-1000, 0, 1000, 2000]; window c = 0.5, w = 2001:
    # y = (x - 0) / 2000 + 0.5 -> [0, 0.5, 1, 1 (clipped)].
    pixels = np.array([[0, 500], [1000, 1500]], dtype=np.uint16)
    attrs = dict(RescaleSlope=2, RescaleIntercept=-1000, WindowCenter=0.5, WindowWidth=2001)
    out = read_dicom(write_dicom(tmp_path / "w.dcm", pixels, **attrs))
    np.testing.assert_allclose(out, [[0.0, 0.5], [1.0, 1.0]], atol=1e-7)


def test_multivalued_window_uses_first_pair(tmp_path: Path) -> None:
    pixels = np.array([[0, 500], [1000, 1500]], dtype=np.uint16)
    attrs = dict(
        RescaleSlope=2, RescaleIntercept=-1000, WindowCenter=[0.5, 9999], WindowWidth=[2001, 10]
    )
    out = read_dicom(write_dicom(tmp_path / "w2.dcm", pixels, **attrs))
    np.testing.assert_allclose(out, [[0.0, 0.5], [1.0, 1.0]], atol=1e-7)


def test_signed_16bit_linear_exact(tmp_path: Path) -> None:
    # LINEAR_EXACT c = 0, w = 100: y = x / 100 + 0.5 -> [0, 0.5, 0.75, 1 (clipped)].
    pixels = np.array([[-50, 0], [25, 30000]], dtype=np.int16)
    attrs = dict(WindowCenter=0, WindowWidth=100, VOILUTFunction="LINEAR_EXACT")
    out = read_dicom(write_dicom(tmp_path / "s.dcm", pixels, bits_stored=16, **attrs))
    np.testing.assert_allclose(out, [[0.0, 0.5], [0.75, 1.0]], atol=1e-7)


def test_monochrome1_is_inverted(tmp_path: Path) -> None:
    pixels = np.array([[0, 1000], [2000, 4000]], dtype=np.uint16)
    path = write_dicom(tmp_path / "m1.dcm", pixels, PhotometricInterpretation="MONOCHROME1")
    np.testing.assert_allclose(read_dicom(path), [[1.0, 0.75], [0.5, 0.0]], atol=1e-7)


def _lut_item(descriptor: list[int], data: list[int]) -> pydicom.Dataset:
    item = pydicom.Dataset()
    item.add_new(0x00283002, "US", descriptor)  # LUT Descriptor: ambiguous VR, set explicitly
    item.add_new(0x00283006, "US", data)  # LUT Data
    return item


def test_voi_lut_sequence_lookup_and_clamp(tmp_path: Path) -> None:
    # Descriptor (4 entries, first mapped value 10, 8 bits): stored 5 -> below -> entry 0,
    # 10 -> entry 0, 12 -> entry 2, 20 -> above -> entry 3; values / 255.
    pixels = np.array([[5, 10], [12, 20]], dtype=np.uint16)
    voi = pydicom.Sequence([_lut_item([4, 10, 8], [0, 100, 200, 255])])
    # A window is present too: the LUT wins (PS3.3 C.11.2: the sequence is preferred here).
    out = read_dicom(
        write_dicom(tmp_path / "v.dcm", pixels, VOILUTSequence=voi, WindowCenter=0, WindowWidth=2)
    )
    np.testing.assert_allclose(out, [[0.0, 0.0], [200 / 255, 1.0]], atol=1e-7)


def test_modality_lut_sequence_then_window(tmp_path: Path) -> None:
    # Modality LUT (3 entries from 0): [0, 1000, 4000]; stored 5 clamps to the last entry.
    # Window c = 2000.5, w = 4001: y = (x - 2000) / 4000 + 0.5 -> [0, 0.25, 1, 1].
    item = _lut_item([3, 0, 16], [0, 1000, 4000])
    item.ModalityLUTType = "US"
    pixels = np.array([[0, 1], [2, 5]], dtype=np.uint16)
    attrs = dict(
        ModalityLUTSequence=pydicom.Sequence([item]), WindowCenter=2000.5, WindowWidth=4001
    )
    out = read_dicom(write_dicom(tmp_path / "ml.dcm", pixels, **attrs))
    np.testing.assert_allclose(out, [[0.0, 0.25], [1.0, 1.0]], atol=1e-7)


def test_load_image_dispatches_dicom(tmp_path: Path) -> None:
    pixels = np.array([[0, 4095]], dtype=np.uint16)
    np.testing.assert_allclose(load_image(write_dicom(tmp_path / "x.dcm", pixels)), [[0.0, 1.0]])


def test_apply_window_functions() -> None:
    x = np.array([-100.0, 0.0, 100.0])
    np.testing.assert_allclose(apply_window(x, 0, 50, "SIGMOID")[1], 0.5)
    assert apply_window(x, 0, 50, "SIGMOID")[0] == pytest.approx(1 / (1 + np.exp(8)))
    np.testing.assert_allclose(apply_window(x, 0, 1, "LINEAR"), [0.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="unknown VOI LUT Function"):
        apply_window(x, 0, 50, "LOG")


def test_truncated_file_raises(tmp_path: Path) -> None:
    pixels = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64)
    path = write_dicom(tmp_path / "t.dcm", pixels)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 3000])  # cut into the pixel data
    with pytest.raises(DicomError, match=r"t\.dcm: .*truncated"):
        read_dicom(path)
    path.write_bytes(data[:100])  # cut inside the preamble
    with pytest.raises(DicomError, match="not a readable DICOM file"):
        read_dicom(path)


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        ({"PhotometricInterpretation": "RGB"}, "unsupported photometric interpretation 'RGB'"),
        ({"NumberOfFrames": 2}, "multi-frame image \\(2 frames\\)"),
    ],
)
def test_unsupported_files_raise(tmp_path: Path, attrs: dict, message: str) -> None:
    pixels = np.zeros((2, 4, 4), dtype=np.uint16)
    with pytest.raises(DicomError, match=message):
        read_dicom(write_dicom(tmp_path / "u.dcm", pixels, **attrs))


def test_no_pixel_data_raises(tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "n.dcm", np.zeros((2, 2), dtype=np.uint16))
    ds = pydicom.dcmread(path)
    del ds.PixelData
    ds.save_as(path)
    with pytest.raises(DicomError, match="no pixel data"):
        read_dicom(path)


# --- real files (../shared/data/realcxr/dicom) ---------------------------------------------


@pytest.fixture(scope="module")
def dicom_dir(shared_data: Path) -> Path:
    return shared_data / "realcxr" / "dicom"


@pytest.mark.shared
def test_rg1_jpeg2000_monochrome1_window(dicom_dir: Path) -> None:
    path = dicom_dir / "RG1_J2KI.dcm"
    raw = pydicom.dcmread(path).pixel_array.astype(np.float64)  # 15-bit stored, J2K decoded
    out = read_dicom(path)
    assert out.shape == (1955, 1841) and out.dtype == np.float32
    # Window 15000/30000 (LINEAR), then MONOCHROME1 inversion.
    expected = 1.0 - np.clip((raw - 14999.5) / 29999 + 0.5, 0, 1)
    np.testing.assert_allclose(out, expected, atol=1e-6)
    assert 0.1 < out.min() < out.max() < 1.0  # the window is wider than the data


@pytest.mark.shared
def test_siim_jpeg_monochrome2_and_fake_monochrome1(dicom_dir: Path) -> None:
    siim = read_dicom(next(dicom_dir.glob("SIIM_*.dcm")))
    raw = pydicom.dcmread(next(dicom_dir.glob("SIIM_*.dcm"))).pixel_array
    assert siim.shape == (1024, 1024)
    np.testing.assert_allclose(siim, raw / 255.0, atol=1e-6)  # 8-bit spanning 0..255: min-max
    fake = read_dicom(dicom_dir / "torchxrayvision_Fake_MONOHR1.dcm")
    np.testing.assert_allclose(fake, 1.0 - siim, atol=1e-6)


@pytest.mark.shared
def test_voi_lut_sequence(dicom_dir: Path) -> None:
    ds = pydicom.dcmread(dicom_dir / "lut_tests_not_cxr" / "vlut_04.dcm")
    item = ds.VOILUTSequence[0]
    n, first, bits = (int(v) for v in item.LUTDescriptor)
    lut = np.asarray(item.LUTData, dtype=np.float64)
    index = np.clip(ds.pixel_array.astype(np.int64) - first, 0, n - 1)
    out = read_dicom(dicom_dir / "lut_tests_not_cxr" / "vlut_04.dcm")
    np.testing.assert_allclose(out, lut[index] / (2**bits - 1), atol=1e-6)
    assert out.min() == 0.0 and out.max() == 1.0


@pytest.mark.shared
def test_modality_lut_sequence(dicom_dir: Path) -> None:
    ds = pydicom.dcmread(dicom_dir / "lut_tests_not_cxr" / "mlut_18.dcm")
    item = ds.ModalityLUTSequence[0]
    n, first, _ = (int(v) for v in item.LUTDescriptor)
    lut = np.asarray(item.LUTData, dtype=np.float64)
    modality = lut[np.clip(ds.pixel_array.astype(np.int64) - first, 0, n - 1)]
    expected = (modality - modality.min()) / (modality.max() - modality.min())  # no window: min-max
    np.testing.assert_allclose(
        read_dicom(dicom_dir / "lut_tests_not_cxr" / "mlut_18.dcm"), expected, atol=1e-6
    )
