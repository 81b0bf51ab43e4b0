"""CheXpert-style rule labeler: 14 observations per report as 1 / 0 / -1 / NaN.

A pure-Python re-implementation of the CheXpert labeler's method (Irvin et al., AAAI 2019)
with surface rules instead of a dependency parser:

1. **Sentences.** The report is lower-cased and split at ``. ; : ? !`` and newlines
   (not at decimal points).
2. **Mentions.** Each observation has phrase patterns (``labeler_rules.MENTIONS``) minus
   look-alikes (``UNMENTIONS``: "pericardial effusion" is no pleural effusion). Anchors such
   as "heart size" become mentions only when qualified: "heart size is normal" is a negative
   mention of cardiomegaly, "the heart is enlarged" a positive one, "borderline heart size"
   an uncertain one; a qualifier before coordinated anchors covers them all ("normal heart
   size and mediastinal contours" rules out both). Global normal statements ("lungs are
   clear", "no acute cardiopulmonary process") name no observation and so set no label, as
   in CheXpert: 0 always means the report explicitly ruled that observation out.
3. **Classification** of each mention, in CheXpert's order of precedence:
   (a) negated uncertainty ("cannot exclude pneumonia", "effusion is not excluded") -> -1;
   (b) negation before ("no", "without", "free of", ...) or after ("... is not seen",
   "... has resolved") -> 0; (c) uncertainty before ("may", "possible", "question of",
   "versus", "differential", ...) or after ("... is possible", "... may be present") -> -1;
   (d) otherwise 1. As in CheXpert, "likely", "consistent with" and "suggestive of" stay
   positive, and "no opacity to suggest pneumonia" negates pneumonia. A cue reaches a
   mention only inside its scope: the same sentence, no scope break in between ("but",
   "however", "there is", ...) and, before the mention, at most ``PRE_WINDOW_WORDS`` words
   away. Interpretive links ("consistent with", "may", "due to") end the scope of a
   negation but carry a hedge forward ("may be due to pneumonia" is uncertain).
4. **Aggregation** per observation over all its mentions: positive beats uncertain beats
   negative (CheXpert's rule); no mention -> NaN. As CheXpert does, a positive or uncertain
   "heart failure"/"CHF" also adds an uncertain cardiomegaly mention, and vascular congestion
   is an uncertain edema mention.
5. **No Finding** is 1 when no observation other than Support Devices, and none of
   CheXpert's "other finding" phrases (``OTHER_FINDINGS``: emphysema, scoliosis, granuloma,
   ...), is positive or uncertain; otherwise NaN (CheXpert never writes 0 or -1 there).

CheXpert's parent/child hierarchy (e.g. consolidation implies lung opacity) is *not*
applied: each label reflects what the report says about that observation.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from unixlib.data.schema import LABELS, NEGATIVE, POSITIVE, UNCERTAIN
from unixlib.data.text import labeler_rules as R

# A pre-mention cue reaches at most this many words ahead: long negated lists ("no evidence
# of acute airspace disease, large pleural effusion or pneumothorax" needs 10) are common;
# NegEx uses a similar fixed window.
PRE_WINDOW_WORDS = 14
# Attribute search window around an anchor ("the heart size is mildly enlarged").
ATTR_AFTER_WORDS = 7
ATTR_BEFORE_WORDS = 3
_OTHER = "_other_finding"  # internal pseudo-observation that only blocks No Finding


def _alt(patterns: Iterable[str]) -> re.Pattern[str]:
    """One compiled alternation with word boundaries, longest alternatives first."""
    ordered = sorted(patterns, key=len, reverse=True)
    return re.compile(r"\b(?:" + "|".join(ordered) + r")\b")


_MENTION = {name: _alt(p) for name, p in R.MENTIONS.items()}
_MENTION[_OTHER] = _alt(R.OTHER_FINDINGS)
_UNMENTION = {name: _alt(p) for name, p in R.UNMENTIONS.items()}
_ANCHOR = {name: re.compile(r"\b(?:" + p + r")\b") for name, p in R.ANCHORS.items()}
# An anchor coordinated with an earlier one ("normal heart size and mediastinal contours")
# shares that one's leading qualifier: the text before it ends in "<anchor> and" / "<anchor>,".
_COORDINATED = re.compile(
    r"\b(?:" + "|".join(R.ANCHORS.values()) + r")\s*(?:,\s*(?:and\s+)?|\s+and\s+)$"
)
_ATTR = (
    (_alt(R.ATTR_NORMAL), NEGATIVE),
    (_alt(R.ATTR_UNCERTAIN), UNCERTAIN),
    (_alt(R.ATTR_POSITIVE), POSITIVE),
)
_PRE_NEG_UNC = _alt(R.PRE_NEG_UNCERTAIN)
_POST_NEG_UNC = re.compile(r"^\W*(?:" + "|".join(R.POST_NEG_UNCERTAIN) + r")\b")
_PRE_NEG = _alt(R.PRE_NEGATION)
_POST_NEG = re.compile(r"^[\w\s,]{0,40}?\b(?:" + "|".join(R.POST_NEGATION) + r")\b")
_PSEUDO_NEG = _alt(R.PSEUDO_NEGATION)
_PRE_UNC = _alt(R.PRE_UNCERTAIN)
_POST_UNC = re.compile(r"^\W*(?:" + "|".join(R.POST_UNCERTAIN) + r")\b")
_BREAK = _alt(R.HARD_BREAKS + R.SOFT_BREAKS)
_HARD_BREAK = _alt(R.HARD_BREAKS)
# Sentence ends: . not between digits, ; : ? ! and line breaks.
_SENTENCE_END = re.compile(r"(?<!\d)\.|\.(?!\d)|[;:?!\n]")
_WORD = re.compile(r"\S+")
_DEID_DEVICE = re.compile(r"\bx{3,}-a-x{3,}\b")
_DEID_SPAN = re.compile(r"_{2,}|\bx{3,}\b")
_DOUBLED = re.compile(r"\b(the|a|an|of|and|or|is|are|in|on|with|to|at)\s+\1\b")
# CheXpert: "heart failure" / "CHF" (positive or uncertain) also mean uncertain cardiomegaly.
_HEART_FAILURE = re.compile(r"\b(?:heart failure|chf)\b")
# CheXpert: vascular congestion is at most an uncertain sign of edema.
_CONGESTION = re.compile(r"congest|prominen|engorge|redistribution|cephaliz|indistinct")


@dataclass(frozen=True)
class Mention:
    """One observation mention in a sentence: character span ``[start, end)`` and its label."""

    name: str
    start: int
    end: int
    label: float


def split_label_sentences(text: str) -> list[str]:
    """Lower-cased sentences with normalised whitespace (empty pieces dropped), as the labeler
    reads them; :func:`find_mentions` of one of them returns offsets into it.

    De-identification spans (``___``, ``XXXX``) are read as absent words, so that a span
    neither hides a qualifier from its anchor ("the heart, pulmonary XXXX and mediastinum are
    normal") nor reads as a word; a raw and a cleaned report then label alike. IU's redacted
    "XXXX-A-XXXX" is a Port-A-Cath. A doubled short word ("the the") is read once.
    """
    text = _DEID_DEVICE.sub("port-a-cath", text.lower())
    text = re.sub(r"\s+", " ", _DEID_SPAN.sub(" ", text))
    text = re.sub(r"\s*,(?:\s*,)*", ",", text)  # "heart , , mediastinum" -> "heart, mediastinum"
    text = _DOUBLED.sub(r"\1", text)  # a dictation slip: "the the", "and and"
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def _scope_before(sentence: str, start: int, breaks: re.Pattern[str] = _BREAK) -> str:
    """Text a pre-mention cue may come from: after the last scope break, within the window."""
    before = sentence[:start]
    found = list(breaks.finditer(before))
    if found:  # the break word itself stays in scope: "may" breaks *and* is a cue
        before = before[found[-1].start() :]
    words = _WORD.findall(before)
    return " ".join(words[-PRE_WINDOW_WORDS:])


def _scope_after(sentence: str, end: int) -> str:
    """Text a post-mention cue may come from: up to the next hard scope break."""
    after = sentence[end:]
    brk = _HARD_BREAK.search(after)
    return after[: brk.start()] if brk else after


def _classify(sentence: str, start: int, end: int, between: str = "") -> float:
    """Label the mention ``sentence[start:end]`` by CheXpert's three stages.

    Negated uncertainty, then negation, then uncertainty, else positive. Negation cues stop
    at every scope break; uncertainty cues stop only at hard breaks, because interpretive
    links carry a hedge forward ("may be due to pneumonia"). ``between`` is extra text that
    belongs to the mention itself (between an anchor and its qualifier).
    """
    neg_before = _scope_before(sentence, start) + " " + between
    unc_before = _scope_before(sentence, start, _HARD_BREAK) + " " + between
    after = _scope_after(sentence, end)
    if _PRE_NEG_UNC.search(neg_before) or _POST_NEG_UNC.search(after):
        return UNCERTAIN
    if _PRE_NEG.search(_PSEUDO_NEG.sub(" ", neg_before)) or _POST_NEG.search(after):
        return NEGATIVE
    if _PRE_UNC.search(unc_before) or _POST_UNC.search(after):
        return UNCERTAIN
    return POSITIVE


def _direct_mentions(sentence: str) -> list[Mention]:
    """Mentions from the phrase lists, minus spans covered by an unmention phrase."""
    found = []
    for name, pattern in _MENTION.items():
        blocked = (
            [m.span() for m in _UNMENTION[name].finditer(sentence)] if name in _UNMENTION else []
        )
        for m in pattern.finditer(sentence):
            if any(s <= m.start() < e or s < m.end() <= e for s, e in blocked):
                continue
            label = _classify(sentence, m.start(), m.end())
            if name == "edema" and label == POSITIVE and _CONGESTION.search(m.group()):
                label = UNCERTAIN
            found.append(Mention(name, m.start(), m.end(), label))
    return found


def _nearest_attribute(sentence: str, anchor: re.Match[str]) -> tuple[int, int, float] | None:
    """The qualifier closest to ``anchor`` in its window, as ``(start, end, polarity)``."""
    after = _scope_after(sentence, anchor.end())
    words = list(_WORD.finditer(after))[:ATTR_AFTER_WORDS]
    after = after[: words[-1].end()] if words else ""
    head = anchor.start()
    while (coordinated := _COORDINATED.search(sentence[:head])) is not None:
        head = coordinated.start()
    words = list(_WORD.finditer(sentence[:head]))[-ATTR_BEFORE_WORDS:]
    b0 = words[0].start() if words else anchor.start()
    before = sentence[b0 : anchor.start()]
    best: tuple[int, int, int, float] | None = None  # (distance, start, end, polarity)
    for pattern, polarity in _ATTR:
        for m in pattern.finditer(after):
            cand = (m.start(), anchor.end() + m.start(), anchor.end() + m.end(), polarity)
            best = cand if best is None or cand[0] < best[0] else best
        for m in pattern.finditer(before):
            cand = (len(before) - m.end(), b0 + m.start(), b0 + m.end(), polarity)
            best = cand if best is None or cand[0] < best[0] else best
    return None if best is None else best[1:]


def _anchor_mentions(sentence: str, direct: list[Mention]) -> list[Mention]:
    """Qualified anchors ("heart size is normal"), skipping spans a direct mention covers."""
    found = []
    for name, pattern in _ANCHOR.items():
        covered = [(m.start, m.end) for m in direct if m.name == name]
        for anchor in pattern.finditer(sentence):
            if any(s <= anchor.start() < e for s, e in covered):
                continue
            attr = _nearest_attribute(sentence, anchor)
            if attr is None:
                continue
            a_start, a_end, polarity = attr
            if polarity == POSITIVE:
                start, end = min(anchor.start(), a_start), max(anchor.end(), a_end)
                between = sentence[min(anchor.end(), a_end) : max(anchor.start(), a_start)]
                label = _classify(sentence, start, end, between)
                if name == "edema" and label == POSITIVE:
                    label = UNCERTAIN  # vascular prominence is an uncertain sign of edema
            else:
                start, end, label = anchor.start(), anchor.end(), polarity
            found.append(Mention(name, start, end, label))
    return found


def find_mentions(text: str) -> list[Mention]:
    """All classified mentions in ``text`` (including the internal "other finding" ones)."""
    mentions: list[Mention] = []
    for sentence in split_label_sentences(text):
        mentions += _sentence_mentions(sentence)
    return mentions


# Reports repeat sentences ("No pneumothorax.", "The heart is normal in size."): each distinct
# sentence is classified once per process. Pure function of the sentence, so the cache is safe.
@functools.lru_cache(maxsize=1 << 16)
def _sentence_mentions(sentence: str) -> tuple[Mention, ...]:
    direct = _direct_mentions(sentence)
    mentions = direct + _anchor_mentions(sentence, direct)
    for m in direct:
        if (
            m.name == "edema"
            and m.label != NEGATIVE
            and _HEART_FAILURE.search(sentence[m.start : m.end])
        ):
            mentions.append(Mention("cardiomegaly", m.start, m.end, UNCERTAIN))
    return tuple(mentions)


def _aggregate(labels: list[float]) -> float:
    """CheXpert: any positive -> 1, else any uncertain -> -1, else 0 (NaN when empty)."""
    if not labels:
        return math.nan
    if POSITIVE in labels:
        return POSITIVE
    return UNCERTAIN if UNCERTAIN in labels else NEGATIVE


def label_report(text: str) -> dict[str, float]:
    """Label one report.

    Returns ``{name: value}`` for every name in ``schema.LABELS``: 1.0 positive, 0.0
    negative, -1.0 uncertain, NaN not mentioned. ``no_finding`` is 1.0 or NaN only.
    """
    if not isinstance(text, str):
        raise TypeError(f"label_report expects a str, got {type(text).__name__}")
    return labels_of(find_mentions(text))


def labels_of(mentions: Iterable[Mention]) -> dict[str, float]:
    """:func:`label_report`'s aggregation of already found mentions (one pass for callers
    that also read the mentions, such as the cleaning judge)."""
    by_name: dict[str, list[float]] = {}
    for m in mentions:
        by_name.setdefault(m.name, []).append(m.label)
    out = {name: _aggregate(by_name.get(name, [])) for name in LABELS if name != "no_finding"}
    finding = any(
        v in (POSITIVE, UNCERTAIN) for name, v in out.items() if name != "support_devices"
    ) or _aggregate(by_name.get(_OTHER, [])) in (POSITIVE, UNCERTAIN)
    out["no_finding"] = math.nan if finding else POSITIVE
    return {name: out[name] for name in LABELS}


def label_texts(texts: Iterable[str]) -> pd.DataFrame:
    """Label many reports: one row per text (same order), columns ``schema.LABELS``."""
    return pd.DataFrame([label_report(t) for t in texts], columns=list(LABELS))


def label_csv(in_csv: Path, text_cols: Sequence[str], out_csv: Path) -> pd.DataFrame:
    """Label a CSV of reports.

    The named ``text_cols`` of each row are joined (NaN cells count as empty, sections are
    separated by a sentence break) and labelled. Writes the input columns plus one column
    per observation (1, 0, -1 or empty) to ``out_csv`` and returns that frame.

    Raises:
        ValueError: when ``text_cols`` is empty or names a column the CSV lacks.
    """
    if not text_cols:
        raise ValueError("label_csv needs at least one text column")
    df = pd.read_csv(in_csv)
    missing = [c for c in text_cols if c not in df.columns]
    if missing:
        raise ValueError(
            f"{in_csv}: text column(s) {missing} not found; columns: {list(df.columns)}"
        )
    clashing = [c for c in LABELS if c in df.columns]
    if clashing:
        raise ValueError(f"{in_csv}: already has label column(s) {clashing}")
    texts = df[list(text_cols)].fillna("").astype(str).agg(" .\n".join, axis=1)
    out = pd.concat([df, label_texts(texts).set_index(df.index)], axis=1)
    out.to_csv(out_csv, index=False)
    return out
