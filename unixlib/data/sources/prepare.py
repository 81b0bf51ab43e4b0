"""Data sources -> one manifest: ``prepare(source, out_dir, image_size, **source_args)``.

Output, in ``out_dir``:

- ``manifest.parquet``: one row per kept input row, columns ``schema.MANIFEST_COLUMNS`` (and
  ``task`` / ``report_gen`` when the source separates the two tasks' annotation sets);
  ``image_path`` is relative to ``out_dir`` (``images/<id>.png``) or ``""`` for a text-only
  row (IU reports whose images are absent);
- ``images/<id>.png``: the image cache, 8-bit grayscale, ``image_size`` square, aspect kept by
  padding with black (``images.DEFAULT_PAD_VALUE``; see ``unixlib.data.sources.images``);
- ``rejects.csv``: every input row not in the manifest, columns ``id, ref, stage, reason``;
- ``understanding_test.parquet`` (``mimic`` with ``understanding_test``, the release's
  ``test_data.json``): the paper's understanding test pairs, columns ``id, image_path, prompt,
  reference, source_image``, their images cached as above (:mod:`.understanding_test`;
  ``source_image``: the original file, for the release's own preprocessing, :mod:`.letterbox`).
  Removed when not asked for, so a folder never keeps a stale one.

Nothing is dropped silently: every input row is in exactly one of the two tables. Stage
``view`` (non-frontal views removed on purpose) is filtering; all other stages (``metadata``,
``labels``, ``report``, ``image``) are data errors, and if more than ``max_reject_frac`` of the
rows that survive the view filter are errors, :class:`TooManyRejectsError` is raised (after
rejects.csv is written, so the user can read why).

Sources (their arguments are documented on each ``candidates`` function):
``synth``, ``mimic``, ``iuxray``, ``folder``: the modules of the same name in this package.

Steps: read the source's candidates, giving each image a pending PNG of its own
(:func:`_stage`); square the image files on a process pool over the available cores
(``workers``, :mod:`.image_cache`); accept or reject the rows in input order (:func:`_accept`,
checks in :mod:`.rejects`), exactly as a single process would; write the tables.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from unixlib.config.paths import shown
from unixlib.config.progress import bar
from unixlib.data.schema import GEN_TEXT_COLUMN, LABELS, MANIFEST_COLUMNS, SPLITS, TASK_COLUMN
from unixlib.data.sources import folder, iuxray, mimic, synth
from unixlib.data.sources.common import FILTER_STAGES, Candidate
from unixlib.data.sources.image_cache import CacheJob, Problem, cache_files, file_id
from unixlib.data.sources.images import DEFAULT_PAD_VALUE, save_png8, to_square
from unixlib.data.sources.rejects import (
    REJECT_COLUMNS,
    TooManyRejectsError,
    check_candidate,
    check_reject_fraction,
)
from unixlib.data.sources.understanding_test import (
    UNDERSTANDING_TEST_FILE,
    UnderstandingTestError,
    read_understanding_test,
)

__all__ = ["SOURCES", "PrepareResult", "TooManyRejectsError", "prepare"]

OPTIONAL = (TASK_COLUMN, GEN_TEXT_COLUMN)  # manifest columns written only when used (schema)

SOURCES: dict[str, Callable[..., Iterable[Candidate]]] = {
    "synth": synth.candidates,
    "mimic": mimic.candidates,
    "iuxray": iuxray.candidates,
    "folder": folder.candidates,
}


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
    source_args, und = _source_call(source, image_size, source_args)
    out = Path(out_dir)
    image_dir = out / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    pending = image_dir / ".pending"  # one file per candidate until its row is accepted
    shutil.rmtree(pending, ignore_errors=True)  # left by an interrupted run
    pending.mkdir()
    candidates, jobs = _stage(source, source_args, pending, image_size, pad_value)
    # pending PNG -> None, or (stage, reason) when its file could not be read
    problems = dict(zip((dst for _, dst, _, _ in jobs), cache_files(jobs, workers), strict=True))
    rows, rejects = _accept(source, candidates, problems, out)
    shutil.rmtree(pending)

    rejects_path = out / "rejects.csv"
    pd.DataFrame(rejects, columns=list(REJECT_COLUMNS)).to_csv(rejects_path, index=False)
    n_filtered = sum(r["stage"] in FILTER_STAGES for r in rejects)
    check_reject_fraction(source, rejects, n_filtered, len(rows), max_reject_frac, rejects_path)

    manifest = _optional_columns(pd.DataFrame(rows, columns=[*MANIFEST_COLUMNS, *OPTIONAL]))
    manifest[list(LABELS)] = manifest[list(LABELS)].astype("float64")
    manifest_path = out / "manifest.parquet"
    manifest.to_parquet(manifest_path, index=False)
    _write_understanding_test(und, out, manifest, image_size, pad_value, workers)
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
    print(_summary(source, result, und))
    return result


def _source_call(
    source: str, image_size: int, source_args: dict[str, object]
) -> tuple[dict[str, object], pd.DataFrame | None]:
    """The arguments for the source's ``candidates`` and the understanding test pairs (read
    first: a malformed file fails before the long pass over the whole dataset), or None."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; choose one of {sorted(SOURCES)}")
    args = dict(source_args)
    if source == "synth":  # draw synthetic images at the cache size instead of resizing
        args.setdefault("render_size", image_size)
    und_json = args.pop("understanding_test", None)
    if und_json and source != "mimic":
        raise ValueError(f"understanding_test is a mimic source argument, not {source!r}'s")
    und = read_understanding_test(und_json, args["root"]) if und_json else None
    return args, und


def _stage(
    source: str,
    source_args: dict[str, object],
    pending: Path,
    image_size: int,
    pad_value: float,
) -> tuple[list[Candidate], list[CacheJob]]:
    """Every candidate of the source, in order, and the image files still to cache.

    A candidate that passes the checks (duplicates aside: decided by :func:`_accept`) and has
    an image gets ``pending/<n>.png`` (``n``: its index) as ``cand.image``: an image rendered
    in memory is squared and saved now (no array kept), an image file becomes a cache job.
    """
    candidates: list[Candidate] = []
    jobs: list[CacheJob] = []
    for cand in bar(SOURCES[source](**source_args), desc=f"read {source}", unit="row"):
        if check_candidate(cand, set()) is None and cand.image is not None:
            dst = pending / f"{len(candidates)}.png"
            if isinstance(cand.image, np.ndarray):
                save_png8(to_square(cand.image, image_size, pad_value), dst)
            else:
                jobs.append((str(cand.image), str(dst), image_size, pad_value))
            cand.image = dst
        candidates.append(cand)
    return candidates, jobs


def _accept(
    source: str, candidates: list[Candidate], problems: dict[str, Problem | None], out: Path
) -> tuple[list[dict[str, object]], list[dict[str, str]]]:
    """(manifest rows, rejects rows) of the staged candidates, in input order.

    ``problems``: pending PNG -> why its image file could not be cached (None: cached). An
    accepted row's pending PNG becomes ``out/images/<file id>.png``.
    """
    rows: list[dict[str, object]] = []
    rejects: list[dict[str, str]] = []
    seen_ids: set[str] = set()
    for cand in candidates:
        problem = check_candidate(cand, seen_ids)
        if problem is None and cand.image is not None:
            problem = problems.get(str(cand.image))
        if problem is not None:
            stage, reason = problem
            rejects.append({"id": cand.id, "ref": cand.ref, "stage": stage, "reason": reason})
            continue
        seen_ids.add(file_id(cand.id))
        image_path = ""
        if cand.image is not None:
            image_path = f"images/{file_id(cand.id)}.png"
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
                TASK_COLUMN: cand.task,
                GEN_TEXT_COLUMN: cand.report_gen,
            }
        )
    return rows, rejects


def _optional_columns(manifest: pd.DataFrame) -> pd.DataFrame:
    """The manifest without ``task`` / ``report_gen`` when every row has their defaults (both
    tasks, no separate generation prompt): sources that do not separate the tasks write the
    columns they always wrote."""
    separate = (manifest[TASK_COLUMN] != "both").any() or (manifest[GEN_TEXT_COLUMN] != "").any()
    return manifest if separate else manifest.drop(columns=list(OPTIONAL))


def _write_understanding_test(
    und: pd.DataFrame | None,
    out: Path,
    manifest: pd.DataFrame,
    image_size: int,
    pad_value: float,
    workers: int | None,
) -> None:
    """``understanding_test.parquet`` with each pair's cached image, or no such file when
    ``und`` is None (a folder never keeps a stale one).

    A pair's image is the manifest's file when this run just wrote it, else cached here; an
    unreadable image is an error (the paper's set is used whole or not at all).
    """
    (out / UNDERSTANDING_TEST_FILE).unlink(missing_ok=True)
    if und is None:
        return
    fresh = dict(zip(manifest["id"], manifest["image_path"], strict=True))  # id -> image_path
    paths = [fresh.get(i) or f"images/{file_id(i)}.png" for i in und["id"]]
    jobs = [
        (src, str(out / dst), image_size, pad_value)
        for i, src, dst in zip(und["id"], und["image"], paths, strict=True)
        if not fresh.get(i)
    ]
    bad = [
        f"{src} ({problem[1]})"
        for (src, *_), problem in zip(jobs, cache_files(jobs, workers), strict=True)
        if problem is not None
    ]
    if bad:
        raise UnderstandingTestError(
            f"{len(bad)} understanding test images could not be read, e.g. {bad[:3]}"
        )
    table = und.rename(columns={"image": "source_image"}).assign(image_path=paths)
    table[["id", "image_path", "prompt", "reference", "source_image"]].to_parquet(
        out / UNDERSTANDING_TEST_FILE, index=False
    )


def _summary(source: str, result: PrepareResult, und: pd.DataFrame | None) -> str:
    """The one line ``prepare`` prints: rows per split, text-only and rejected rows."""
    return (
        f"prepare {source}: {result.n_rows} rows "
        + " ".join(f"{k}={v}" for k, v in result.counts.items())
        + f" (text-only {result.n_text_only}); rejected {result.n_rejected}"
        + f" (non-frontal {result.n_filtered}) -> {shown(result.manifest_path)}"
        + (f"; understanding test set: {len(und)} pairs" if und is not None else "")
    )
