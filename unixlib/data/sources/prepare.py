"""Data sources -> one manifest: ``prepare(source, out_dir, image_size, **source_args)``.

Output, in ``out_dir``:

- ``manifest.parquet``: one row per kept input row, columns ``schema.MANIFEST_COLUMNS``;
  ``image_path`` is relative to ``out_dir`` (``images/<id>.png``) or ``""`` for a text-only
  row (IU reports whose images are absent);
- ``images/<id>.png``: the image cache, 8-bit grayscale, ``image_size`` square, aspect kept by
  padding with black (``images.DEFAULT_PAD_VALUE``; see ``unixlib.data.sources.images``);
- ``rejects.csv``: every input row not in the manifest, columns ``id, ref, stage, reason``;
- ``understanding_test.parquet`` (``mimic`` with ``understanding_test``, the release's
  ``test_data.json``): the paper's understanding test pairs, columns ``id, image_path, prompt,
  reference``, their images cached as above (:mod:`.understanding_test`). Removed when not asked
  for, so a folder never keeps a stale one.

Nothing is dropped silently: every input row is in exactly one of the two tables. Stage
``view`` (non-frontal views removed on purpose) is filtering; all other stages (``metadata``,
``labels``, ``report``, ``image``) are data errors, and if more than ``max_reject_frac`` of the
rows that survive the view filter are errors, :class:`TooManyRejectsError` is raised (after
rejects.csv is written, so the user can read why).

Sources (their arguments are documented on each ``candidates`` function):
``synth``, ``mimic``, ``iuxray``, ``folder``: the modules of the same name in this package.

Image files are read and squared by a process pool over the available cores (``workers``); the
result does not depend on the pool: each image goes to a pending file of its own, and the rows
are then accepted in input order exactly as a single process would.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import shutil
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from unixlib.config.progress import bar
from unixlib.data.schema import LABELS, MANIFEST_COLUMNS, SPLITS
from unixlib.data.sources import folder, iuxray, mimic, synth
from unixlib.data.sources.common import (
    FILTER_STAGES,
    STAGE_IMAGE,
    STAGE_METADATA,
    STAGE_REPORT,
    Candidate,
    report_problem,
)
from unixlib.data.sources.dicom import DicomError
from unixlib.data.sources.images import (
    DEFAULT_PAD_VALUE,
    ImageError,
    cache_square_png,
    save_png8,
    to_square,
)
from unixlib.data.sources.understanding_test import (
    UNDERSTANDING_TEST_FILE,
    UnderstandingTestError,
    read_understanding_test,
)

SOURCES: dict[str, Callable[..., Iterable[Candidate]]] = {
    "synth": synth.candidates,
    "mimic": mimic.candidates,
    "iuxray": iuxray.candidates,
    "folder": folder.candidates,
}
REJECT_COLUMNS = ("id", "ref", "stage", "reason")
# Fewer image files than this are cached in this process (a pool costs ~1 s to start).
POOL_MIN_JOBS = 256
# Ids become file names in the image cache; anything outside this set is replaced by "_".
_UNSAFE_ID_CHARS = re.compile(r"[^A-Za-z0-9._-]")


class TooManyRejectsError(RuntimeError):
    """More than ``max_reject_frac`` of the input rows were rejected as data errors."""


@dataclass(frozen=True)
class PrepareResult:
    """What ``prepare`` wrote: paths, rows per split and rejection counts."""

    out_dir: Path
    manifest_path: Path
    rejects_path: Path
    counts: dict[str, int]  # manifest rows per split (train / validate / test)
    n_rejected: int  # rows in rejects.csv (all stages)
    n_filtered: int  # of those, deliberate filtering (non-frontal views)
    n_text_only: int  # manifest rows without an image (image_path == "")
    n_understanding_test: int = 0  # pairs in understanding_test.parquet (0: none written)

    @property
    def n_rows(self) -> int:
        """Manifest rows in total."""
        return sum(self.counts.values())


def prepare(
    source: str,
    out_dir: str | os.PathLike,
    image_size: int,
    *,
    max_reject_frac: float = 0.05,
    pad_value: float = DEFAULT_PAD_VALUE,
    workers: int | None = None,
    **source_args: object,
) -> PrepareResult:
    """Build ``out_dir/manifest.parquet``, ``out_dir/images/`` and ``out_dir/rejects.csv``.

    Args:
        source: one of :data:`SOURCES` (``synth``, ``mimic``, ``iuxray``, ``folder``).
        out_dir: output folder (created).
        image_size: side of the square cached images, in pixels.
        max_reject_frac: the largest tolerated fraction of data-error rejects (module doc).
        pad_value: gray level in [0, 1] of the square padding (default black).
        workers: processes that cache image files (default: the available cores).
        source_args: passed to the source's ``candidates`` function, except
            ``understanding_test`` (``mimic`` only): the release's ``test_data.json``, written
            as ``understanding_test.parquet`` with its images cached (module doc).

    Raises:
        ValueError: unknown source; ``understanding_test`` for another source.
        UnderstandingTestError: a malformed ``test_data.json``, or its images missing or
            unreadable.
        TooManyRejectsError: the reject fraction exceeds ``max_reject_frac``; the message
            names the fraction and the most frequent reasons.
    """
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; choose one of {sorted(SOURCES)}")
    if source == "synth":  # draw synthetic images at the cache size instead of resizing
        source_args.setdefault("render_size", image_size)
    und_json = source_args.pop("understanding_test", None)
    if und_json and source != "mimic":
        raise ValueError(f"understanding_test is a mimic source argument, not {source!r}'s")
    # read first: a malformed file fails before the long pass over the whole dataset
    und = read_understanding_test(und_json, source_args["root"]) if und_json else None
    out = Path(out_dir)
    image_dir = out / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    pending = image_dir / ".pending"  # one file per candidate until its row is accepted
    shutil.rmtree(pending, ignore_errors=True)  # left by an interrupted run
    pending.mkdir()
    candidates: list[Candidate] = []
    jobs: list[tuple[str, str, int, float]] = []  # (source file, pending PNG, size, pad)
    for cand in bar(SOURCES[source](**source_args), desc=f"read {source}", unit="row"):
        if _check(cand, set()) is None and cand.image is not None:  # duplicates: decided below
            dst = pending / f"{len(candidates)}.png"
            if isinstance(cand.image, np.ndarray):  # rendered in memory: save now, keep no array
                save_png8(to_square(cand.image, image_size, pad_value), dst)
            else:
                jobs.append((str(cand.image), str(dst), image_size, pad_value))
            cand.image = dst
        candidates.append(cand)
    # pending PNG -> None, or (stage, reason) when its file could not be read
    problems = dict(zip((dst for _, dst, _, _ in jobs), _cache_files(jobs, workers), strict=True))

    rows: list[dict[str, object]] = []
    rejects: list[dict[str, str]] = []
    seen_ids: set[str] = set()
    for cand in candidates:
        problem = _check(cand, seen_ids)
        if problem is None and cand.image is not None:
            problem = problems.get(str(cand.image))
        if problem is not None:
            stage, reason = problem
            rejects.append({"id": cand.id, "ref": cand.ref, "stage": stage, "reason": reason})
            continue
        seen_ids.add(_file_id(cand.id))
        image_path = ""
        if cand.image is not None:
            image_path = f"images/{_file_id(cand.id)}.png"
            os.replace(cand.image, out / image_path)
        rows.append(
            {
                "id": cand.id,
                "source": source,
                "image_path": image_path,
                "view": cand.view,
                "split": cand.split,
                "report_raw": cand.report_raw,
                **{name: float(cand.labels[name]) for name in LABELS},
            }
        )
    shutil.rmtree(pending)

    rejects_path = out / "rejects.csv"
    pd.DataFrame(rejects, columns=list(REJECT_COLUMNS)).to_csv(rejects_path, index=False)
    n_filtered = sum(r["stage"] in FILTER_STAGES for r in rejects)
    _check_reject_fraction(source, rejects, n_filtered, len(rows), max_reject_frac, rejects_path)

    manifest = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))
    manifest[list(LABELS)] = manifest[list(LABELS)].astype("float64")
    manifest_path = out / "manifest.parquet"
    manifest.to_parquet(manifest_path, index=False)
    (out / UNDERSTANDING_TEST_FILE).unlink(missing_ok=True)
    if und is not None:
        fresh = dict(zip(manifest["id"], manifest["image_path"], strict=True))
        _write_understanding_test(und, out, fresh, image_size, pad_value, workers)
    result = PrepareResult(
        out_dir=out,
        manifest_path=manifest_path,
        rejects_path=rejects_path,
        counts={split: int((manifest["split"] == split).sum()) for split in SPLITS},
        n_rejected=len(rejects),
        n_filtered=n_filtered,
        n_text_only=int((manifest["image_path"] == "").sum()),
        n_understanding_test=0 if und is None else len(und),
    )
    print(
        f"prepare {source}: {result.n_rows} rows "
        + " ".join(f"{k}={v}" for k, v in result.counts.items())
        + f" (text-only {result.n_text_only}); rejected {result.n_rejected}"
        + f" (non-frontal {n_filtered}) -> {manifest_path}"
        + (f"; understanding test set: {len(und)} pairs" if und is not None else "")
    )
    return result


def _write_understanding_test(
    und: pd.DataFrame,
    out: Path,
    fresh: dict[str, str],
    image_size: int,
    pad_value: float,
    workers: int | None,
) -> None:
    """``understanding_test.parquet`` with each pair's cached image: the manifest's file when
    this run just wrote it (``fresh``: id -> image_path), else cached here; an unreadable
    image is an error (the paper's set is used whole or not at all)."""
    paths = [fresh.get(i) or f"images/{_file_id(i)}.png" for i in und["id"]]
    jobs = [
        (src, str(out / dst), image_size, pad_value)
        for i, src, dst in zip(und["id"], und["image"], paths, strict=True)
        if not fresh.get(i)
    ]
    bad = [
        f"{src} ({problem[1]})"
        for (src, *_), problem in zip(jobs, _cache_files(jobs, workers), strict=True)
        if problem is not None
    ]
    if bad:
        raise UnderstandingTestError(
            f"{len(bad)} understanding test images could not be read, e.g. {bad[:3]}"
        )
    table = und.drop(columns="image").assign(image_path=paths)
    table[["id", "image_path", "prompt", "reference"]].to_parquet(
        out / UNDERSTANDING_TEST_FILE, index=False
    )


def _check(cand: Candidate, seen_ids: set[str]) -> tuple[str, str] | None:
    """(stage, reason) for a candidate that cannot enter the manifest, else None."""
    if cand.reject is not None:
        return cand.reject_stage, cand.reject
    if _file_id(cand.id) in seen_ids:  # the cache file name must be unique too
        return STAGE_METADATA, "duplicate id"
    if cand.split not in SPLITS:
        return STAGE_METADATA, f"invalid split {cand.split!r}"
    if cand.require_report:
        problem = report_problem(cand.report_raw)
        if problem is not None:
            return STAGE_REPORT, problem
    return None


def _cache_file(job: tuple[str, str, int, float]) -> tuple[str, str] | None:
    """Square one image file into its PNG; (stage, reason) when it cannot be read."""
    src, dst, size, pad_value = job
    try:
        cache_square_png(src, dst, size, pad_value)
    except (ImageError, DicomError) as err:
        return STAGE_IMAGE, err.reason
    return None


def _cache_files(
    jobs: list[tuple[str, str, int, float]], workers: int | None
) -> list[tuple[str, str] | None]:
    """:func:`_cache_file` over ``jobs``, in order, on ``workers`` processes (default: the
    available cores; one process below :data:`POOL_MIN_JOBS` jobs)."""
    if workers is None:
        workers = (
            len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        )
    workers = max(1, min(workers or 1, len(jobs))) if len(jobs) >= POOL_MIN_JOBS else 1
    if not jobs:
        return []
    results: list[tuple[str, str] | None] = []
    with bar(total=len(jobs), desc=f"cache images ({workers} proc.)", unit="img") as progress:
        if workers == 1:
            for job in jobs:
                results.append(_cache_file(job))
                progress.update()
            return results
        chunk = max(1, min(64, len(jobs) // (workers * 8)))
        # spawn, not fork: the caller may hold threads (torch, a notebook kernel)
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            for result in pool.map(_cache_file, jobs, chunksize=chunk):  # keeps input order
                results.append(result)
                progress.update()
    return results


def _file_id(row_id: str) -> str:
    return _UNSAFE_ID_CHARS.sub("_", row_id)


def _check_reject_fraction(
    source: str,
    rejects: list[dict[str, str]],
    n_filtered: int,
    n_kept: int,
    max_frac: float,
    rejects_path: Path,
) -> None:
    """Raise TooManyRejectsError when data-error rejects exceed ``max_frac`` of the candidates."""
    errors = [r for r in rejects if r["stage"] not in FILTER_STAGES]
    total = n_kept + len(errors)  # rows that survived the view filter
    if total == 0:
        raise TooManyRejectsError(
            f"{source}: no input rows found ({n_filtered} removed as non-frontal); check the paths"
        )
    frac = len(errors) / total
    if frac <= max_frac:
        return
    # Group reasons by their category: the text before a "(detail)".
    top = Counter(r["reason"].split(" (")[0] for r in errors).most_common(3)
    reasons = "; ".join(f"{reason!r} x{n}" for reason, n in top)
    raise TooManyRejectsError(
        f"{source}: {len(errors)} of {total} rows rejected ({frac:.1%} > max_reject_frac "
        f"{max_frac:.1%}); top reasons: {reasons}. See {rejects_path}"
    )
