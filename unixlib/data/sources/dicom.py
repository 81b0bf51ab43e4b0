"""Read a chest radiograph from DICOM as a display-ready float image in [0, 1].

The pipeline follows the DICOM grayscale rendering chain (PS3.3 C.11 and PS3.4 N.2):

1. stored values -> *Modality LUT* (Modality LUT Sequence, else Rescale Slope/Intercept),
   giving modality units;
2. modality units -> *VOI LUT* (VOI LUT Sequence, else the first Window Center/Width pair
   with its VOI LUT Function, else min-max over the image), giving [0, 1];
3. MONOCHROME1 (high value = dark) is inverted, so 1.0 is always white (dense/bone).

Compressed transfer syntaxes (JPEG baseline/lossless, JPEG-LS, JPEG 2000) decode through the
pylibjpeg plugins that pydicom finds on its own. Every failure raises :class:`DicomError`
naming the file and the reason.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_modality_lut, apply_voi

# Decoding errors pydicom and its plugins raise on broken input (truncated fragments, bad
# headers, no decoder for the transfer syntax).
_DECODE_ERRORS = (InvalidDicomError, OSError, EOFError, ValueError, RuntimeError, KeyError)


class DicomError(ValueError):
    """A DICOM file that cannot be turned into an image; ``path`` and ``reason`` say why."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def read_dicom(path: str | os.PathLike) -> np.ndarray:
    """Read a single-frame grayscale DICOM image.

    Returns a float32 array of shape (Rows, Columns) in [0, 1] where 1 is white, after the
    Modality LUT, the VOI LUT/window and MONOCHROME1 inversion (module docstring).
    Raises :class:`DicomError` for unreadable or truncated files, files without pixel data,
    multi-frame files and photometric interpretations other than MONOCHROME1/2.
    """
    path = Path(path)
    try:
        ds = pydicom.dcmread(path)
    except _DECODE_ERRORS as err:
        raise DicomError(path, f"not a readable DICOM file ({type(err).__name__}: {err})") from err
    if "PixelData" not in ds:
        raise DicomError(path, "no pixel data (PixelData element missing)")
    photometric = str(ds.get("PhotometricInterpretation", "")).strip()
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise DicomError(
            path, f"unsupported photometric interpretation {photometric or '(missing)'!r}"
        )
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames != 1:
        raise DicomError(path, f"multi-frame image ({frames} frames); expected one frame")
    try:
        stored = ds.pixel_array
    except _DECODE_ERRORS as err:
        raise DicomError(
            path, f"pixel data cannot be decoded, file truncated or corrupt ({err})"
        ) from err
    if stored.ndim != 2:
        raise DicomError(path, f"pixel array has shape {stored.shape}; expected (rows, columns)")

    try:
        modality = np.asarray(apply_modality_lut(stored, ds), dtype=np.float64)
        image = _apply_voi(modality, ds)
    except (ValueError, KeyError, IndexError, AttributeError) as err:
        raise DicomError(path, f"invalid Modality/VOI LUT attributes ({err})") from err
    if photometric == "MONOCHROME1":
        image = 1.0 - image
    return image.astype(np.float32)


def _apply_voi(x: np.ndarray, ds: pydicom.Dataset) -> np.ndarray:
    """Map modality values to [0, 1]: VOI LUT Sequence > window > min-max (first item wins)."""
    if "VOILUTSequence" in ds and len(ds.VOILUTSequence) > 0:
        item = ds.VOILUTSequence[0]
        # LUT Descriptor = (entries, first mapped value, bits per entry); the output range
        # of the LUT is [0, 2**bits - 1] (PS3.3 C.11.2.1.1).
        bits = int(item.LUTDescriptor[2])
        # pydicom.apply_voi does the table lookup incl. clamping below/above the first/last
        # mapped value. A LUT is indexed by integers, so modality values are rounded first.
        table = apply_voi(np.rint(x).astype(np.int64), ds, index=0).astype(np.float64)
        return np.clip(table / (2**bits - 1), 0.0, 1.0)
    if "WindowCenter" in ds and "WindowWidth" in ds:
        center = _first_value(ds.WindowCenter)
        width = _first_value(ds.WindowWidth)
        function = str(ds.get("VOILUTFunction", "LINEAR")).strip().upper() or "LINEAR"
        return apply_window(x, center, width, function)
    return minmax(x)


def _first_value(value: object) -> float:
    """Window Center/Width may be multi-valued; the first pair is the default (PS3.3 C.11.2.1.2)."""
    if isinstance(value, pydicom.multival.MultiValue):
        return float(value[0])
    return float(value)


def apply_window(
    x: np.ndarray, center: float, width: float, function: str = "LINEAR"
) -> np.ndarray:
    """The DICOM VOI window (PS3.3 C.11.2.1.2) mapped to [0, 1] instead of the output bit range.

    ``LINEAR``: 0 for ``x <= c - 0.5 - (w - 1) / 2``, 1 for ``x > c - 0.5 + (w - 1) / 2``,
    else ``(x - (c - 0.5)) / (w - 1) + 0.5``. ``LINEAR_EXACT``: 0/1 outside ``c -+ w / 2``,
    else ``(x - c) / w + 0.5``. ``SIGMOID``: ``1 / (1 + exp(-4 (x - c) / w))``.
    """
    x = np.asarray(x, dtype=np.float64)
    if function == "LINEAR":
        if width < 1:
            raise ValueError(f"LINEAR window width must be >= 1, got {width}")
        if width == 1:  # a step at the center (w - 1 = 0 would divide by zero)
            return (x > center - 0.5).astype(np.float64)
        return np.clip((x - (center - 0.5)) / (width - 1) + 0.5, 0.0, 1.0)
    if function == "LINEAR_EXACT":
        if width <= 0:
            raise ValueError(f"LINEAR_EXACT window width must be > 0, got {width}")
        return np.clip((x - center) / width + 0.5, 0.0, 1.0)
    if function == "SIGMOID":
        if width <= 0:
            raise ValueError(f"SIGMOID window width must be > 0, got {width}")
        return 1.0 / (1.0 + np.exp(-4.0 * (x - center) / width))
    raise ValueError(f"unknown VOI LUT Function {function!r}")


def minmax(x: np.ndarray) -> np.ndarray:
    """Scale to [0, 1] by the image's own range; a constant image maps to all zeros."""
    x = np.asarray(x, dtype=np.float64)
    lo, hi = float(x.min()), float(x.max())
    if hi <= lo:
        return np.zeros_like(x)
    return (x - lo) / (hi - lo)
