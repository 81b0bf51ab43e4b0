"""``prepare``'s image cache: each source image squared into ``images/<file id>.png``.

Image files are read and squared by a process pool over the available cores; the result does
not depend on the pool: every job writes a file of its own and the results come back in job
order, exactly as one process would give them.
"""

from __future__ import annotations

import multiprocessing
import os
import re
from concurrent.futures import ProcessPoolExecutor

from unixlib.config.progress import bar
from unixlib.data.sources.common import STAGE_IMAGE
from unixlib.data.sources.dicom import DicomError
from unixlib.data.sources.images import ImageError, cache_square_png

CacheJob = tuple[str, str, int, float]  # (source image file, PNG to write, side in px, pad value)
Problem = tuple[str, str]  # (reject stage, reason)
# Fewer image files than this are cached in this process (a pool costs ~1 s to start).
POOL_MIN_JOBS = 256
# Ids become file names in the image cache; anything outside this set is replaced by "_".
_UNSAFE_ID_CHARS = re.compile(r"[^A-Za-z0-9._-]")


def file_id(row_id: str) -> str:
    """The cache file name (without ``.png``) of a row id: unsafe characters become ``_``."""
    return _UNSAFE_ID_CHARS.sub("_", row_id)


def cache_file(job: CacheJob) -> Problem | None:
    """Square one image file into its PNG; (stage, reason) when it cannot be read."""
    src, dst, size, pad_value = job
    try:
        cache_square_png(src, dst, size, pad_value)
    except (ImageError, DicomError) as err:
        return STAGE_IMAGE, err.reason
    return None


def cache_files(jobs: list[CacheJob], workers: int | None) -> list[Problem | None]:
    """:func:`cache_file` over ``jobs``, in order, on ``workers`` processes (default: the
    available cores; one process below :data:`POOL_MIN_JOBS` jobs)."""
    if workers is None:
        workers = (
            len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        )
    workers = max(1, min(workers or 1, len(jobs))) if len(jobs) >= POOL_MIN_JOBS else 1
    if not jobs:
        return []
    results: list[Problem | None] = []
    with bar(total=len(jobs), desc=f"cache images ({workers} proc.)", unit="img") as progress:
        if workers == 1:
            for job in jobs:
                results.append(cache_file(job))
                progress.update()
            return results
        chunk = max(1, min(64, len(jobs) // (workers * 8)))
        # spawn, not fork: the caller may hold threads (torch, a notebook kernel)
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            for result in pool.map(cache_file, jobs, chunksize=chunk):  # keeps input order
                results.append(result)
                progress.update()
    return results
