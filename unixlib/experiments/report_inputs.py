"""The reports ``draw`` is given: from the command line or a CSV, each with where it came from,
and the checks that decide whether a report can be drawn.

A report is drawn when it is text with findings to draw: not empty, not binary or control
characters, not free of letters, not only headers without FINDINGS or IMPRESSION text (the
check ``prepare`` applies to training reports, ``data/sources/common.report_problem``). A report
longer than the model's report budget is *drawn from its first tokens*, not rejected, as
training cut its reports (``TrainConfig.max_report_tokens``): the drawing says how many tokens
the report had, and ``draw`` warns.
"""

from __future__ import annotations

import csv
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from unixlib.data.sources.common import report_problem

# Whitespace control characters a report may hold; any other (NUL, escape, ...) is binary.
_TEXT_CONTROLS = frozenset("\t\n\r")


@dataclass(frozen=True)
class ReportInput:
    """One report to draw: ``ref`` names where it came from (``--report 2``, ``r.csv:7`` = line
    7), ``malformed`` says why a CSV row could not be read as one report (None: it could)."""

    ref: str
    text: str
    malformed: str | None = None


def drawing_problem(text: str) -> str | None:
    """Why ``text`` cannot be drawn (module doc), or None when it can."""
    if not text.strip():
        return "empty report"
    if "\ufffd" in text or any(
        unicodedata.category(c) == "Cc" and c not in _TEXT_CONTROLS for c in text
    ):
        return "not text (control characters or undecodable bytes)"
    if not any(c.isalpha() for c in text):
        return "not text (no letters)"
    return report_problem(text)


def collect_reports(
    reports: Sequence[str], csv_path: Path | None = None, column: str = "report"
) -> list[ReportInput]:
    """The ``--report`` texts (refs ``--report 1``, ...), then the rows of ``csv_path``
    (:func:`read_reports`), in that order."""
    items = [ReportInput(f"--report {i + 1}", text) for i, text in enumerate(reports)]
    if csv_path is not None:
        items += read_reports(Path(csv_path), column)
    return items


def read_reports(csv_path: Path, column: str = "report") -> list[ReportInput]:
    """One :class:`ReportInput` per data row of a CSV (e.g. ``describe --out``'s output), its
    ``column`` as the text and ``path:line`` (the row's first line) as its ref. A row whose
    field count is not the header's is kept as ``malformed``, so the batch can reject it.

    Raises FileNotFoundError for a missing file, ValueError for a file that is not UTF-8 text,
    has no header row or no ``column`` (the whole file is unusable, not one row).
    """
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            rows = list(_numbered_rows(f))
    except UnicodeDecodeError as err:
        raise ValueError(
            f"{csv_path}: not a UTF-8 text CSV (byte {err.start}: {err.reason})"
        ) from err
    if not rows:
        raise ValueError(f"{csv_path}: empty file (no header row)")
    (_, header), body = rows[0], rows[1:]
    if column not in header:
        raise ValueError(f"{csv_path}: no {column!r} column (columns: {', '.join(header)})")
    index = header.index(column)
    items = []
    for line, fields in body:
        ref = f"{csv_path}:{line}"
        if len(fields) != len(header):
            reason = f"malformed CSV row ({len(fields)} fields; the header has {len(header)})"
            items.append(ReportInput(ref, "", malformed=reason))
        else:
            items.append(ReportInput(ref, fields[index]))
    return items


def _numbered_rows(f: TextIO) -> Iterator[tuple[int, list[str]]]:
    """(first line number, fields) of each non-blank CSV record (a quoted field may span
    lines: the record is numbered by the line it starts on)."""
    reader = csv.reader(f)
    start = 1
    for fields in reader:
        if fields:
            yield start, fields
        start = reader.line_num + 1
