"""Prior-study comparisons and change words in one report sentence (rule 4 of ``reports``).

A comparison is removed with the words that only served it ("..., unchanged since ___",
"In comparison with the study of ___, ..."); a change word is turned into a present-tense
statement where a finding is its subject or object ("The small left effusion has increased"
-> "The small left effusion is present", "New large right pneumothorax" -> "Large right
pneumothorax"); a sentence that only talks about the comparison ("No change since the prior
study.") is dropped. Size, side and hedge words are never touched.
"""

from __future__ import annotations

import re

from unixlib.data.text.reports_deid import FINDING, PATHOLOGY, names_only_anatomy

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


def rewrite_comparison(s: str) -> str:
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
