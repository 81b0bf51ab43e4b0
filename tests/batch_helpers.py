"""A folder of good and bad image files for the batch commands' tests (not collected by pytest).

:func:`mixed_images` writes, side by side, what a folder of radiographs from a clinic may hold:
images that must work (8-bit gray, 16-bit gray, RGBA, DICOM) and files that must be rejected
with their reason (empty, truncated, not an image, a decompression bomb, a truncated DICOM),
so one call of a command sees all of them.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image
from test_dicom import write_dicom

# file name -> the start of its reason in rejects.csv (the files a command must reject)
BAD = {
    "empty.png": "empty file (0 bytes)",
    "truncated.png": "unreadable or truncated image",
    "notes.png": "not an image",
    "bomb.png": "image too large (2,500,000,000 px declared",
    "cut.dcm": "pixel data cannot be decoded",
}
# the files a command must use (16-bit scaled by its bit depth, RGBA converted to gray)
GOOD = ("gray8.png", "gray16.png", "rgba.png", "scan.dcm")


def _radiograph(h: int = 40, w: int = 32) -> np.ndarray:
    """A smooth (h, w) float image in [0.1, 0.9]: something to describe."""
    yy, xx = np.mgrid[0:h, 0:w]
    return (0.5 + 0.4 * np.sin(xx / 5.0) * np.cos(yy / 7.0)).astype(np.float32)


def png_declaring(path: Path, width: int, height: int) -> Path:
    """A tiny valid-looking 8-bit gray PNG whose header declares ``width x height`` pixels (a
    decompression bomb's shape: a few bytes on disk, gigabytes once decoded)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit gray, no interlace
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


def mixed_images(folder: Path) -> dict[str, Path]:
    """Write every file of :data:`GOOD` and :data:`BAD` into ``folder``; name -> path, in the
    order good and bad interleave (the order a command is given them)."""
    folder.mkdir(parents=True, exist_ok=True)
    img = _radiograph()
    gray = (img * 255).round().astype(np.uint8)
    Image.fromarray(gray).save(folder / "gray8.png")
    Image.fromarray((img * 4095).round().astype(np.uint16)).save(folder / "gray16.png")  # 12 bits
    rgba = np.stack([gray, gray, gray, np.full_like(gray, 128)], axis=-1)
    Image.fromarray(rgba, mode="RGBA").save(folder / "rgba.png")
    write_dicom(folder / "scan.dcm", (img * 4095).round().astype(np.uint16))

    (folder / "empty.png").write_bytes(b"")
    (folder / "truncated.png").write_bytes((folder / "gray8.png").read_bytes()[:60])
    (folder / "notes.png").write_text("Patient notes, not an image.\n")
    png_declaring(folder / "bomb.png", 50_000, 50_000)
    dicom = write_dicom(folder / "cut.dcm", (img * 4095).round().astype(np.uint16))
    dicom.write_bytes(dicom.read_bytes()[:-700])  # the pixel data cut short

    order = ["gray8.png", "empty.png", "gray16.png", "truncated.png", "rgba.png", "notes.png"]
    order += ["bomb.png", "scan.dcm", "cut.dcm"]
    return {name: folder / name for name in order}
