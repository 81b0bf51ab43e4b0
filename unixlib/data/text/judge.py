"""Self-judgment of a cleaned report against its raw text (PAPER.md "Data cleaning").

The paper accepts a cleaned report only if it states the same findings as the raw one. The
same judgment runs on every cleaned row, whether the rules or an LLM wrote it
(:mod:`unixlib.data.text.clean`). A cleaned text passes when, in this order of checks:

1. ``format``: it is in ``FINDINGS: ... IMPRESSION: ...`` format with some text;
2. ``deid``: no de-identification span (``___``, ``XXXX``) is left;
3. ``labels``: the labeler gives it exactly the same 14 labels as the *raw* FINDINGS +
   IMPRESSION text (:func:`reference_text`). Agreement is exact over {1, 0, -1, NaN}: a
   positive or uncertain finding keeps its value, nothing new appears, and a negative that
   becomes "not mentioned" (or appears from nowhere) is a change too;
4. ``side``: every positive or uncertain observation is stated with the same sides (left,
   right, bilateral) as in the raw text;
5. ``severity``: ... and with the same severity words (small, moderate, large, mild, ...).

Sides and severities are read from the clause of each mention (:func:`finding_details`):
"Large left effusion" rewritten as "Small right effusion" keeps the 14 labels but fails 4.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from unixlib.data.schema import LABELS, NEGATIVE
from unixlib.data.text.labeler import Mention, find_mentions, labels_of, split_label_sentences
from unixlib.data.text.reports import DEID, format_report, report_body, split_report

CHECKS: tuple[str, ...] = ("format", "deid", "labels", "side", "severity")

# Side and severity words, each mapped to one canonical value.
_SIDE = {
    "left": "left",
    "right": "right",
    "bilateral": "bilateral",
    "bilaterally": "bilateral",
    "both": "bilateral",
    "bibasilar": "bilateral",
    "bibasal": "bilateral",
    "biapical": "bilateral",
}
_SEVERITY = {
    "tiny": "tiny",
    "trace": "trace",
    "small": "small",
    "minimal": "minimal",
    "mild": "mild",
    "mildly": "mild",
    "moderate": "moderate",
    "moderately": "moderate",
    "large": "large",
    "severe": "severe",
    "severely": "severe",
    "marked": "marked",
    "markedly": "marked",
    "massive": "massive",
    "extensive": "extensive",
    "substantial": "substantial",
}
_ATTR_WORD = re.compile(r"\b(?:" + "|".join([*_SIDE, *_SEVERITY]) + r")\b(?:-sided)?")
# A mention's clause ends at a comma, semicolon or a coordinating word before another noun.
_CLAUSE_END = re.compile(r",|;|\b(?:and|with|but|while|whereas|or)\b")


@dataclass(frozen=True)
class Judgment:
    """Outcome of :func:`judge`: ``check`` is "" when the text passes, else the first failed
    check (one of :data:`CHECKS`); ``reason`` says what differs."""

    check: str = ""
    reason: str = ""
    labels: frozenset[str] = frozenset()  # observations that differ (checks 3-5)

    @property
    def ok(self) -> bool:
        return not self.check


def reference_text(raw: str) -> str:
    """What the judge labels on the raw side: the report's content (:func:`report_body`), the
    same text the rule cleaner starts from."""
    return format_report(*report_body(raw))


def finding_details(text: str) -> dict[str, tuple[frozenset[str], frozenset[str]]]:
    """``{observation: (sides, severities)}`` over the positive or uncertain mentions of
    ``text``: the side and severity words of each mention's clause, canonicalised
    ("bibasilar" -> bilateral, "mildly" -> mild)."""
    return _read(text)[1]


Details = dict[str, tuple[frozenset[str], frozenset[str]]]


def _read(text: str) -> tuple[dict[str, float], Details]:
    """The 14 labels and the :func:`finding_details` of ``text``, from one labeler pass."""
    sides: dict[str, set[str]] = {}
    sevs: dict[str, set[str]] = {}
    mentions: list[Mention] = []
    for sentence in split_label_sentences(text):
        found = find_mentions(sentence)
        mentions += found
        for m in found:
            if m.name not in LABELS or m.label == NEGATIVE:
                continue
            ends = [c.end() for c in _CLAUSE_END.finditer(sentence[: m.start])]
            after = _CLAUSE_END.search(sentence, m.end)
            clause = sentence[ends[-1] if ends else 0 : after.start() if after else len(sentence)]
            for w in _ATTR_WORD.finditer(clause):
                word = w.group().removesuffix("-sided")
                if word in _SIDE:
                    sides.setdefault(m.name, set()).add(_SIDE[word])
                else:
                    sevs.setdefault(m.name, set()).add(_SEVERITY[word])
            sides.setdefault(m.name, set())
            sevs.setdefault(m.name, set())
    details = {n: (frozenset(sides[n]), frozenset(sevs[n])) for n in sides}
    return labels_of(mentions), details


def judge(raw: str, cleaned: str) -> Judgment:
    """Judge one cleaned text against its raw report (checks in the module docstring)."""
    try:
        findings, impression = split_report(cleaned)
    except ValueError:
        return Judgment("format", "not in 'FINDINGS: ... IMPRESSION: ...' format")
    if not (findings or impression):
        return Judgment("format", "empty findings and impression")
    if DEID.search(cleaned):
        return Judgment("deid", "de-identification span (___ or XXXX) left in the text")
    (ref, ref_d), (new, new_d) = _read(reference_text(raw)), _read(cleaned)
    differ = [n for n in LABELS if not _same(ref[n], new[n])]
    if differ:
        diffs = ", ".join(f"{n} {_word(ref[n])}->{_word(new[n])}" for n in differ)
        return Judgment("labels", f"labels differ: {diffs}", frozenset(differ))
    for check, k in (("side", 0), ("severity", 1)):
        differ = [n for n in ref_d if ref_d[n][k] != new_d.get(n, (frozenset(),) * 2)[k]]
        if differ:
            diffs = ", ".join(
                f"{n} {_set(ref_d[n][k])}->{_set(new_d.get(n, (frozenset(),) * 2)[k])}"
                for n in differ
            )
            return Judgment(check, f"{check} differs: {diffs}", frozenset(differ))
    return Judgment()


def judge_rewrite(raw: str, cleaned: str) -> str:
    """:func:`judge` as a reason string: ``""`` when accepted."""
    return judge(raw, cleaned).reason


def _set(values: frozenset[str]) -> str:
    return "/".join(sorted(values)) or "none"


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def _word(v: float) -> str:
    return "not mentioned" if math.isnan(v) else {1: "positive", 0: "negative", -1: "uncertain"}[v]
