"""Radiology report sections and rule-based cleaning (DESIGN.md section 4, "Cleaning").

A cleaned report has exactly the paper's format (PAPER.md, "Data cleaning")::

    FINDINGS: <findings text> IMPRESSION: <impression text>

Both keys are always present so that :func:`split_report` can parse every cleaned report;
a section the source lacks is written empty (``"FINDINGS: IMPRESSION: No acute process."``).

The rules work sentence by sentence on the FINDINGS and IMPRESSION sections only (indication,
technique, comparison, notification and wet-read sections are dropped whole):

1. notification sentences ("Dr. ___ was notified by telephone ...", "Findings were discussed
   with ___ at ___ p.m. on ___, time of discovery.") are dropped whole; "a.m."/"p.m." inside a
   sentence does not end it, and a clock time ("at ___ hours") marks a notification;
2. technique sentences ("PA and lateral views of the chest were obtained") are dropped, and a
   technique lead-in before a finding ("Frontal and lateral views of the chest show ...") is cut;
3. fillers and recommendations without a finding ("Clinical correlation is recommended") are
   dropped;
4. prior-study comparisons are rewritten to present tense where the sentence states a finding
   ("In comparison with the study of ___, there is little change in the substantial enlargement
   of the cardiomediastinal silhouette" -> "There is substantial enlargement of the
   cardiomediastinal silhouette.") and dropped where they only talk about the comparison;
5. de-identification spans (``___`` MIMIC, ``XXXX`` IU) are removed; a few IU over-redactions
   whose word is unambiguous from context are restored (``x-XXXX`` -> ``x-ray``), and a sentence
   that the removal leaves meaningless ("The XXXX are intact") is dropped unless it still names
   a finding - clinical content is never dropped for grammar's sake;
6. fragments are repaired or dropped (``reports_deid``): words that only introduced a cut span
   go with it ("infiltrate in the setting of ___" -> "infiltrate"), a sentence a cut left
   without subject or complement ("This is unchanged from prior" -> "This is") or naming only
   normal anatomy ("Stable cardiomediastinal silhouette") is dropped unless it names a
   pathology, list headings ("Chest.", "Right foot 1.") are dropped, and HTML entities,
   unbalanced brackets, empty parentheses and orphaned punctuation are tidied.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from unixlib.data.reports_deid import DEID as DEID  # re-exported: llm_clean marks spans with it
from unixlib.data.reports_deid import (
    FINDING,
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
    s = _rewrite_comparison(s)
    if s:
        s = remove_deid(s)
    s = tidy(s) if s else ""
    cut = s != before and (is_broken(s, min_words=1) or names_only_anatomy(s))
    if cut and not PATHOLOGY.search(s):
        return ""  # a cut left a fragment: "This is unchanged from prior." -> "This is."
    return "" if is_heading(s) else s


# --- comparisons ----------------------------------------------------------------------------

_DATE = r"(?:___|X{3,}|\d[\d/.:-]*(?:\s*[ap]\.?m\.?)?|(?:at|on|dated|from|of)\b)"
_PRIOR = (
    r"(?:the\s+|a\s+)?(?:(?:most\s+)?(?:recent|prior|previous|preceding|earlier|last|outside|"
    r"comparison|older|yesterday'?s?|today'?s?)\s+)*(?:(?:chest|frontal|portable|ap|pa|lateral|"
    r"supine|upright)\s+)*(?:studies|study|exams?|examinations?|radiographs?|films?|images?|"
    r"x-?rays?|x-X{3,}|ct|cts|one|prior|day)(?:\s+(?:of|from|dated|on|at|performed on|obtained on)?"
    rf"\s*{_DATE}(?:[\s,/]*{_DATE})*)?"
)
_PRIOR_REF = rf"(?:{_PRIOR}|___|X{{3,}})"
_CMP = (
    r"(?:in comparison (?:with|to)|(?:as |when )?compared (?:with|to)|relative to|since|from"
    r"|similar to)"
)
_CMP_LEAD = re.compile(rf"^{_CMP}\s+{_PRIOR_REF}\s*[,:]?\s*", re.IGNORECASE)
_CMP_TAIL = re.compile(
    # "..., unchanged from prior" and "... and is stable compared to ___" go with the reference
    rf"[,;]?\s*(?:(?:(?:and|which|that)\s+)?(?:(?:is|are|has been|have been|remains?|appears?)\s+)?"
    rf"(?P<stable>unchanged|stable|not significantly changed)\s+)?"
    rf"\b{_CMP}\s+{_PRIOR_REF}(?=[\s.,;]|$)",
    re.IGNORECASE,
)
_CHANGE_IN = re.compile(
    r"\b(?:there (?:is|has been)\s+)?(?:little|no|minimal|not much)\s+"
    r"(?:(?:significant|appreciable|substantial|relevant|overall|interval|radiographic)\s+)*"
    r"change\s+(?:in\s+)?(?:the\s+)?(?:appearance of\s+(?:the\s+)?)?",
    re.IGNORECASE,
)
_AGAIN = re.compile(
    r"\b(again|redemonstrated|re-demonstrated)\s+(seen|noted|demonstrated|"
    r"identified|visualized|present)\b",
    re.IGNORECASE,
)
_TEMPORAL = re.compile(
    r"\b(as before|as previously (seen|noted|described)|again|previously (seen|noted|described)|"
    # not after a copula: "X are unchanged in appearance" is _STABLE_PRED's to rewrite
    r"(?<!\bis )(?<!\bare )(?<!\bremains )(?<!\bremain )unchanged in appearance|"
    r"in the interval|compared to prior|since prior)\b",
    re.IGNORECASE,
)
_STABLE_PRED = re.compile(
    r"\s+(is|are|remains?|has remained|have remained)\s+(overall\s+|essentially\s+|grossly\s+|"
    r"relatively\s+)?(stable|unchanged|not changed|similar)(\s+in\s+(appearance|size|position))?"
    r"\s*(?=[.;]?\s*$)",
    re.IGNORECASE,
)
_ONLY_COMPARISON = re.compile(
    r"^(no|without)?\s*(prior|previous|comparison)\b|^comparisons?\b|^(there is |there has been )?"
    r"(no|little|minimal)\s+((significant|appreciable|substantial|relevant|overall|interval|"
    r"radiographic)\s+)*change\b|^(unchanged|stable)\s+(exam|examination|study|appearance|chest|"
    r"radiograph)|"
    # a change word with nothing it is about: "Unchanged.", "Improved from prior." (cut)
    r"^(unchanged|stable|similar|improved|improving|worse|worsened|increased|decreased)"
    r"(\s+appearance)?\W*$",
    re.IGNORECASE,
)


def _rewrite_comparison(s: str) -> str:
    """Remove prior-study references; "" when the sentence only talks about the comparison."""
    s = _CMP_LEAD.sub("", s)
    tail = _CMP_TAIL.search(s)
    s = _CMP_TAIL.sub("", s)
    if tail and tail.group("stable") and names_only_anatomy(s):
        return ""  # "The cardiomediastinal silhouette is stable from prior": no finding left
    if _CHANGE_IN.search(s):
        rest = _CHANGE_IN.sub("there is ", s, count=1)
        return rest if FINDING.search(rest) else ""
    if _ONLY_COMPARISON.search(s.strip()) and not FINDING.search(s):
        return ""
    s = _AGAIN.sub(r"\2", s)
    s = _TEMPORAL.sub("", s)
    s = _present_tense(s)
    if _STABLE_PRED.search(s):
        # "The left effusion is unchanged" -> "The left effusion is present"; a statement
        # about normal anatomy being unchanged carries no finding and is dropped.
        subject = _STABLE_PRED.split(s)[0]
        if not FINDING.search(subject):
            return ""
        plural = _STABLE_PRED.search(s).group(1).lower() in ("are", "remain", "have remained")
        s = _STABLE_PRED.sub(" are present" if plural else " is present", s)
    # "A left effusion remains." -> "... is present."; elsewhere "remains" is a plain copula
    s = re.sub(r"\bremains(?=\s*[.;]?\s*$)", "is present", s, flags=re.IGNORECASE)
    s = re.sub(r"\bremain(?=\s*[.;]?\s*$)", "are present", s, flags=re.IGNORECASE)
    s = re.sub(r"\bremains\b", "is", s, flags=re.IGNORECASE)
    s = re.sub(r"\bremain\b", "are", s, flags=re.IGNORECASE)
    # the adjective use: "Stable mild cardiomegaly", "There is stable, mild cardiomegaly";
    # what is left must still say something ("Stable cardiomediastinal silhouette" does not)
    kept = _STABLE_ADJ.sub(_drop_adjective, s)
    return "" if kept != s and names_only_anatomy(kept) else kept


# A change word as the predicate: "The left effusion has increased" / "Pneumothorax is new"
# -> "... is present" (present tense: the finding is there now, its size words stay).
_PLURAL = ("are", "have", "have been", "were")
_CHANGE_PRED = re.compile(
    r"\s+(is|are|has|have|has been|have been|was|were)\s+(?:(?:slightly|mildly|markedly|minimally|"
    r"somewhat|substantially|significantly)\s+)?(?:new|increased|decreased|improved|worsened|"
    r"progressed|enlarged|increasing|decreasing|improving|worsening|enlarging|larger|smaller|"
    r"newly (?:seen|apparent|identified))(?:\s+in\s+(?:size|extent))?(?=\s*[.;]?\s*$)",
    re.IGNORECASE,
)
# A change word before its finding: "New large right pneumothorax", "a worsening effusion".
_CHANGE_ADJ = re.compile(
    r"\b(?P<art>an?\s+)?(?:new|newly (?:developed|appearing|seen)|worsening|worsened|improving|"
    r"improved|enlarging|interval)\s+(?=(?!and\b|or\b|in\b|with\b|since\b|from\b|change|increase|"
    r"decrease|develop|improve|worsen|progress)(?P<next>[a-z]))",
    re.IGNORECASE,
)
_CHANGE_NOUN = re.compile(
    r"\b(?:there (?:is|has been)\s+)?(?:an?\s+)?(?:(?:slight|mild|interval)\s+)*"
    r"(?:increase|improvement|worsening|progression)\s+(?:in\s+)?(?:the\s+)?"
    r"(?:(?:size|extent|degree|amount) of\s+(?:the\s+)?)?",
    re.IGNORECASE,
)


def _present_tense(s: str) -> str:
    """Change words go where a finding is their subject or object; the finding stays."""
    pred = _CHANGE_PRED.search(s)
    if pred and PATHOLOGY.search(s[: pred.start()]):
        plural = pred.group(1).lower() in _PLURAL
        s = s[: pred.start()] + (" are present" if plural else " is present") + s[pred.end() :]
    noun = _CHANGE_NOUN.search(s)
    if noun and PATHOLOGY.search(s[noun.end() :]):
        s = s[: noun.start()] + "there is " + s[noun.end() :]
    return _CHANGE_ADJ.sub(_drop_adjective, s)


_STABLE_ADJ = re.compile(
    r"\b(?P<art>an?\s+)?(?:stable|unchanged),?\s+"
    r"(?=(?!and\b|or\b|in\b|with\b|since\b|from\b|compared\b)(?P<next>[a-z]))",
    re.IGNORECASE,
)


def _drop_adjective(m: re.Match[str]) -> str:
    """Cut "stable"/"unchanged" and fix its article: "an unchanged silhouette" -> "a silhouette"."""
    if not m.group("art"):
        return ""
    article = "an" if m.group("next").lower() in "aeiou" else "a"
    return (article.capitalize() if m.group("art")[0].isupper() else article) + " "
