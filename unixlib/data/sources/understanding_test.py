"""The paper's understanding test set (Table 2): the official release's ``test_data.json``.

UniX evaluates its two tasks on two different MIMIC-CXR test sets. Generation (Table 3) uses the
LLaVA-Rad / CheXGenBench annotation CSV (4,352 report-image pairs; :mod:`.mimic`,
``test_annotations``). Understanding (Table 2) uses 2,365 frontal image-report pairs that the
official repository ships as ``eval/data/understanding/test_data.json`` (github.com/ZrH42/UniX).
Its format, one entry per pair::

    [{"messages": [{"role": "user", "content": "<image>Review this X-ray and provide ..."},
                   {"role": "assistant", "content": "FINDINGS: ... IMPRESSION: ..."}],
      "images": ["files/p10/p10715477/s55878458/<dicom_id>.jpg"]}, ...]

with the image path relative to the MIMIC-CXR-JPG root. The user turn varies from entry to entry
(several phrasings, asking for FINDINGS or FINDINGS and IMPRESSION); each image is prompted with
its own.

How the release uses it (read from its ``eval/base/dataset.py``, ``eval/base/worker.py``,
``eval/calculate_und_metrics.py`` and ``eval/und_metrics/``), and what we do:

* prompt: the user turn with ``"<image>"`` removed (``str.replace``, nothing else: no strip),
  passed as the text after the image. We do the same.
* reference: the assistant turn as it is, **section prefixes kept** ("FINDINGS: ...
  IMPRESSION: ..."); BLEU/ROUGE-L and CheXbert see that text (the metric script only strips
  whitespace and replaces U+FFFD by "?"). We keep it (stripped) and do not clean it: it is
  already the authors' cleaned report.
* the metric script skips a pair whose prediction is empty; we score every pair (an empty
  report has no findings), so a model that writes nothing is not rewarded.
* images: the release letterboxes each JPG into a 384 px RGBA square (aspect kept, centred);
  we use the same square cache as every other image (aspect kept, padded black,
  :mod:`.images`), resized to the ViT input.

:func:`read_understanding_test` is strict: a malformed entry is an error naming the file and
the entry index, and images missing under the MIMIC root are an error with examples and count
(Table 2 must be on exactly the released pairs, never on a silently smaller set).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

IMAGE_TAG = "<image>"
UNDERSTANDING_TEST_FILE = "understanding_test.parquet"  # what prepare writes from it
COLUMNS = ("id", "image", "prompt", "reference")


class UnderstandingTestError(ValueError):
    """``test_data.json`` is malformed or names images absent under the MIMIC root."""


def read_understanding_test(path: str | Path, root: str | Path) -> pd.DataFrame:
    """The pairs of a release ``test_data.json``, in file order.

    Args:
        path: the JSON file.
        root: the MIMIC-CXR-JPG root the entries' image paths are relative to.
    Returns:
        One row per entry: ``id`` (the dicom_id, the image file's stem), ``image`` (its path
        under ``root``, as a string), ``prompt`` (the user turn without ``"<image>"``) and
        ``reference`` (the assistant turn, stripped).
    Raises:
        FileNotFoundError: no file at ``path``.
        UnderstandingTestError: invalid JSON, a malformed entry (file and index named), a
            duplicate image, or images not found under ``root`` (up to 3 named, and the count).
    """
    path, root = Path(path), Path(root)
    if not path.is_file():
        raise FileNotFoundError(f"understanding test set not found: {path}")
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise UnderstandingTestError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(entries, list) or not entries:
        raise UnderstandingTestError(f"{path}: expected a non-empty JSON list of entries")
    rows = [_row(entry, path, i, root) for i, entry in enumerate(entries)]
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    dup = frame["id"][frame["id"].duplicated()].tolist()
    if dup:
        raise UnderstandingTestError(f"{path}: {len(dup)} images listed twice, e.g. {dup[:3]}")
    absent = [img for img in frame["image"] if not Path(img).is_file()]
    if absent:
        raise UnderstandingTestError(
            f"{path}: {len(absent)} of {len(frame)} images not found under {root}, e.g. "
            f"{absent[:3]} (download them from MIMIC-CXR-JPG, or point root at its copy)"
        )
    return frame


def _row(entry: object, path: Path, i: int, root: Path) -> tuple[str, str, str, str]:
    """(id, image, prompt, reference) of entry ``i``; UnderstandingTestError when malformed."""

    def bad(why: str) -> UnderstandingTestError:
        return UnderstandingTestError(f"{path}: entry {i}: {why}")

    if not isinstance(entry, dict):
        raise bad(f"expected an object, got {type(entry).__name__}")
    for key in ("messages", "images"):
        if key not in entry:
            raise bad(f"no {key!r}")
    images, messages = entry["images"], entry["messages"]
    if not isinstance(images, list) or len(images) != 1 or not isinstance(images[0], str):
        raise bad(f"expected exactly one image path, got {images!r}")
    if not isinstance(messages, list):
        raise bad(f"'messages' is not a list: {messages!r}")
    roles = [m.get("role") if isinstance(m, dict) else None for m in messages]
    if roles != ["user", "assistant"]:
        raise bad(f"expected a user then an assistant message, got roles {roles}")
    texts = [m.get("content") for m in messages]
    if not all(isinstance(t, str) for t in texts):
        raise bad("a message content is not text")
    prompt, reference = texts[0].replace(IMAGE_TAG, ""), texts[1].strip()
    if not prompt.strip():
        raise bad("empty prompt (the user turn holds nothing but <image>)")
    if not reference:
        raise bad("empty answer (the reference report)")
    rel = Path(images[0])
    if rel.is_absolute() or ".." in rel.parts or rel.suffix.lower() != ".jpg":
        raise bad(f"image {images[0]!r} is not a .jpg path relative to the MIMIC-CXR-JPG root")
    return rel.stem, str(root / rel), prompt, reference
