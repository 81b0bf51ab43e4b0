"""Radiology report sections and rule-based cleaning (DESIGN.md section 4, "Cleaning").

A cleaned report has the paper's format (PAPER.md, "Data cleaning")::

    FINDINGS: <findings text> IMPRESSION: <impression text>

A section the source lacks loses its key (``"IMPRESSION: No acute process."``), so no
reference reads "FINDINGS: IMPRESSION:"; :func:`split_report` parses either form.

The rules work sentence by sentence on the FINDINGS and IMPRESSION sections only (indication,
technique, comparison, notification and wet-read sections are dropped whole). They trim
inside a sentence rather than drop a sentence that holds a finding, and never insert a
clinical word the raw text lacks; :mod:`unixlib.data.text.judge` checks every result.

1. notifications: a sentence that is only a notification ("Dr. ___ was notified by telephone
   ...") is dropped; a notification clause after a finding is cut off ("Small left effusion,
   which was discussed with Dr. ___ at ___." -> "Small left effusion."); "a.m."/"p.m." inside
   a sentence does not end it, and a clock time ("at ___ hours") marks a notification;
2. technique sentences ("PA and lateral views of the chest were obtained") are dropped, and a
   technique lead-in before a finding ("Frontal and lateral views of the chest show ...") is cut;
3. fillers and recommendations without a finding ("Clinical correlation is recommended") are
   dropped;
4. prior-study comparisons and change words are rewritten to present tense where the sentence
   states a finding ("In comparison with the study of ___, there is little change in the
   substantial enlargement of the cardiomediastinal silhouette" -> "There is substantial
   enlargement of the cardiomediastinal silhouette."; "The small left effusion has increased
   since ___" -> "The small left effusion is present."; "New large right pneumothorax" ->
   "Large right pneumothorax") and dropped where they only talk about the comparison;
5. de-identification spans (``___`` MIMIC, ``XXXX`` IU) are removed; only redacted words that
   state nothing clinical are restored (``x-XXXX`` -> ``x-ray``), a redacted list item goes with
   its comma ("The heart, pulmonary XXXX and mediastinum" -> "The heart and mediastinum"), and
   a sentence that the removal leaves meaningless ("The XXXX are intact") is dropped unless it
   still names a finding ("Stable scoliosis XXXX." -> "Scoliosis.");
6. fragments are repaired or dropped (``reports_deid``): words that only introduced a cut span
   go with it ("infiltrate in the setting of ___" -> "infiltrate"), a sentence a cut left
   without subject or complement ("This is unchanged from prior" -> "This is") or naming only
   normal anatomy ("Stable cardiomediastinal silhouette") is dropped unless it names a
   pathology, list numbers ("1.", also mid-text: "aspiration 2. Suture") and list headings
   ("Chest.", "Right foot 1.") go, and HTML entities, doubled words ("the the"), unbalanced
   brackets, empty parentheses and orphaned punctuation are tidied.
"""

from __future__ import annotations

import functools
import html
import re
from dataclasses import dataclass

from unixlib.data.text.reports_compare import rewrite_comparison
from unixlib.data.text.reports_deid import (
    DEID as DEID,  # re-exported: llm_clean marks spans with it
)
from unixlib.data.text.reports_deid import (
    PATHOLOGY,
    is_broken,
    is_heading,
    names_only_anatomy,
    remove_deid,
    tidy,
)

# Header spelling -> section key. Headers are matched with a trailing colon, in upper case
# anywhere (MIMIC puts several on one line) or in any case at the start of a line (IU style).
_HEADERS: dict[str, str] = {
    "FINDINGS": "findings",
    "FINDING": "findings",
    "IMPRESSION": "impression",
    "IMPRESSIONS": "impression",
    "CONCLUSION": "impression",
    "INDICATION": "indication",
    "INDICATIONS": "indication",
    "HISTORY": "indication",
    "CLINICAL HISTORY": "indication",
    "CLINICAL INFORMATION": "indication",
    "REASON FOR EXAMINATION": "indication",
    "REASON FOR EXAM": "indication",
    "EXAMINATION": "examination",
    "EXAM": "examination",
    "TECHNIQUE": "technique",
    "COMPARISON": "comparison",
    "COMPARISONS": "comparison",
    "NOTIFICATION": "notification",
    "RECOMMENDATION": "recommendation",
    "RECOMMENDATIONS": "recommendation",
    "ADDENDUM": "addendum",
    "WET READ": "wet_read",
}
# Every key parse_sections returns; "preamble" is text before the first header.
SECTION_KEYS: tuple[str, ...] = ("preamble", *dict.fromkeys(_HEADERS.values()))

_NAMES = "|".join(sorted(map(re.escape, _HEADERS), key=len, reverse=True))
_HEADER_RE = re.compile(
    rf"(?:(?<![A-Za-z])(?P<up>{_NAMES})\s*:)|(?:^[ \t]*(?P<any>(?i:{_NAMES}))[ \t]*:)",
    re.MULTILINE,
)
_FINAL_REPORT_RE = re.compile(r"^\s*FINAL REPORT\s*$", re.MULTILINE)
_FORMAT_RE = re.compile(
    r"^\s*(?=FINDINGS:|IMPRESSION:)(?:FINDINGS:\s*(?P<f>.*?))?\s*(?:IMPRESSION:\s*(?P<i>.*?))?\s*$",
    re.DOTALL,
)


@dataclass(frozen=True)
class RuleResult:
    """Outcome of :func:`rule_clean`: ``text`` in FINDINGS/IMPRESSION format ("" when not ok)."""

    text: str
    ok: bool
    reason: str = ""


def parse_sections(text: str) -> dict[str, str]:
    """Split a report into sections.

    Returns a dict over :data:`SECTION_KEYS` (lower case: ``findings``, ``impression``,
    ``indication``, ``comparison``, ``technique``, ``examination``, ``notification``,
    ``wet_read``, ...), each the section's text with whitespace collapsed, or ``""`` when
    absent. A repeated header (e.g. an addendum's second IMPRESSION) appends to its section.
    MIMIC's "FINAL REPORT" banner line is removed.
    """
    text = _FINAL_REPORT_RE.sub("\n", text)
    out = dict.fromkeys(SECTION_KEYS, "")
    key, start = "preamble", 0
    for m in _HEADER_RE.finditer(text):
        _append(out, key, text[start : m.start()])
        key, start = _HEADERS[(m.group("up") or m.group("any")).upper()], m.end()
    _append(out, key, text[start:])
    return out


def _append(out: dict[str, str], key: str, chunk: str) -> None:
    chunk = " ".join(chunk.split())
    if chunk:
        out[key] = f"{out[key]} {chunk}".strip()


def report_body(text: str) -> tuple[str, str]:
    """``(findings, impression)`` of a raw report: what every stage reads as its content.

    A text with no recognised section header at all is free text and counts as findings
    (folder sources and a few MIMIC reports are written that way); a text whose only headers
    are INDICATION / COMPARISON / ... has no content: ``("", "")``. Whitespace is collapsed.
    """
    sections = parse_sections(text)
    if not any(value for key, value in sections.items() if key != "preamble"):
        return sections["preamble"], ""
    return sections["findings"], sections["impression"]


def format_report(findings: str, impression: str) -> str:
    """``"FINDINGS: <findings> IMPRESSION: <impression>"``; an empty section loses its key
    (``"IMPRESSION: No acute process."``), so no reference reads "FINDINGS: IMPRESSION:"."""
    parts = [
        f"{key} {text.strip()}"
        for key, text in (("FINDINGS:", findings), ("IMPRESSION:", impression))
        if text.strip()
    ]
    return " ".join(parts)


def split_report(clean_text: str) -> tuple[str, str]:
    """Inverse of :func:`format_report`: ``(findings, impression)``, ``""`` for a missing key.

    Raises:
        ValueError: the text is not in FINDINGS/IMPRESSION format (neither key, or text
            before the first key).
    """
    m = _FORMAT_RE.match(clean_text)
    if m is None:
        raise ValueError(f"not a 'FINDINGS: ... IMPRESSION: ...' report: {clean_text[:80]!r}")
    return m.group("f") or "", m.group("i") or ""


def rule_clean(text: str) -> RuleResult:
    """Clean one raw report with the rules listed in the module docstring.

    Not ok (with ``reason``) when the report is empty, has no content (:func:`report_body`:
    headers, but neither FINDINGS nor IMPRESSION), or nothing is left after cleaning.
    """
    if not text.strip():
        return RuleResult("", False, "empty report")
    findings, impression = report_body(text)
    if not (findings or impression):
        return RuleResult("", False, "no findings or impression section")
    findings, impression = clean_section(findings), clean_section(impression)
    if not (findings or impression):
        return RuleResult("", False, "nothing left after cleaning")
    return RuleResult(format_report(findings, impression), True)


def clean_section(text: str) -> str:
    """Apply the sentence rules to one section's text; returns the kept sentences joined."""
    return " ".join(c for _, c in clean_section_pairs(text) if c)


def clean_section_pairs(text: str) -> list[tuple[str, str]]:
    """``(raw sentence, cleaned sentence or "")`` for every sentence of a section, so that a
    caller can undo the edit of one sentence (``clean.judged_rule_clean``)."""
    return [(s, _clean_sentence(s)) for s in split_sentences(html.unescape(text))]


# --- sentences ------------------------------------------------------------------------------

_ABBREV = re.compile(
    r"\b(?:Dr|Drs|Mr|Mrs|Ms|approx|vs|No|e\.g|i\.e)\.|\b[ap]\.m\.(?=\s*(?-i:[a-z0-9_,(]))",
    re.IGNORECASE,
)
_SPLIT = re.compile(r"(?<=[.!?;])\s+(?=\S)|(?<=[a-z]\.)(?=[A-Z][a-z])")


# A list number inside a run of text starts a new item: "... aspiration 2. Suture ...".
_MID_ENUM = re.compile(r"(?<=[A-Za-z,_])\s+\(?\d{1,2}[.)]\s+(?=[A-Z])")


def split_sentences(text: str) -> list[str]:
    """Sentences of a section; list enumerators ("1.", "2)") are removed, decimals kept."""
    text = _MID_ENUM.sub(". ", " ".join(text.split()))
    protected = _ABBREV.sub(lambda m: m.group(0)[:-1] + "\0", text)
    out = []
    for s in _SPLIT.split(protected):
        s = re.sub(r"^\(?\d{1,2}[.)](?!\d)\s*", "", s.replace("\0", ".")).strip()
        if re.search(r"[A-Za-z]", s):
            out.append(s)
    return out


_NOTIFICATION = re.compile(
    r"\b(notified|paged|telephoned?|phone|discuss\w*|communicated|dr\b\.?|were reviewed with|"
    r"veriphy|critical result|time of (this )?(discovery|dictation|report)|called to|"
    r"message (was )?left|left a message|voice ?mail|certified radiologist|electronically signed)\b"
    # a clock time ("at ___ p.m.", "at XXXX hours", "at 14:20") dates a call, never a finding
    r"|\bat\s+(?:___|X{3,}|\d{1,2}(?::?\d\d)?)\s*(?:hours\b|hrs\b|[ap]\.?m\b\.?)",
    re.IGNORECASE,
)
_TECH_LEAD = re.compile(
    r"^(the\s+)?(\S+\s+)?(examination|exam|study)?\s*(consists of\s+)?((single|portable|upright|"
    r"supine|semi-?upright|frontal|lateral|pa|ap|and|two|2|bedside|chest)[\s,]+)+"
    r"(views?|radiographs?|images?|projections?|films?)( of the chest)?"
    r"(\s+(were|was|is|are)\s+(obtained|provided|performed|submitted|acquired|reviewed))?"
    r"(\s*(?P<verb>show|shows|demonstrate|demonstrates|reveal|reveals)\s+)?[\s,:]*",
    re.IGNORECASE,
)
_FILLER = re.compile(
    r"\b(please (see|refer|note)|clinical correlation|correlate clinically|"
    r"clinically correlate|recommend(ed|s)?|suggest(ed)? (follow|further|repeat|ct|clinical)|"
    r"consider(ation)? (of )?(ct|follow|repeat|further)|follow-?up|further evaluation|"
    r"if clinically (indicated|warranted)|may be helpful|could be (obtained|considered)|"
    r"is advised|as clinically indicated|dictated by|reported by|I have (personally )?reviewed|"
    r"thanks|thank you|please(?=\W*$))\b",
    re.IGNORECASE,
)


# Where a notification clause starts inside a sentence that states a finding first:
# "Small left effusion, which was discussed with ___" / "... effusion; findings were ...".
_CLAUSE_START = re.compile(
    r"(?:,|\s-\s|\s(?=which\b|and\s+(?:this|these|the|was|were|that)\b))"
    r"|\s(?=(?:(?:this|these|the)\s+(?:findings?|results?)\s+)?(?:was|were|is|are|has been|have been)"
    r"\s+(?:\w+\s+)?(?:notified|paged|telephoned|discussed|communicated|called|reported)\b)",
    re.IGNORECASE,
)


def _trim_notification(s: str) -> str:
    """Cut a notification clause off the finding it follows; "" when nothing else is said."""
    cue = _NOTIFICATION.search(s)
    if cue is None:
        return s
    head = s[: cue.start()]
    cuts = [m.start() for m in _CLAUSE_START.finditer(head)]
    kept = tidy(head[: cuts[-1]]) if cuts else ""
    if not kept or not PATHOLOGY.search(kept) or is_broken(kept):
        return ""  # "Dr. ___ was notified ...": the whole sentence is the notification
    return kept


# Reports repeat sentences; each distinct one is cleaned once per process (a pure function).
@functools.lru_cache(maxsize=1 << 16)
def _clean_sentence(s: str) -> str:
    """One sentence -> its cleaned form, or "" to drop it."""
    s = _trim_notification(s)
    if not s:
        return ""
    lead = _TECH_LEAD.match(s)
    if lead and lead.end() > 0:
        rest = s[lead.end() :].strip(" .")
        if not rest:  # the whole sentence describes the technique
            return ""
        if lead.group("verb"):  # "PA and lateral views show <finding>" -> "<finding>"
            s = rest
    if _FILLER.search(s) and not PATHOLOGY.search(s):
        return ""
    before = tidy(s)
    s = rewrite_comparison(s)
    if s:
        s = remove_deid(s)
    s = tidy(s) if s else ""
    cut = s != before and (is_broken(s, min_words=1) or names_only_anatomy(s))
    if cut and not PATHOLOGY.search(s):
        return ""  # a cut left a fragment: "This is unchanged from prior." -> "This is."
    return "" if is_heading(s) else s
