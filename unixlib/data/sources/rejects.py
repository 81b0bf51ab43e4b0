"""Why a row stays out of ``prepare``'s manifest: the checks on each candidate, and the limit on
how many rows may be rejected as data errors (module doc of :mod:`.prepare`)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from unixlib.data.schema import SPLITS
from unixlib.data.sources.common import (
    FILTER_STAGES,
    STAGE_METADATA,
    STAGE_REPORT,
    Candidate,
    report_problem,
)
from unixlib.data.sources.image_cache import file_id

REJECT_COLUMNS = ("id", "ref", "stage", "reason")  # rejects.csv


class TooManyRejectsError(RuntimeError):
    """More than ``max_reject_frac`` of the input rows were rejected as data errors."""


def check_candidate(cand: Candidate, seen_ids: set[str]) -> tuple[str, str] | None:
    """(stage, reason) for a candidate that cannot enter the manifest, else None.

    ``seen_ids``: the cache file ids (:func:`~.image_cache.file_id`) of the rows accepted so
    far; a candidate whose file id is among them is a duplicate.
    """
    if cand.reject is not None:
        return cand.reject_stage, cand.reject
    if file_id(cand.id) in seen_ids:  # the cache file name must be unique too
        return STAGE_METADATA, "duplicate id"
    if cand.split not in SPLITS:
        return STAGE_METADATA, f"invalid split {cand.split!r}"
    if cand.require_report:
        problem = report_problem(cand.report_raw)
        if problem is not None:
            return STAGE_REPORT, problem
    return None


def check_reject_fraction(
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
