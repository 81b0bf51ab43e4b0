"""``unixlib clean``: add ``report_clean`` and ``clean_status`` to a manifest.

Rules always run (:func:`unixlib.data.reports.rule_clean`); with an :class:`LLMConfig` every
non-empty report is also rewritten by the LLM with self-judgment
(:mod:`unixlib.data.llm_clean`). ``clean_status`` per row:

- ``llm``: the judged LLM rewrite;
- ``rules``: the rule-cleaned text (no LLM configured);
- ``fallback:<reason>``: the LLM rewrite failed (``reason`` from the judge or the transport),
  the rule-cleaned text is used;
- ``rejected:<reason>``: even the rules produced nothing (e.g. ``rejected:empty report``);
  ``report_clean`` is ``""``.

No row is ever dropped: the output has the input's rows in the input's order.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from unixlib.data.llm_clean import LLMConfig, llm_clean_reports
from unixlib.data.reports import rule_clean

log = logging.getLogger(__name__)

STATUS_KINDS: tuple[str, ...] = ("llm", "rules", "fallback", "rejected")


@dataclass
class CleanStats:
    """Row counts of one cleaning run."""

    n_rows: int
    by_status: dict[str, int] = field(default_factory=dict)  # full status -> rows

    def count(self, kind: str) -> int:
        """Rows whose status is ``kind`` or ``kind:<reason>`` (kind in STATUS_KINDS)."""
        if kind not in STATUS_KINDS:
            raise ValueError(f"unknown status kind {kind!r}; expected one of {STATUS_KINDS}")
        return sum(n for s, n in self.by_status.items() if s.split(":", 1)[0] == kind)


def clean_statuses(
    raws: list[str], llm: LLMConfig | None = None, cache_dir: Path | None = None
) -> tuple[list[str], list[str]]:
    """Clean raw reports; returns ``(report_clean, clean_status)``, one entry per input."""
    rules = [rule_clean(raw) for raw in raws]
    if llm is None:
        return (
            [r.text for r in rules],
            ["rules" if r.ok else f"rejected:{r.reason}" for r in rules],
        )
    asked = [i for i, raw in enumerate(raws) if raw.strip()]
    results = dict(
        zip(asked, llm_clean_reports([raws[i] for i in asked], llm, cache_dir), strict=True)
    )
    texts, statuses = [], []
    for i, rule in enumerate(rules):
        got = results.get(i)
        if got is not None and got.ok:
            texts.append(got.text)
            statuses.append("llm")
        elif rule.ok:
            texts.append(rule.text)
            statuses.append(f"fallback:{got.reason}" if got else "rules")
        else:
            texts.append("")
            statuses.append(f"rejected:{rule.reason}")
    return texts, statuses


def clean_manifest(
    in_path: Path, out_path: Path, llm: LLMConfig | None = None, cache_dir: Path | None = None
) -> CleanStats:
    """Read ``in_path`` (manifest Parquet), add ``report_clean``/``clean_status``, write ``out_path``.

    ``cache_dir`` holds the LLM cache (default: ``<out_path's folder>/llm_cache``); a rerun
    with the same cache only requests reports that have no cached result.

    Raises:
        ValueError: the manifest has no ``report_raw`` column.
        unixlib.data.llm_clean.LLMError: an LLM is configured but its API key is missing.
    """
    in_path, out_path = Path(in_path), Path(out_path)
    df = pd.read_parquet(in_path)
    if "report_raw" not in df.columns:
        raise ValueError(f"{in_path}: manifest has no 'report_raw' column")
    # A missing report is an empty one: it is kept and recorded as rejected, never dropped.
    raws = [r if isinstance(r, str) else "" for r in df["report_raw"].tolist()]
    if llm is not None and cache_dir is None:
        cache_dir = out_path.parent / "llm_cache"
    texts, statuses = clean_statuses(raws, llm, cache_dir)
    df = df.assign(report_clean=texts, clean_status=statuses)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp")
    df.to_parquet(tmp, index=False)
    tmp.replace(out_path)  # atomic: a killed run never leaves a half-written manifest
    stats = CleanStats(len(df), dict(Counter(statuses)))
    log.info("cleaned %s: %s", in_path, stats.by_status)
    return stats
