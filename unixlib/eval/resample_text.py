"""Corpus BLEU and CIDEr-D with a fast path over bootstrap resamples (``eval.uncertainty``).

**BLEU is a corpus statistic, not a mean.** nltk's ``corpus_bleu`` (what
``understanding.nlg_scores`` reports) adds, over all reports, the clipped n-gram matches and
the n-gram totals of each order, and the hypothesis and reference lengths, and only then takes
precisions, the brevity penalty and the geometric mean. So a resample's BLEU depends on the
resample only through these sums. :func:`bleu_counts` computes each report's contribution
once, ``(N, 2 * max_order + 2)``; a resample's sums are ``row_counts @ counts``; and
:func:`bleu_from_sums` turns sums into BLEU with the same float operations nltk performs, so
resamples and value equal ``corpus_bleu`` on the resampled rows to the last bit.

nltk's conventions, read from ``nltk/translate/bleu_score.py`` (3.10) and kept here:

- per report and order n: matches = sum over the hypothesis's n-grams of
  ``min(count in hypothesis, count in reference)``; total = ``max(1, #hypothesis n-grams)``
  (so an empty or short hypothesis still adds 1 to every order's total);
- BLEU is 0 when the corpus has no unigram match at all;
- brevity penalty ``bp = 1`` if ``hyp_len > ref_len``, else ``exp(1 - ref_len / hyp_len)``
  (0 for an empty corpus of hypotheses), with *corpus* lengths;
- ``SmoothingFunction().method4`` (Chen & Cherry 2014, k = 5): each order with 0 matches,
  counting from ``i = 1`` over such orders, gets precision
  ``1 / (2**i * k / ln(hyp_len)) / total``, where ``hyp_len`` is the corpus hypothesis
  length (corpus_bleu passes it); with ``hyp_len <= 1`` it stays 0 and drops out of the
  geometric mean (its weight is not re-spread);
- ``BLEU-n = bp * exp(fsum(w * ln p_i))`` with ``w = 1 / n``, over orders with ``p_i > 0``.

One reference per report (the project's setting), so the "closest reference length" is the
reference's length.

**CIDEr-D cannot be resampled exactly.** Its idf is computed from the references of the
corpus scored, so a resample with repeated reports would have other document frequencies and
a different value for every report. :class:`CiderD` keeps the idf of the whole test set,
computes each report's score once (``understanding.cider_per_row``) and resamples their
mean: on the full set this is exactly the reported CIDEr; on a resample it is the mean of the
resampled reports' scores, not pycocoevalcap run on the resampled corpus. The interval thus
measures how the number depends on which reports were drawn, with the test set's idf fixed.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

from unixlib.eval.resample_stats import Mean, row_counts

SMOOTHING_K = 5  # nltk SmoothingFunction's default k, used by method4


def bleu_counts(
    references: Sequence[Sequence[str]], hypotheses: Sequence[Sequence[str]], max_order: int = 4
) -> np.ndarray:
    """Each report's contribution to corpus BLEU: ``(N, 2 * max_order + 2)`` int64.

    ``references[i]`` (one reference) and ``hypotheses[i]`` are token lists (as
    ``understanding.tokenize`` makes them). Columns: clipped matches of orders
    1..max_order, totals of orders 1..max_order (``max(1, #hypothesis n-grams)``, as nltk),
    hypothesis length, reference length.
    """
    if len(references) != len(hypotheses):
        raise ValueError(
            f"bleu_counts: {len(references)} references but {len(hypotheses)} hypotheses"
        )
    if len(references) == 0:
        raise ValueError("bleu_counts: empty input (no reports)")
    if isinstance(max_order, bool) or not isinstance(max_order, int) or max_order < 1:
        raise ValueError(f"bleu_counts: max_order must be a positive int, got {max_order!r}")
    for what, texts in (("references", references), ("hypotheses", hypotheses)):
        if any(isinstance(t, str) for t in texts):
            raise TypeError(f"bleu_counts: {what} must be token lists, not strings")
    out = np.zeros((len(references), 2 * max_order + 2), dtype=np.int64)
    for i, (ref, hyp) in enumerate(zip(references, hypotheses, strict=True)):
        for n in range(1, max_order + 1):
            hyp_ngrams, ref_ngrams = _ngrams(hyp, n), _ngrams(ref, n)
            out[i, n - 1] = sum(min(c, ref_ngrams[g]) for g, c in hyp_ngrams.items())
            out[i, max_order + n - 1] = max(1, sum(hyp_ngrams.values()))
        out[i, -2:] = len(hyp), len(ref)
    return out


def _ngrams(tokens: Sequence[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(tokens[j : j + n]) for j in range(len(tokens) - n + 1))


def bleu_from_sums(sums: Sequence[int], order: int) -> float:
    """Corpus BLEU-``order`` from corpus sums laid out as :func:`bleu_counts`' columns.

    nltk's ``corpus_bleu(..., weights=(1/order,) * order, smoothing_function=method4)``,
    operation for operation (see the module docstring), so the floats are identical.
    """
    max_order = (len(sums) - 2) // 2
    if not 1 <= order <= max_order:
        raise ValueError(f"bleu_from_sums: order {order} not in [1, {max_order}] of these sums")
    matches, totals = sums[:max_order], sums[max_order : 2 * max_order]
    hyp_len, ref_len = int(sums[-2]), int(sums[-1])
    if matches[0] == 0:
        return 0.0  # nltk: no unigram match, BLEU 0 (and no smoothing)
    precisions: list[float] = []
    smoothed = 1  # method4's counter over the orders it smooths
    for m, t in zip(matches[:order], totals[:order], strict=True):
        if m == 0 and hyp_len > 1:
            precisions.append(1 / (2**smoothed * SMOOTHING_K / math.log(hyp_len)) / int(t))
            smoothed += 1
        else:
            precisions.append(int(m) / int(t))  # = float(Fraction(m, t)): one correct rounding
    weight = 1.0 / order
    log_sum = math.fsum(weight * math.log(p) for p in precisions if p > 0)
    return _brevity_penalty(ref_len, hyp_len) * math.exp(log_sum)


def _brevity_penalty(ref_len: int, hyp_len: int) -> float:
    if hyp_len > ref_len:
        return 1.0
    if hyp_len == 0:
        return 0.0
    return math.exp(1 - ref_len / hyp_len)


class CorpusBleu:
    """Corpus BLEU-n (nltk, uniform weights, method4) of per-report counts ``(N, 2m + 2)``.

    The one array is :func:`bleu_counts`' output (any ``max_order`` m >= n), resampled by
    report: a resample's BLEU is nltk's on the resampled reports, computed from their summed
    counts. Fast: a resample costs one row of a matrix product and a few float operations.
    """

    def __init__(self, order: int) -> None:
        if isinstance(order, bool) or not isinstance(order, int) or order < 1:
            raise ValueError(f"CorpusBleu: order must be a positive int, got {order!r}")
        self.order = order
        self.name = f"bleu{order}"

    def __call__(self, counts: np.ndarray) -> float:
        c = self._check(counts)
        return bleu_from_sums(c.sum(axis=0).tolist(), self.order)

    def on_indices(self, idx: np.ndarray, counts: np.ndarray) -> np.ndarray:
        c = self._check(counts)
        # Integer sums in float64 are exact below 2**53; back to int for nltk's int arithmetic.
        sums = np.rint(row_counts(idx, len(c)) @ c).astype(np.int64)  # (R, 2m + 2)
        return np.array([bleu_from_sums(s, self.order) for s in sums.tolist()])

    def _check(self, counts: np.ndarray) -> np.ndarray:
        c = np.asarray(counts)
        if (
            c.ndim != 2
            or c.shape[1] < 4
            or c.shape[1] % 2
            or not np.issubdtype(c.dtype, np.integer)
        ):
            raise ValueError(
                f"CorpusBleu: need bleu_counts' (N, 2 * max_order + 2) int array, got "
                f"{c.shape} {c.dtype}"
            )
        if (c.shape[1] - 2) // 2 < self.order:
            raise ValueError(
                f"CorpusBleu: order {self.order} needs counts up to that order, got "
                f"max_order {(c.shape[1] - 2) // 2}"
            )
        if (c < 0).any():
            raise ValueError("CorpusBleu: counts must be non-negative")
        return c


class CiderD(Mean):
    """Corpus CIDEr-D as the mean of per-report scores ``(N,)`` from
    ``understanding.cider_per_row`` (idf of the whole test set, fixed under resampling: see
    the module docstring). Its value equals ``nlg_scores``' ``cider``."""

    name = "cider"
