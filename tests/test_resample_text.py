"""Corpus BLEU and CIDEr-D resample paths equal nltk / pycocoevalcap on every resample."""

from __future__ import annotations

import math

import numpy as np
import pytest
from nltk.translate.bleu_score import SmoothingFunction, corpus_bleu

from unixlib.eval.resample_text import CiderD, CorpusBleu, bleu_counts, bleu_from_sums
from unixlib.eval.uncertainty import bootstrap, resample_indices
from unixlib.eval.understanding import _cider, cider_per_row, nlg_scores, tokenize


def _nltk_bleu(refs: list[list[str]], hyps: list[list[str]], order: int) -> float:
    """The project's BLEU-n call (understanding.nlg_scores), one order at a time."""
    return corpus_bleu(
        [[r] for r in refs],
        hyps,
        weights=tuple([1.0 / order] * order),
        smoothing_function=SmoothingFunction().method4,
    )


def _corpus(rng: np.random.Generator, n: int, vocab: int, max_len: int) -> tuple[list, list]:
    """Random token lists from a small vocabulary: repeats, ties and empty texts are common."""
    words = [f"w{i}" for i in range(vocab)]

    def text() -> list[str]:
        return [str(w) for w in rng.choice(words, size=int(rng.integers(0, max_len + 1)))]

    return [text() for _ in range(n)], [text() for _ in range(n)]


def test_bleu_counts_hand_computed() -> None:
    ref = ["the", "cat", "sat", "on", "the", "mat"]
    rows = bleu_counts([ref, ref], [["the", "the", "cat"], []])
    # "the the cat": unigrams the x2 (ref has 2), cat -> 3 of 3; bigrams "the the" (0) and
    # "the cat" (1) -> 1 of 2; trigram 0 of 1; no 4-gram, total max(1, 0) = 1.
    np.testing.assert_array_equal(rows[0], [3, 1, 0, 0, 3, 2, 1, 1, 3, 6])
    np.testing.assert_array_equal(rows[1], [0, 0, 0, 0, 1, 1, 1, 1, 0, 6])  # empty hypothesis


def test_bleu_from_sums_hand_computed_with_method4() -> None:
    sums = [3, 1, 0, 0, 3, 2, 1, 1, 3, 6]  # the first row above, alone
    bp = math.exp(1 - 6 / 3)  # hypothesis shorter than the reference
    smooth3, smooth4 = math.log(3) / 10, math.log(3) / 20  # 1 / (2^i * 5 / ln 3) / total
    assert bleu_from_sums(sums, 1) == pytest.approx(bp * 1.0, rel=1e-15)
    assert bleu_from_sums(sums, 2) == pytest.approx(bp * 0.5**0.5, rel=1e-15)
    assert bleu_from_sums(sums, 3) == pytest.approx(bp * (0.5 * smooth3) ** (1 / 3), rel=1e-15)
    expected4 = bp * (0.5 * smooth3 * smooth4) ** 0.25
    assert bleu_from_sums(sums, 4) == pytest.approx(expected4, rel=1e-15)
    assert bleu_from_sums([0, 0, 0, 0, 3, 2, 1, 1, 3, 6], 4) == 0.0  # no unigram match
    # One hypothesis token: method4 leaves a zero order unsmoothed (ln 1 = 0); it drops out.
    assert bleu_from_sums([1, 0, 1, 1, 1, 1], 2) == pytest.approx(1.0, rel=1e-15)


@pytest.mark.parametrize(
    ("seed", "vocab", "max_len"), [(0, 3, 4), (1, 6, 9), (2, 30, 12), (3, 2, 1)]
)
def test_corpus_bleu_equals_nltk_exactly(seed: int, vocab: int, max_len: int) -> None:
    """Small vocabularies give ties and repeats; max_len 1 gives one-token corpora."""
    rng = np.random.default_rng(seed)
    for trial in range(40):
        refs, hyps = _corpus(rng, int(rng.integers(1, 9)), vocab, max_len)
        counts = bleu_counts(refs, hyps)
        for order in range(1, 5):
            assert CorpusBleu(order)(counts) == _nltk_bleu(refs, hyps, order), (trial, order)


def test_corpus_bleu_equals_nlg_scores_on_texts() -> None:
    refs = ["No acute disease. Heart size 1.5 cm.", "Small left effusion.", "Clear lungs."]
    gens = ["No acute disease.", "Large left effusion, stable.", ""]
    counts = bleu_counts([tokenize(t) for t in refs], [tokenize(t) for t in gens])
    scores = nlg_scores(refs, gens)
    for order in range(1, 5):
        assert CorpusBleu(order)(counts) == scores[f"bleu{order}"]


def test_bleu_resamples_equal_nltk_on_the_resampled_rows() -> None:
    rng = np.random.default_rng(5)
    refs, hyps = _corpus(rng, 25, 8, 10)
    counts = bleu_counts(refs, hyps)
    idx = resample_indices(25, 40, seed=3)
    for order in (1, 4):
        fast = CorpusBleu(order).on_indices(idx, counts)
        plain = [_nltk_bleu([refs[i] for i in row], [hyps[i] for i in row], order) for row in idx]
        np.testing.assert_array_equal(fast, plain)
    interval = bootstrap(CorpusBleu(4), counts, n_resamples=50, seed=1)
    assert interval.value == _nltk_bleu(refs, hyps, 4)
    assert interval.low < interval.value < interval.high


def test_bleu_rejects_bad_input() -> None:
    with pytest.raises(TypeError, match="token lists"):
        bleu_counts(["a b"], [["a"]])
    with pytest.raises(ValueError, match="1 references but 2"):
        bleu_counts([["a"]], [["a"], ["b"]])
    counts = bleu_counts([["a", "b"]], [["a"]], max_order=2)
    with pytest.raises(ValueError, match="order 3 needs counts"):
        CorpusBleu(3)(counts)
    with pytest.raises(ValueError, match="int array"):
        CorpusBleu(1)(counts.astype(float))
    with pytest.raises(ValueError, match="order must be"):
        CorpusBleu(0)
    with pytest.raises(ValueError, match=r"order 3 not in \[1, 2\]"):
        bleu_from_sums(counts[0].tolist(), 3)


def test_cider_d_value_is_the_projects_cider_and_resamples_are_means() -> None:
    refs = ["small left effusion", "no effusion", "heart is enlarged", "clear lungs", "edema"]
    gens = ["left effusion", "no effusion seen", "enlarged heart", "clear lungs", "no edema"]
    ref_t, gen_t = [tokenize(t) for t in refs], [tokenize(t) for t in gens]
    rows = cider_per_row(ref_t, gen_t)
    assert CiderD()(rows) == _cider(ref_t, gen_t) == nlg_scores(refs, gens)["cider"]
    idx = np.array([[0, 0, 1, 2, 3], [4, 4, 4, 4, 4]])
    np.testing.assert_allclose(CiderD().on_indices(idx, rows), rows[idx].mean(axis=1))
    # Why the idf stays fixed: re-running CIDEr on a resampled corpus changes every idf.
    rerun = _cider([ref_t[i] for i in idx[0]], [gen_t[i] for i in idx[0]])
    assert rerun != pytest.approx(rows[idx[0]].mean(), rel=1e-6)


def test_cider_per_row_without_reference_ngrams_is_zero() -> None:
    np.testing.assert_array_equal(cider_per_row([[], []], [["a"], []]), [0.0, 0.0])
    assert _cider([[], []], [["a"], []]) == 0.0
