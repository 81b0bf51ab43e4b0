"""``unixlib clean``: add ``report_clean``, ``clean_status`` and ``clean_check`` to a manifest.

Rules always run (:func:`unixlib.data.text.reports.rule_clean`) and every rule result is judged
(:func:`unixlib.data.text.judge.judge`: same 14 labels, same side and severity of each positive
finding, no de-identification span). With an :class:`LLMConfig` every non-empty report is
also rewritten by the LLM under the same judgment (:mod:`unixlib.data.text.llm_clean`).
``clean_status`` per row:

- ``llm``: the judged LLM rewrite;
- ``rules``: the rule-cleaned text passed the judgment;
- ``relaxed:<reason>``: the rule-cleaned text failed (``reason``); the least-edited text that
  passes is kept instead: first only the sentences whose edit changed a flagged finding are
  restored (spans still removed), then, if needed, every sentence;
- ``unverified:<reason>``: no candidate passes (the raw labels depend on a span's word); the
  rule-cleaned text is kept and marked;
- ``fallback:<reason>``: the LLM rewrite failed (``reason`` from the judge or the transport),
  the judged rule text is used;
- ``rejected:<reason>``: even the rules produced nothing (e.g. ``rejected:empty report``);
  ``report_clean`` is ``""``.

``clean_check`` names the check that caught the first rule result (one of
:data:`unixlib.data.text.judge.CHECKS`, "" when it passed). No row is ever dropped: the output has
the input's rows in the input's order.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from unixlib.data.text.judge import CHECKS, Judgment, finding_details, judge
from unixlib.data.text.labeler import label_report
from unixlib.data.text.llm_clean import LLMConfig, llm_clean_reports
from unixlib.data.text.reports import clean_section_pairs, format_report, report_body, rule_clean
from unixlib.data.text.reports_deid import strip_deid

log = logging.getLogger(__name__)

STATUS_KINDS: tuple[str, ...] = ("llm", "rules", "relaxed", "unverified", "fallback", "rejected")


@dataclass
class CleanStats:
    """Row counts of one cleaning run."""

    n_rows: int
    by_status: dict[str, int] = field(default_factory=dict)  # full status -> rows
    by_check: dict[str, int] = field(default_factory=dict)  # judge check -> rule results caught

    def count(self, kind: str) -> int:
        """Rows whose status is ``kind`` or ``kind:<reason>`` (kind in STATUS_KINDS)."""
        if kind not in STATUS_KINDS:
            raise ValueError(f"unknown status kind {kind!r}; expected one of {STATUS_KINDS}")
        return sum(n for s, n in self.by_status.items() if s.split(":", 1)[0] == kind)


@dataclass(frozen=True)
class Cleaned:
    """One row's cleaning outcome (see the module docstring for the values)."""

    text: str
    status: str
    check: str = ""


def judged_rule_clean(raw: str) -> Cleaned:
    """Rule-clean one raw report and judge it; a failed result is relaxed (module docstring)."""
    rule = rule_clean(raw)
    if not rule.ok:
        return Cleaned("", f"rejected:{rule.reason}")
    verdict = judge(raw, rule.text)
    if verdict.ok:
        return Cleaned(rule.text, "rules")
    for candidate in _relaxed(raw, verdict):
        if candidate and judge(raw, candidate).ok:
            return Cleaned(candidate, f"relaxed:{verdict.reason}", verdict.check)
    return Cleaned(rule.text, f"unverified:{verdict.reason}", verdict.check)


def _relaxed(raw: str, verdict: Judgment) -> list[str]:
    """Less-edited texts, least edits undone first: the sentences whose edit changed one of
    the flagged findings, then every sentence (spans are removed in both)."""
    sections = [clean_section_pairs(text) for text in report_body(raw)]

    def changed(before: str, after: str) -> bool:
        if before == after or not verdict.labels:
            return before != after
        a, b = label_report(before), label_report(after)
        da, db = finding_details(before), finding_details(after)
        return any(str(a[n]) != str(b[n]) or da.get(n) != db.get(n) for n in verdict.labels)

    def build(undo: Callable[[str, str], bool]) -> str:
        parts = [
            " ".join(t for t in (strip_deid(r) if undo(r, c) else c for r, c in pairs) if t)
            for pairs in sections
        ]
        return format_report(*parts)

    return list(dict.fromkeys([build(changed), build(lambda r, c: r != c)]))


def clean_statuses(
    raws: list[str], llm: LLMConfig | None = None, cache_dir: Path | None = None
) -> list[Cleaned]:
    """Clean raw reports; one :class:`Cleaned` per input, same order."""
    rules = [judged_rule_clean(raw) for raw in raws]
    if llm is None:
        return rules
    asked = [i for i, raw in enumerate(raws) if raw.strip()]
    results = dict(
        zip(asked, llm_clean_reports([raws[i] for i in asked], llm, cache_dir), strict=True)
    )
    out = []
    for i, rule in enumerate(rules):
        got = results.get(i)
        if got is not None and got.ok:
            out.append(Cleaned(got.text, "llm", rule.check))
        elif rule.status.startswith("rejected:") or got is None:
            out.append(rule)
        else:
            out.append(Cleaned(rule.text, f"fallback:{got.reason}", rule.check))
    return out


def check_counts(statuses: Sequence[str], checks: Sequence[str]) -> pd.Series:
    """Rows per outcome of the judgment (notebook 01's table): ``rows``, ``rejected``, ``judged``
    (rule results that were judged), ``caught:<check>`` for each of
    :data:`unixlib.data.text.judge.CHECKS`, then how the caught rows ended (``relaxed``,
    ``unverified``), and ``passed`` (rule results kept as they were)."""
    kinds = Counter(s.split(":", 1)[0] for s in statuses)
    caught = Counter(c for c in checks if c)
    out = {"rows": len(statuses), "rejected": kinds["rejected"]}
    out["judged"] = out["rows"] - out["rejected"]
    out |= {f"caught:{c}": caught[c] for c in CHECKS}
    out |= {"relaxed": kinds["relaxed"], "unverified": kinds["unverified"]}
    out["passed"] = out["judged"] - sum(caught.values())
    return pd.Series(out, name="rows")


def clean_manifest(
    in_path: Path, out_path: Path, llm: LLMConfig | None = None, cache_dir: Path | None = None
) -> CleanStats:
    """Read ``in_path`` (manifest Parquet), add ``report_clean``/``clean_status``, write ``out_path``.

    ``cache_dir`` holds the LLM cache (default: ``<out_path's folder>/llm_cache``); a rerun
    with the same cache only requests reports that have no cached result.

    Raises:
        ValueError: the manifest has no ``report_raw`` column.
        unixlib.data.text.llm_clean.LLMError: an LLM is configured but its API key is missing.
    """
    in_path, out_path = Path(in_path), Path(out_path)
    df = pd.read_parquet(in_path)
    if "report_raw" not in df.columns:
        raise ValueError(f"{in_path}: manifest has no 'report_raw' column")
    # A missing report is an empty one: it is kept and recorded as rejected, never dropped.
    raws = [r if isinstance(r, str) else "" for r in df["report_raw"].tolist()]
    if llm is not None and cache_dir is None:
        cache_dir = out_path.parent / "llm_cache"
    rows = clean_statuses(raws, llm, cache_dir)
    statuses = [r.status for r in rows]
    df = df.assign(
        report_clean=[r.text for r in rows],
        clean_status=statuses,
        clean_check=[r.check for r in rows],
    )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp")
    df.to_parquet(tmp, index=False)
    tmp.replace(out_path)  # atomic: a killed run never leaves a half-written manifest
    checks = Counter(r.check for r in rows if r.check)
    stats = CleanStats(len(df), dict(Counter(statuses)), dict(checks))
    log.info("cleaned %s: %s", in_path, stats.by_status)
    return stats
