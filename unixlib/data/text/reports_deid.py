"""Sentence repair for the rule cleaner (``reports.py``): de-identification spans, fragments
that cuts leave behind, and punctuation.

Two vocabularies decide what must survive a cut: :data:`FINDING` (any clinical statement,
normal ones included: "lungs are clear") and the narrower :data:`PATHOLOGY` (a named
abnormality or device). A sentence that names a pathology (or one of the labeler's
"other findings": scoliosis, granuloma, ...) is never dropped, however broken;
anything else that a cut leaves without a subject, a complement or a predicate is dropped,
because a fragment such as "Are normal." or "On, time of discovery." says nothing a reader
or a labeler can use.
"""

from __future__ import annotations

import re

DEID = re.compile(r"_{2,}|X{3,}")  # MIMIC "___", IU "XXXX"

# Words whose presence makes a sentence a clinical statement that must never be dropped.
FINDING = re.compile(
    r"cardiomegal|enlarge|widen|effusion|pneumothora|opaci|consolidat|atelecta|edema|pneumon|"
    r"infiltrat|airspace|air space|nodul|mass\b|lesion|fractur|tube|line\b|catheter|pacemaker|"
    r"pacer|wire|clip|device|stent|valve|\bicd\b|\bpicc|\bport\b|\bdrain|\bleads?\b|electrode|"
    r"hardware|prosthe|generator|granulom|scar|thicken|hernia|emphysema|fibros|copd|spondyl|"
    r"osteophyt|congest|calcif|deformit|degenerat|collapse|cavit|abnormal|disease|process|acute|"
    r"normal|negative|clear|unremarkable|intact|tortuous|kyphos|scolios|osteop|implant|sternotomy|"
    r"surgical|elevat|blunt|hyperinfl|hyperexpan|low lung volume|markings|prominen|free air",
    re.IGNORECASE,
)
# Named abnormalities: the narrower test used where a sentence is otherwise dropped (a
# recommendation, a comparison, a sentence broken by a removed span). Besides the 14
# observations it names the "other findings" of the labeler (scoliosis, granuloma, hernia, ...):
# "Stable scoliosis XXXX." must keep "Scoliosis.", or No Finding flips.
PATHOLOGY = re.compile(
    r"cardiomegal|enlarge|effusion|pneumothora|opaci|consolidat|atelecta|edema|pneumon|"
    r"infiltrat|nodul|mass\b|lesion|fractur|tube|catheter|pacemaker|line\b|granulom|scar|"
    r"thicken|hernia|emphysema|congest|malignan|\bicd\b|\bpicc|\bport\b|\bdrain|\bleads?\b|"
    r"electrode|hardware|prosthe|generator|sternotomy|clip|scolio|kyphos|degenerat|spondyl|"
    r"osteophyt|calcifi|deformit|tortu|hyperinfl|hyperexpan|osteopen|metasta|adenopathy|"
    r"blunt|elevat|widen|prominen|engorge|densit|fibros|cardiomediastinal enlargement",
    re.IGNORECASE,
)

# IU X-ray over-redacts a few common words. Only words that carry no finding are restored
# (the word is fixed by its neighbour and states nothing clinical on its own); a redacted
# word that could be clinical is never guessed: "pulmonary XXXX" is not "pulmonary
# vasculature", which would state a normal-vessels finding no radiologist wrote.
# "XXXX-A-XXXX" is the one device name restored: the labeler already reads the redacted
# spelling as a support device, so the restoration adds nothing the raw text did not state.
_RESTORE: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p, re.IGNORECASE), r)
    for p, r in (
        (r"\bx-X{3,}", "x-ray"),
        (r"\bX{3,}-a-X{3,}", "Port-A-Cath"),
        (r"\b(is|are|remains?) in X{3,}", r"\1 in place"),  # a device's position, no finding
        (r"\bmost X{3,}", "most likely"),
        (r"\b(no|without) X{3,} of\b", r"\1 signs of"),
    )
)
# "<word> XXXX" as one item of a list loses the whole item with its comma or "and": "The
# heart, pulmonary XXXX and mediastinum are normal" -> "The heart and mediastinum are normal".
_ITEM = r"(?:[A-Za-z]+\s+)?X{3,}"
_LIST_ITEM = re.compile(
    rf",\s*{_ITEM}(?=\s*(?:,|\band\b))"  # a middle item: "heart, pulmonary XXXX and ..."
    rf"|,?\s+and\s+{_ITEM}(?=\s+(?:is|are|appears?|within)\b)"  # the last item
)
_SPAN = r"(?:___|X{3,})"
# A run of spans with the glue between them, date pieces ("XXXX/11") and wrapping brackets.
_SPANS = rf"[<(\[-]?\s*(?:\d{{1,4}}/)?{_SPAN}(?:[\s/,:<>()-]*{_SPAN})*(?:/\d{{1,4}})*\s*[>)\]-]?"
# A span that ends the sentence takes the words that only introduced it along:
# "infiltrate in the setting of ___." -> "infiltrate.", "granuloma on ___ of ___." -> "granuloma."
_TAIL = re.compile(
    r"(?:,?\s+(?:in the setting of|(?:and|which|that) (?:is|are|was|were)|in|on|at|of|from|since"
    rf"|dated|by|for|to|with|and|or|the|a|an)\b)*\s*{_SPANS}"
    rf"(?:\s*(?:of|on|in|at)\s*{_SPANS})*\s*(?=[.;]?\s*$)",
    re.IGNORECASE,
)
_VERB = r"(?:is|are|was|were|appears?|remains?|seems?|measures?|has|have)"
_BROKEN = re.compile(
    rf"^{_VERB}\b"  # subject cut: "___ are normal." -> "Are normal."
    rf"|^(?:the|a|an|of|and|with|or|in|on|at|to|by|for|from)\s+(?:{_VERB}\b|[.,])"
    r"|^(?:of|and|or|nor|but|for)\b"  # a cut took the head of the sentence: "___ of the spine"
    rf"|^(?:pulmonary|lymph|costophrenic|aortic|sternotomy|lung)\s+{_VERB}\b"  # its noun was cut
    r"|\b(?:of|and|or|with|the|a|an|to|by|at|on|in|from|is|are|was|were|be|been|remains?|appears?"
    r"|grossly|relatively|essentially)\s*\.?$",
    re.IGNORECASE,
)
# A list heading of a multi-part IU report ("Chest.", "Right foot 1.", "4 images."): a body
# part or an image count, nothing said about it.
_HEADING = re.compile(
    r"^(?:(?:left|right|bilateral|the|a|\d+)\s+)*(?:chest|abdomen|pelvis|kub|(?:(?:cervical|"
    r"thoracic|lumbar|lumbosacral)\s+)?spine|ribs?(?: films?)?|knee|ankle|foot|hand|wrist|elbow|"
    r"shoulder|hip|femur|tibia|humerus|forearm|clavicle|sternum|skull|(?:chest )?radiographs?|"
    r"images?|views?|films?)(?:\s*:)?(?:\s+\d+)?\s*\.?",
    re.IGNORECASE,
)
# Words of a phrase that names normal anatomy (or points back: "this", "these findings") and
# says nothing about it ("heart size and mediastinal contours"): what "stable" leaves behind.
_ANATOMY_ONLY = re.compile(
    r"(?:\W|\d|\b(?:a|an|the|and|of|in|otherwise|this|these|that|those|it|they|findings|appearing"
    r"|heart|cardiac|cardio|cardiomediastinal|mediastinal|mediastinum|hilar|hila|pulmonary|lungs?"
    r"|vascular|vascularity|vasculature|chest|thorax|osseous|bony|bones|structures|soft|tissues?"
    r"|aorta|aortic|trachea|(?:hemi)?diaphragms?|contours?|silhouettes?|size|configuration"
    r"|appearance|position|exam|examination|study|radiograph|film|volumes?)\b)*",
    re.IGNORECASE,
)


def remove_deid(s: str) -> str:
    """Remove ``___``/``XXXX`` spans from one sentence; "" when what is left is broken.

    Spans are restored first where the neighbouring word fixes the redacted one; a span that
    ends the sentence also removes its leading preposition. A result that still names a
    :data:`PATHOLOGY` is kept as it is; anything else that :func:`is_broken` or
    :func:`names_only_anatomy` ("___ lung volumes." -> "Lung volumes.") is dropped.
    """
    if not DEID.search(s):
        return s
    for pattern, word in _RESTORE:
        s = pattern.sub(word, s)
    s, n_items = _LIST_ITEM.subn("", s)
    if n_items:  # "Heart and pulmonary XXXX are normal" -> "Heart is normal"
        s = re.sub(r"^((?:the\s+)?[A-Za-z]+)\s+are\b", r"\1 is", s)
    s = _TAIL.sub("", s)
    s = tidy(re.sub(_SPANS, " ", s))
    said_nothing = is_broken(s) or names_only_anatomy(s)
    return "" if said_nothing and not PATHOLOGY.search(s) else s


def strip_deid(s: str) -> str:
    """The least edit that removes every span: spans (and the glue between them) cut, nothing
    else dropped; the restorations of :func:`remove_deid` apply, and a span that ends the
    sentence takes its preposition along ("at ___."). "" when no word is left."""
    for pattern, word in _RESTORE:
        s = pattern.sub(word, s)
    s = _TAIL.sub("", s)
    return tidy(re.sub(_SPANS, " ", s))


def is_broken(s: str, min_words: int = 2) -> bool:
    """True for a sentence a cut left without subject or complement ("Lung volumes are.",
    "The appears intact.") or with fewer than ``min_words`` words."""
    short = len(re.findall(r"[A-Za-z]{2,}", s)) < min_words
    return short or bool(_BROKEN.search(s.rstrip(". ")))


def is_heading(s: str) -> bool:
    """True for a list heading ("Chest.", "Right foot 1.", "4 images."), which states nothing."""
    return _HEADING.fullmatch(s.strip()) is not None


def names_only_anatomy(s: str) -> bool:
    """True when every word of ``s`` names normal anatomy, the study or points back ("Heart
    size and mediastinal contours.", "These."), i.e. ``s`` says nothing about it."""
    return re.search(r"[A-Za-z]", s) is not None and _ANATOMY_ONLY.fullmatch(s) is not None


# Brackets and angle brackets that open or close nothing ("[<Heart size is normal.").
_PAIRS = {"(": ")", "[": "]", "<": ">", "{": "}"}


def _strip_unbalanced(s: str) -> str:
    """Drop brackets without a partner (a cut removed it, or the export added it)."""
    stack: list[int] = []
    drop: set[int] = set()
    closers = {v: k for k, v in _PAIRS.items()}
    for i, ch in enumerate(s):
        if ch in _PAIRS:
            stack.append(i)
        elif ch in closers:
            if stack and s[stack[-1]] == closers[ch]:
                stack.pop()
            else:
                drop.add(i)
    drop.update(stack)
    # "<" and ">" between numbers or spaces are comparisons ("nodule < 5 mm"), not brackets.
    drop = {i for i in drop if s[i] not in "<>" or not re.match(r"[<>]=?\s*\d", s[i:])}
    return "".join(ch for i, ch in enumerate(s) if i not in drop)


_DOUBLED = re.compile(r"\b(the|a|an|of|and|or|is|are|in|on|with|to|at)\s+\1\b", re.IGNORECASE)


def tidy(s: str) -> str:
    """Whitespace, punctuation and capitalisation after spans were cut out ("" when no word
    is left): unbalanced brackets and empty parentheses go, a comma before the full stop goes,
    and the sentence starts upper case and ends with a full stop."""
    s = " ".join(_strip_unbalanced(s).split())
    wrapped = re.fullmatch(r"[\[(]([^\[\]()]*)[\])]\.?", s)  # "[Lungs are clear]." -> its text
    s = wrapped.group(1) if wrapped else s
    s = re.sub(r"\(\s*[,;:./-]*\s*\)|\[\s*[,;:./-]*\s*\]", " ", s)
    s = re.sub(r"\s*/(?=\s*(?:[.,;:]|$))", "", s)  # a slash whose right-hand side was cut
    s = " ".join(s.split())
    s = re.sub(r"\s+([.,;:])", r"\1", s)
    s = re.sub(r"([,;:])(?:\s*[,;:])+", r"\1", s)
    s = re.sub(r"[,;:]+(?=\.)", "", s)
    s = re.sub(r"^[\s,;:./-]+|[\s,;:/-]+$", "", s)
    s = re.sub(r"\.{2,}", ".", s)
    s = _DOUBLED.sub(r"\1", s)  # a dictation slip: "the the", "of of"
    if not re.search(r"[A-Za-z]", s):
        return ""
    s = s[0].upper() + s[1:]
    return s if s.endswith((".", "?", "!")) else s + "."
