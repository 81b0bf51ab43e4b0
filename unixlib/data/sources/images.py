"""Image I/O for the manifest's image cache: load anything -> float [0, 1] -> square 8-bit PNG.

Every source turns its images (PNG/JPG of any bit depth, RGB or gray, or DICOM) into one
cache format: an 8-bit grayscale PNG of ``size x size``, the longer side resized to ``size``
and the shorter side padded symmetrically, so the anatomy is never stretched. The default pad
value is 0.0 (black): radiographs already have dark borders (collimation, air), and MIMIC-CXR-JPG
and most public sets letterbox with black, so padding adds no new kind of edge.

PIL and numpy (pydicom for DICOM). A file that cannot be loaded raises :class:`ImageError` with a
short reason (the text before any ``(detail)`` names its kind, as ``rejects.csv`` groups them):
"file not found", "empty file", "not an image", "image too large", "unreadable or truncated image".
"""

from __future__ import annotations

import contextlib
import os
import re
import struct
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image, UnidentifiedImageError
from pydicom.errors import BytesLengthException, InvalidDicomError

from unixlib.data.sources.dicom import DicomError, read_dicom

DICOM_SUFFIXES = frozenset({".dcm", ".dicom"})
DEFAULT_PAD_VALUE = 0.0

# PIL mode -> the value that maps to 1.0. 16-bit PNGs open as "I;16*" (or "I" in some
# Pillow versions: those values are still 16-bit, checked below).
_FULL_SCALE = {"L": 255.0, "I;16": 65535.0, "I;16B": 65535.0, "I;16L": 65535.0, "I": 65535.0}
# Detectors store 10/12/14 bits in a 16-bit container; dividing a 12-bit image by 65535
# leaves it at most 1/16 bright. The bit depth actually used comes from the PNG's sBIT chunk
# when written, else from the largest value: the smallest of these depths that holds it.
_STORED_BITS = (10, 12, 14, 16)
# Modes converted to 8-bit luma first (ITU-R 601-2: L = 0.299 R + 0.587 G + 0.114 B);
# alpha is dropped, since radiographs carry no meaningful transparency.
_TO_LUMA = frozenset({"1", "P", "RGB", "RGBA", "RGBX", "LA", "La", "PA", "YCbCr"})
# The most pixels an image may declare; larger ones are rejected from the header, before any
# pixel is decoded, so a decompression bomb (a small file declaring 50,000 x 50,000 px) never
# allocates gigabytes. 2**25 (5,792 px square) is above every chest detector (43 cm at 0.1 mm is
# 4,300 px a side) and keeps a 16-bit image at the limit under ~0.5 GB while it is converted.
MAX_IMAGE_PIXELS = 2**25


class ImageError(ValueError):
    """An image file that cannot be loaded; ``path`` and ``reason`` say why."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def is_dicom(path: str | os.PathLike) -> bool:
    """True for a ``.dcm``/``.dicom`` name or a file with the ``DICM`` preamble marker."""
    path = Path(path)
    if path.suffix.lower() in DICOM_SUFFIXES:
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Load a radiograph as float32 (H, W) in [0, 1], 1 = white.

    PNG/JPG/other PIL formats: 8-bit divided by 255, colour converted to luma; 16-bit by
    ``2 ** bits - 1`` for the bit depth actually used (:func:`_bits_used`: a 12-bit image in
    a 16-bit PNG is divided by 4095, not 65535).
    DICOM: :func:`unixlib.data.sources.dicom.read_dicom` (raises ``DicomError``).
    Raises :class:`ImageError` for a missing, unreadable, truncated or unsupported file.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageError(path, "a folder, not an image file" if path.is_dir() else "file not found")
    if path.stat().st_size == 0:
        raise ImageError(path, "empty file (0 bytes)")
    if is_dicom(path):
        _check_size(path, _dicom_size(path))
        return _read_dicom(path)
    try:
        with _quiet_bomb_warning(), Image.open(path) as img:
            _check_size(path, img.size)  # from the header: nothing decoded yet
            img.load()  # decode now, so truncated files fail here and not later
            if img.mode in _TO_LUMA:
                img = img.convert("L")
            if img.mode not in _FULL_SCALE:
                raise ImageError(path, f"unsupported image mode {img.mode!r}")
            array = np.asarray(img, dtype=np.float64)
            full_scale = _FULL_SCALE[img.mode]
            if full_scale > 255.0:
                full_scale = 2.0 ** _bits_used(path, img.format, array) - 1.0
    except ImageError:
        raise
    except Image.DecompressionBombError as err:  # PIL's own, far larger limit, met at open
        declared = re.search(r"\((\d+) pixels\)", str(err))
        n = f"{int(declared.group(1)):,} px" if declared else str(err)
        raise ImageError(
            path, f"image too large ({n} declared; limit {MAX_IMAGE_PIXELS:,})"
        ) from err
    except UnidentifiedImageError as err:
        if _has_image_signature(path):  # e.g. a PNG whose header chunk is broken
            raise ImageError(path, f"unreadable or truncated image ({err})") from err
        raise ImageError(path, "not an image (not a format PIL reads, nor DICOM)") from err
    except (OSError, SyntaxError) as err:
        raise ImageError(path, f"unreadable or truncated image ({err})") from err
    except (ValueError, EOFError, struct.error) as err:  # a malformed header PIL half parsed
        reason = f"unreadable or truncated image ({type(err).__name__}: {err})"
        raise ImageError(path, reason) from err
    if array.ndim != 2:
        raise ImageError(path, f"decoded to shape {array.shape}; expected (H, W)")
    if array.min() < 0 or array.max() > full_scale:
        raise ImageError(path, f"pixel values outside [0, {full_scale:.0f}] for its bit depth")
    return (array / full_scale).astype(np.float32)


# The first bytes of the image formats radiographs come in (PNG, JPEG, TIFF, BMP, GIF, JPEG 2000)
_SIGNATURES = (
    b"\x89PNG",
    b"\xff\xd8\xff",
    b"II*\x00",
    b"MM\x00*",
    b"BM",
    b"GIF8",
    b"\x00\x00\x00\x0cjP",
)


def _has_image_signature(path: Path) -> bool:
    """True when the file starts like an image file (so a broken one is "truncated", not "not
    an image")."""
    with open(path, "rb") as f:
        head = f.read(12)
    return head.startswith(_SIGNATURES)


@contextlib.contextmanager
def _quiet_bomb_warning() -> Iterator[None]:
    """PIL warns at open above its own pixel limit; ours is lower and the ImageError says it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        yield


def _check_size(path: Path, size: tuple[int, int] | None) -> None:
    """Raise ImageError when a declared (width, height) exceeds :data:`MAX_IMAGE_PIXELS`."""
    if size is None:
        return
    width, height = size
    if width * height > MAX_IMAGE_PIXELS:
        raise ImageError(
            path,
            f"image too large ({width} x {height} = {width * height:,} px declared; "
            f"limit {MAX_IMAGE_PIXELS:,})",
        )


# What pydicom raises, beyond what read_dicom turns into DicomError, on a corrupt file (a missing
# Rows element, an odd value length, an unknown VR read lazily): a corrupt input, not a bug here.
_DICOM_FAILURES = (
    AttributeError,
    NotImplementedError,
    RuntimeError,
    ValueError,
    KeyError,
    IndexError,
    TypeError,
    EOFError,
    OSError,
    struct.error,
    BytesLengthException,
)


def _read_dicom(path: Path) -> np.ndarray:
    """:func:`read_dicom`, every failure on a corrupt file a ``DicomError`` naming its kind."""
    try:
        return read_dicom(path)
    except DicomError:
        raise
    except _DICOM_FAILURES as err:
        raise DicomError(path, f"not a readable DICOM file ({type(err).__name__}: {err})") from err


def _dicom_size(path: Path) -> tuple[int, int] | None:
    """(Columns, Rows) from a DICOM header without reading its pixel data; None when the header
    cannot be read (``read_dicom`` then says why)."""
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["Rows", "Columns"])
        return int(ds.Columns), int(ds.Rows)
    except (InvalidDicomError, *_DICOM_FAILURES):
        return None


def png_significant_bits(path: str | os.PathLike) -> int | None:
    """The gray channel's significant bits from a PNG's ``sBIT`` chunk (None when absent)."""
    with open(path, "rb") as f:
        if f.read(8) != b"\x89PNG\r\n\x1a\n":
            return None
        while header := f.read(8):
            if len(header) < 8:
                return None
            length, kind = struct.unpack(">I4s", header)
            if kind == b"sBIT":
                return f.read(length)[0] or None
            if kind in (b"IDAT", b"IEND"):
                return None  # sBIT must come before the image data
            f.seek(length + 4, os.SEEK_CUR)  # the chunk's data and CRC
    return None


def _bits_used(path: Path, fmt: str | None, array: np.ndarray) -> int:
    """Bit depth of a 16-bit image: the PNG's sBIT when given, else the smallest of
    :data:`_STORED_BITS` that holds the largest value."""
    bits = png_significant_bits(path) if fmt == "PNG" else None
    if bits is not None and 8 < bits <= 16:
        return bits
    top = float(array.max()) if array.size else 0.0
    return next(b for b in _STORED_BITS if top <= 2**b - 1 or b == 16)


def to_square(img: np.ndarray, size: int, pad_value: float = DEFAULT_PAD_VALUE) -> np.ndarray:
    """Resize (H, W) so the longer side is ``size``, then pad to (size, size), centred.

    Aspect is kept; the padding (``pad_value`` in [0, 1]) goes half to each side, the odd
    pixel to the bottom/right. Resampling is Lanczos (anti-aliased when shrinking), clipped
    back to [0, 1] because Lanczos overshoots at edges. Returns float32 (size, size).
    """
    if img.ndim != 2:
        raise ValueError(f"expected a (H, W) image, got shape {img.shape}")
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    if not 0.0 <= pad_value <= 1.0:
        raise ValueError(f"pad_value must be in [0, 1], got {pad_value}")
    h, w = img.shape
    scale = size / max(h, w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    if (new_h, new_w) != (h, w):
        resized = Image.fromarray(img.astype(np.float32)).resize(
            (new_w, new_h), Image.Resampling.LANCZOS
        )
        img = np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)
    out = np.full((size, size), pad_value, dtype=np.float32)
    top, left = (size - new_h) // 2, (size - new_w) // 2
    out[top : top + new_h, left : left + new_w] = img
    return out


def save_png8(img: np.ndarray, path: str | os.PathLike) -> None:
    """Write a float (H, W) image in [0, 1] as an 8-bit grayscale PNG (values rounded).

    The file appears atomically (written beside, then renamed), so an interrupted run never
    leaves a half-written cache file behind.
    """
    if img.ndim != 2:
        raise ValueError(f"expected a (H, W) image, got shape {img.shape}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.rint(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)
    tmp = path.with_name(path.name + ".tmp")
    Image.fromarray(pixels).save(tmp, format="PNG")
    os.replace(tmp, path)


def cache_square_png(
    src: str | os.PathLike, dst: str | os.PathLike, size: int, pad_value: float = DEFAULT_PAD_VALUE
) -> None:
    """Load ``src`` (any format above), square it to ``size`` and save it as 8-bit PNG ``dst``."""
    save_png8(to_square(load_image(src), size, pad_value), dst)
