"""Report-generation metrics: CheXbert-style F1 and NLG scores (PAPER.md, "Metrics").

**Labels.** Reference and generated reports are labelled by the same labeler (the project's
rule labeler by default, or ``chexbert.CheXbertLabeler``). Each text is first cut to
``MAX_CHARS`` = 512 characters, as the paper does. A blank report ("" or whitespace only)
is not given to the labeler: it mentions nothing, so every label is NaN (not mentioned),
hence all negative. (The rule labeler alone would call "" No Finding = 1, which would let an
empty output score on No Finding.)

**Binarisation.** Labels are 1 positive / 0 negative / -1 uncertain / NaN not mentioned.
NaN and 0 count as 0; uncertain counts as 0 (``uncertain="negative"``) or as 1
(``uncertain="positive"``). The paper reports both conventions.

**F1.** Per class, with tp/fp/fn counted over the reports,
``F1 = tp / (tp + (fp + fn) / 2)`` (= 2tp / (2tp + fp + fn)). *Micro* pools tp, fp and fn
over the classes before applying the formula; *macro* is the plain mean of the per-class F1.
A class with no positive in either the references or the generated reports has 0/0; it
counts as F1 = 0 in the macro mean (what f1chexbert gets from sklearn's
``classification_report`` with zero_division 0). So macro-14 is pulled down by rare
classes that never occur in a small test set; this is deliberate, to match published numbers.
"14" uses ``schema.LABELS``, "5" uses ``schema.LABELS_5``. All values are fractions in [0, 1].

**Example-based** precision/recall/F1 (sklearn ``average="samples"``): per report, then
averaged; a report with no positive on either side scores 0 (zero_division=0, as above).

**NLG.** Texts are tokenized by lower-casing and the regex ``_TOKEN``: decimal numbers
("1.5"), runs of word characters, and every other non-space character (punctuation) as its
own token. No nltk data is needed. The same tokens feed BLEU-1..4 (nltk ``corpus_bleu``,
cumulative uniform weights, ``SmoothingFunction().method4``), ROUGE-L (``rouge_score``
F-measure per pair, then the mean) and CIDEr (pycocoevalcap's ``Cider``, i.e. CIDEr-D with
its x10 scale, on space-joined tokens, without the Java PTBTokenizer). CIDEr's idf comes
from the references of the corpus scored, so it is 0 for a one-report corpus.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from nltk.translate.bleu_score import SmoothingFunction, corpus_bleu
from pycocoevalcap.cider.cider import Cider
from rouge_score.rouge_scorer import RougeScorer
from sklearn.metrics import precision_recall_fscore_support

from unixlib.data.schema import LABELS, LABELS_5
from unixlib.data.text.labeler import label_texts

MAX_CHARS = 512  # texts are cut to 512 characters before labelling (PAPER.md)
Labeler = Callable[[Sequence[str]], pd.DataFrame]  # texts -> DataFrame with the LABELS columns

UNCERTAIN_MODES: dict[str, int] = {"negative": 0, "positive": 1}
F1_KEYS: tuple[str, ...] = tuple(
    f"{avg}{k}_{u}" for u in ("uneg", "upos") for avg in ("micro", "macro") for k in ("14", "5")
)
_IDX_5 = [LABELS.index(name) for name in LABELS_5]
_TOKEN = re.compile(r"\d+(?:\.\d+)+|\w+|[^\w\s]")
_BLEU_WEIGHTS = [tuple([1.0 / n] * n) for n in range(1, 5)]


def _check_pair(ref: Sequence, gen: Sequence, what: str) -> None:
    """Same, non-zero length: every metric here pairs reference i with generated i."""
    if len(ref) != len(gen):
        raise ValueError(
            f"{what}: {len(ref)} references but {len(gen)} generated reports (must be equal)"
        )
    if len(ref) == 0:
        raise ValueError(f"{what}: empty input (no reports to score)")


def label_reports(
    texts: Sequence[str], labeler: Labeler | None = None, max_chars: int = MAX_CHARS
) -> pd.DataFrame:
    """Label each text cut to ``max_chars``; columns ``LABELS``, index 0..N-1.

    Blank texts get all-NaN rows without reaching the labeler (see the module docstring).
    """
    if len(texts) == 0:
        raise ValueError("label_reports: empty input (no texts to label)")
    bad = [type(t).__name__ for t in texts if not isinstance(t, str)]
    if bad:
        raise TypeError(f"label_reports expects str texts, got {bad[0]}")
    labeler = label_texts if labeler is None else labeler
    cut = [t[:max_chars] for t in texts]
    keep = [i for i, t in enumerate(cut) if t.strip()]
    out = pd.DataFrame(np.nan, index=range(len(cut)), columns=list(LABELS))
    if keep:
        labelled = labeler([cut[i] for i in keep])
        missing = [c for c in LABELS if c not in labelled.columns]
        if missing or len(labelled) != len(keep):
            raise ValueError(
                f"labeler returned {len(labelled)} rows for {len(keep)} texts; "
                f"missing columns: {missing}"
            )
        out.loc[keep, list(LABELS)] = labelled[list(LABELS)].to_numpy(dtype=float)
    return out


def binarize(labels: pd.DataFrame, uncertain: str) -> np.ndarray:
    """(N, 14) int array in {0, 1}: 1 positive, uncertain -> 0 or 1, 0 and NaN -> 0."""
    if uncertain not in UNCERTAIN_MODES:
        raise ValueError(f"uncertain must be one of {sorted(UNCERTAIN_MODES)}, got {uncertain!r}")
    missing = [c for c in LABELS if c not in labels.columns]
    if missing:
        raise ValueError(f"labels lack columns {missing}")
    values = labels[list(LABELS)].to_numpy(dtype=float)
    known = np.isnan(values) | np.isin(values, (1.0, 0.0, -1.0))
    if not known.all():
        odd = sorted(set(values[~known].tolist()))
        raise ValueError(f"label values must be 1, 0, -1 or NaN; found {odd}")
    out = (values == 1.0).astype(int)
    out[values == -1.0] = UNCERTAIN_MODES[uncertain]
    return out


def _f1(tp: np.ndarray | int, fp: np.ndarray | int, fn: np.ndarray | int) -> np.ndarray:
    """tp / (tp + (fp + fn) / 2), with 0/0 -> 0 (no positive on either side)."""
    tp, fp, fn = (np.asarray(x, dtype=float) for x in (tp, fp, fn))
    denom = tp + (fp + fn) / 2
    return np.divide(tp, denom, out=np.zeros_like(denom), where=denom > 0)


def _micro_macro(y_ref: np.ndarray, y_gen: np.ndarray) -> tuple[float, float]:
    """Micro and macro F1 over the columns of two binary (N, C) arrays."""
    tp = (y_ref & y_gen).sum(axis=0)
    fp = ((1 - y_ref) & y_gen).sum(axis=0)
    fn = (y_ref & (1 - y_gen)).sum(axis=0)
    micro = float(_f1(tp.sum(), fp.sum(), fn.sum()))
    macro = float(_f1(tp, fp, fn).mean())
    return micro, macro


def chexbert_f1(ref: pd.DataFrame, gen: pd.DataFrame) -> dict[str, float]:
    """The paper's 8 numbers: micro/macro x 14/5 classes x uncertain negative/positive."""
    _check_pair(ref, gen, "chexbert_f1")
    out: dict[str, float] = {}
    for mode, tag in (("negative", "uneg"), ("positive", "upos")):
        y_ref, y_gen = binarize(ref, mode), binarize(gen, mode)
        for k, cols in (("14", slice(None)), ("5", _IDX_5)):
            micro, macro = _micro_macro(y_ref[:, cols], y_gen[:, cols])
            out[f"micro{k}_{tag}"], out[f"macro{k}_{tag}"] = micro, macro
    return {key: out[key] for key in F1_KEYS}


def per_class_prf(ref: pd.DataFrame, gen: pd.DataFrame, uncertain: str) -> pd.DataFrame:
    """Precision, recall, F1, support (reference positives), predicted (generated positives)."""
    _check_pair(ref, gen, "per_class_prf")
    y_ref, y_gen = binarize(ref, uncertain), binarize(gen, uncertain)
    p, r, f, support = precision_recall_fscore_support(
        y_ref, y_gen, average=None, labels=list(range(len(LABELS))), zero_division=0
    )
    table = {"precision": p, "recall": r, "f1": f, "support": support}
    table["predicted"] = y_gen.sum(axis=0)
    return pd.DataFrame(table, index=pd.Index(LABELS, name="label"))


def example_based_prf(ref: pd.DataFrame, gen: pd.DataFrame, uncertain: str) -> dict[str, float]:
    """Per-report precision/recall/F1 averaged over reports (sklearn ``average="samples"``)."""
    _check_pair(ref, gen, "example_based_prf")
    y_ref, y_gen = binarize(ref, uncertain), binarize(gen, uncertain)
    p, r, f, _ = precision_recall_fscore_support(y_ref, y_gen, average="samples", zero_division=0)
    return {"precision": float(p), "recall": float(r), "f1": float(f)}


def tokenize(text: str) -> list[str]:
    """Lower-cased word, decimal-number and punctuation tokens (see the module docstring)."""
    return _TOKEN.findall(text.lower())


class _RegexTokenizer:
    """Adapter: rouge_score wants an object with a ``tokenize`` method."""

    def tokenize(self, text: str) -> list[str]:
        return tokenize(text)


def cider_per_row(ref_tokens: list[list[str]], gen_tokens: list[list[str]]) -> np.ndarray:
    """Per-report CIDEr-D ``(N,)`` from pycocoevalcap on pre-tokenized (space-joined) texts.

    Each report's score uses the document frequencies (idf) of all N references, so it
    depends on the whole corpus; the corpus CIDEr (:func:`_cider`) is their mean.
    """
    if not any(ref_tokens):  # no reference n-gram: idf undefined (pycocoevalcap: max([]))
        return np.zeros(len(ref_tokens))
    gts = {i: [" ".join(t)] for i, t in enumerate(ref_tokens)}
    res = {i: [" ".join(t)] for i, t in enumerate(gen_tokens)}
    _, scores = Cider().compute_score(gts, res)
    return np.asarray(scores, dtype=np.float64)


def _cider(ref_tokens: list[list[str]], gen_tokens: list[list[str]]) -> float:
    """Corpus CIDEr-D: the mean of :func:`cider_per_row` (pycocoevalcap's own mean)."""
    return float(np.mean(cider_per_row(ref_tokens, gen_tokens)))


def rouge_l_rows(references: Sequence[str], generated: Sequence[str]) -> np.ndarray:
    """(N,) ROUGE-L F-measure of each generated report against its reference."""
    scorer = RougeScorer(["rougeL"], tokenizer=_RegexTokenizer())
    pairs = zip(references, generated, strict=True)
    return np.array([scorer.score(r, g)["rougeL"].fmeasure for r, g in pairs], dtype=float)


def nlg_scores(references: Sequence[str], generated: Sequence[str]) -> dict[str, float]:
    """BLEU-1..4, ROUGE-L and CIDEr of the generated reports against the references."""
    _check_pair(references, generated, "nlg_scores")
    ref_tokens = [tokenize(t) for t in references]
    gen_tokens = [tokenize(t) for t in generated]
    bleu = corpus_bleu(
        [[r] for r in ref_tokens],
        gen_tokens,
        weights=_BLEU_WEIGHTS,
        smoothing_function=SmoothingFunction().method4,
    )
    out = {f"bleu{n}": float(b) for n, b in enumerate(bleu, start=1)}
    out["rouge_l"] = float(np.mean(rouge_l_rows(references, generated)))
    out["cider"] = _cider(ref_tokens, gen_tokens)
    return out


def score_reports(
    references: Sequence[str], generated: Sequence[str], labeler: Labeler | None = None
) -> dict[str, float]:
    """All understanding metrics in one flat dict (F1 keys, example F1, NLG, ``distinct``).

    ``distinct`` is the number of different generated strings (exact match) over N: a model
    that writes one template for every image scores 1/N.
    """
    _check_pair(references, generated, "score_reports")
    n = len(references)
    # One labeler call for both sides: CheXbert batches them together.
    labels = label_reports([*references, *generated], labeler)
    ref, gen = labels.iloc[:n].reset_index(drop=True), labels.iloc[n:].reset_index(drop=True)
    out = chexbert_f1(ref, gen)
    out["example_f1_upos"] = example_based_prf(ref, gen, "positive")["f1"]
    out.update(nlg_scores(references, generated))
    out["distinct"] = len(set(generated)) / n
    return out
