"""Report-generation metrics against numbers worked out by hand in the comments."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from pycocoevalcap.cider.cider_scorer import CiderScorer
from sklearn.metrics import f1_score

from unixlib.data.schema import LABELS
from unixlib.eval.understanding import (
    F1_KEYS,
    MAX_CHARS,
    binarize,
    chexbert_f1,
    example_based_prf,
    label_reports,
    nlg_scores,
    per_class_prf,
    score_reports,
    tokenize,
)

NAN = math.nan


def labels(*rows: dict[str, float]) -> pd.DataFrame:
    """One row per dict; unnamed classes are NaN (not mentioned)."""
    return pd.DataFrame([{c: r.get(c, NAN) for c in LABELS} for r in rows], columns=list(LABELS))


# Case A, 3 reports, built so the two uncertain conventions disagree.
REF_A = labels(
    {"cardiomegaly": 1, "pleural_effusion": -1},
    {"edema": 1, "pleural_effusion": 0, "support_devices": 1},
    {"no_finding": 1},
)
GEN_A = labels(
    {"cardiomegaly": 1, "pleural_effusion": 1},
    {"edema": -1, "atelectasis": 1, "support_devices": 1},
    {"no_finding": 1, "pneumothorax": 0},
)


def test_chexbert_f1_by_hand() -> None:
    got = chexbert_f1(REF_A, GEN_A)
    assert tuple(got) == F1_KEYS
    # uncertain = negative. ref {cm}, {ed, sd}, {nf}; gen {cm, pe}, {at, sd}, {nf}.
    # cm tp1 -> F1 1; pe fp1 -> 0; ed fn1 -> 0; at fp1 -> 0; sd tp1 -> 1; nf tp1 -> 1;
    # the 8 other classes are absent from both -> F1 0 each.
    # micro-14: tp 3, fp 2, fn 1 -> 3 / (3 + 3/2) = 2/3; macro-14: 3 / 14.
    # 5 classes (at, cm, ed, cn, pe): tp 1, fp 2, fn 1 -> 1 / 2.5 = 0.4; macro-5: 1 / 5.
    # uncertain = positive. ref {cm, pe}, {ed, sd}, {nf}; gen {cm, pe}, {ed, at, sd}, {nf}.
    # cm, pe, ed, sd, nf tp1 each -> F1 1; at fp1 -> 0.
    # micro-14: tp 5, fp 1 -> 5 / 5.5 = 10/11; macro-14: 5 / 14.
    # 5 classes: tp 3 (cm, pe, ed), fp 1 (at) -> 3 / 3.5 = 6/7; macro-5: 3 / 5.
    want = {
        "micro14_uneg": 2 / 3,
        "micro5_uneg": 0.4,
        "macro14_uneg": 3 / 14,
        "macro5_uneg": 1 / 5,
        "micro14_upos": 10 / 11,
        "micro5_upos": 6 / 7,
        "macro14_upos": 5 / 14,
        "macro5_upos": 3 / 5,
    }
    assert got == pytest.approx(want)
    # Micro agrees with sklearn's pooled F1.
    y_ref, y_gen = binarize(REF_A, "negative"), binarize(GEN_A, "negative")
    assert got["micro14_uneg"] == pytest.approx(f1_score(y_ref, y_gen, average="micro"))


def test_class_absent_from_both_counts_as_zero_in_macro() -> None:
    # Perfect agreement on cardiomegaly only: its F1 is 1, the 13 other classes have no
    # positive anywhere (0/0) and count as F1 = 0 (f1chexbert / sklearn zero_division=0).
    ref = labels({"cardiomegaly": 1}, {"cardiomegaly": 0})
    got = chexbert_f1(ref, ref.copy())
    assert got["micro14_uneg"] == 1.0 and got["micro5_upos"] == 1.0
    assert got["macro14_uneg"] == pytest.approx(1 / 14)
    assert got["macro5_upos"] == pytest.approx(1 / 5)
    # Nothing positive anywhere: every F1 is 0, not NaN.
    empty = labels({}, {"edema": 0})
    assert set(chexbert_f1(empty, empty).values()) == {0.0}


def test_empty_generated_report_is_all_negative() -> None:
    # Blank texts never reach the labeler: all NaN (the rule labeler alone says No Finding 1).
    def shouting(texts):
        assert all(t.strip() for t in texts), "blank text reached the labeler"
        return labels(*[{c: 1 for c in LABELS} for _ in texts])

    got = label_reports(["", "   ", "x"], shouting)
    assert got.iloc[:2].isna().all().all() and (got.iloc[2] == 1).all()
    # ref: cardiomegaly twice; gen: the same, then "". cm tp1 fn1 -> 1 / 1.5 = 2/3, and no
    # No Finding false positive from the empty report (that would make it 1 / 2).
    scores = score_reports(["Cardiomegaly.", "Cardiomegaly."], ["Cardiomegaly.", ""])
    assert scores["micro14_uneg"] == pytest.approx(2 / 3)
    assert scores["micro14_upos"] == pytest.approx(2 / 3)


def test_per_class_by_hand() -> None:
    # cardiomegaly over 4 reports: ref 1, 1, 0, NaN; gen 1, 0, 1, 1 -> tp 1, fp 2, fn 1:
    # precision 1/3, recall 1/2, F1 = 1 / (1 + 3/2) = 0.4, support 2, predicted 3.
    # edema: ref -1 in report 0 only, gen NaN: uneg -> nothing; upos -> fn 1 (support 1).
    ref = labels({"cardiomegaly": 1, "edema": -1}, {"cardiomegaly": 1}, {"cardiomegaly": 0}, {})
    gen = labels({"cardiomegaly": 1}, {"cardiomegaly": 0}, {"cardiomegaly": 1}, {"cardiomegaly": 1})
    table = per_class_prf(ref, gen, "negative")
    assert list(table.index) == list(LABELS)
    assert list(table.columns) == ["precision", "recall", "f1", "support", "predicted"]
    assert table.loc["cardiomegaly"].tolist() == pytest.approx([1 / 3, 1 / 2, 0.4, 2, 3])
    assert table.loc["edema"].tolist() == [0, 0, 0, 0, 0]
    assert per_class_prf(ref, gen, "positive").loc["edema"].tolist() == [0, 0, 0, 1, 0]
    # Case A, uncertain negative: the per-class F1 are 1 for cm, sd, nf and 0 elsewhere;
    # their mean is macro-14. pleural effusion: fp 1 -> precision 0, recall 0/0 -> 0.
    table_a = per_class_prf(REF_A, GEN_A, "negative")
    ones = {"cardiomegaly", "support_devices", "no_finding"}
    assert table_a["f1"].tolist() == [1.0 if c in ones else 0.0 for c in LABELS]
    assert table_a.loc["pleural_effusion"].tolist() == [0, 0, 0, 0, 1]
    assert table_a["f1"].mean() == pytest.approx(chexbert_f1(REF_A, GEN_A)["macro14_uneg"])


def test_example_based_by_hand() -> None:
    # Case A, uncertain positive, per report (precision, recall, F1):
    # 0: {cm, pe} vs {cm, pe} -> 1, 1, 1; 1: {ed, sd} vs {ed, at, sd} -> 2/3, 1, 0.8;
    # 2: {nf} vs {nf} -> 1, 1, 1. Means: 8/9, 1, 2.8/3.
    got = example_based_prf(REF_A, GEN_A, "positive")
    assert got == pytest.approx({"precision": 8 / 9, "recall": 1.0, "f1": 2.8 / 3})
    # Uncertain negative: 0: {cm} vs {cm, pe} -> 1/2, 1, 2/3; 1: {ed, sd} vs {at, sd} ->
    # 1/2, 1/2, 1/2; 2: 1, 1, 1. Means: 2/3, 5/6, 13/18.
    got = example_based_prf(REF_A, GEN_A, "negative")
    assert got == pytest.approx({"precision": 2 / 3, "recall": 5 / 6, "f1": 13 / 18})
    # A report with no positive on either side scores 0 (zero_division=0): (1 + 0) / 2.
    ref = labels({"cardiomegaly": 1}, {"edema": 0})
    assert example_based_prf(ref, ref, "positive")["f1"] == pytest.approx(0.5)


def test_binarize_conventions_and_rejections() -> None:
    df = labels({"cardiomegaly": 1, "edema": -1, "fracture": 0})
    neg, pos = binarize(df, "negative"), binarize(df, "positive")
    assert neg.dtype.kind == "i" and neg.shape == (1, 14)
    assert neg[0].tolist() == [1 if c == "cardiomegaly" else 0 for c in LABELS]
    assert pos[0].tolist() == [1 if c in ("cardiomegaly", "edema") else 0 for c in LABELS]
    with pytest.raises(ValueError, match="uncertain must be one of"):
        binarize(df, "ignore")
    with pytest.raises(ValueError, match=r"found \[2.0\]"):
        binarize(labels({"edema": 2}), "positive")
    with pytest.raises(ValueError, match="lack columns"):
        binarize(df.drop(columns="edema"), "positive")


def test_length_mismatch_and_empty_input() -> None:
    with pytest.raises(ValueError, match="3 references but 2 generated"):
        chexbert_f1(REF_A, GEN_A.iloc[:2])
    with pytest.raises(ValueError, match="1 references but 2 generated"):
        nlg_scores(["a"], ["a", "b"])
    with pytest.raises(ValueError, match="2 references but 1 generated"):
        score_reports(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="3 references but 2 generated"):
        per_class_prf(REF_A, GEN_A.iloc[:2], "positive")
    for call in (
        lambda: chexbert_f1(REF_A.iloc[:0], GEN_A.iloc[:0]),
        lambda: nlg_scores([], []),
        lambda: score_reports([], []),
        lambda: label_reports([]),
    ):
        with pytest.raises(ValueError, match="empty input"):
            call()


def test_label_reports_truncates_at_512_chars() -> None:
    filler = "Lungs are clear. " * 40  # 680 characters that name no observation
    text = filler + "Large right pneumothorax."
    assert MAX_CHARS == 512
    assert label_reports([text])["pneumothorax"].isna().all()
    assert (label_reports([text], max_chars=10_000)["pneumothorax"] == 1).all()
    seen: list[str] = []

    def spy(texts):
        seen.extend(texts)
        return labels(*[{} for _ in texts])

    label_reports([text, "short"], spy)
    assert [len(t) for t in seen] == [512, 5]


def test_label_reports_with_the_rule_labeler() -> None:
    got = label_reports(["Cardiomegaly. No pleural effusion."])
    assert list(got.columns) == list(LABELS)
    assert got.loc[0, "cardiomegaly"] == 1 and got.loc[0, "pleural_effusion"] == 0


def test_tokenize() -> None:
    tokens = tokenize("Heart size is NORMAL, 1.5 cm.")
    assert tokens == ["heart", "size", "is", "normal", ",", "1.5", "cm", "."]


def test_bleu_by_hand() -> None:
    same = nlg_scores(["the heart is normal in size"], ["the heart is normal in size"])
    assert [same[f"bleu{n}"] for n in range(1, 5)] == pytest.approx([1, 1, 1, 1])
    # ref "the heart is normal size" (5), gen "the heart is big" (4): unigram precision 3/4,
    # bigram 2/3 (the heart, heart is); brevity penalty exp(1 - 5/4).
    got = nlg_scores(["the heart is normal size"], ["the heart is big"])
    assert got["bleu1"] == pytest.approx(0.75 * math.exp(-0.25))
    assert got["bleu2"] == pytest.approx(math.exp(-0.25) * math.sqrt(0.75 * 2 / 3))
    # Corpus BLEU pools counts: + ("lungs clear", "lungs clear") -> 5 of 6 unigrams match,
    # hypothesis 6 vs reference 7 tokens -> BLEU-1 = 5/6 * exp(1 - 7/6).
    got = nlg_scores(
        ["the heart is normal size", "lungs clear"], ["the heart is big", "lungs clear"]
    )
    assert got["bleu1"] == pytest.approx(5 / 6 * math.exp(1 - 7 / 6))


def test_rouge_l_by_hand() -> None:
    # Pair 1: [lungs are clear .] vs [lungs clear .]: LCS 3 -> P 1, R 3/4, F 6/7.
    # Pair 2: [no acute cardiopulmonary process] vs [no acute process seen]: LCS 3
    # (no acute process) -> P 3/4, R 3/4, F 3/4. Mean (6/7 + 3/4) / 2.
    got = nlg_scores(
        ["Lungs are clear.", "No acute cardiopulmonary process"],
        ["Lungs clear.", "no acute process seen"],
    )
    assert got["rouge_l"] == pytest.approx((6 / 7 + 3 / 4) / 2)


def test_cider_by_hand() -> None:
    # pycocoevalcap CIDEr-D, 2 documents: idf weight = log(2) - log(max(1, df)) = log 2 for
    # every n-gram here (df 1, or 0 for "e"). Report lengths match, so no Gaussian penalty;
    # no 3/4-grams, so those two terms are 0. Score = 10 * mean over n = 1..4 of cosines.
    # Doc 1 "a b" vs "a b": unigram cosine 1, bigram 1 -> 10 * (1 + 1) / 4 = 5.
    # Doc 2 "c e" vs "c d": unigram (log2)^2 / (sqrt2 log2)^2 = 1/2, bigram 0 -> 1.25.
    got = nlg_scores(["a b", "c d"], ["a b", "c e"])["cider"]
    assert got == pytest.approx((5 + 1.25) / 2)
    refs = ["heart size is normal", "small left pleural effusion", "no pneumothorax"]
    gens = ["heart size is normal", "left effusion", "pneumothorax present"]
    same = nlg_scores(refs, refs)["cider"]
    assert same > nlg_scores(refs, gens)["cider"] > nlg_scores(refs, gens[::-1])["cider"]
    # Same as pycocoevalcap called directly on the tokenized texts.
    scorer = CiderScorer(n=4, sigma=6.0)
    for r, g in zip(refs, gens, strict=True):
        scorer += (" ".join(tokenize(g)), [" ".join(tokenize(r))])
    assert nlg_scores(refs, gens)["cider"] == pytest.approx(scorer.compute_score()[0])


def test_score_reports_flat_dict() -> None:
    refs = ["Cardiomegaly. No pleural effusion.", "Small left pleural effusion.", "Normal."]
    gens = ["Cardiomegaly.", "Cardiomegaly.", "Normal."]
    got = score_reports(refs, gens)
    nlg = {"bleu1", "bleu2", "bleu3", "bleu4", "rouge_l", "cider"}
    assert set(got) == {*F1_KEYS, "example_f1_upos", *nlg, "distinct"}
    assert got["distinct"] == pytest.approx(2 / 3)
    assert all(isinstance(v, float) for v in got.values())
    ref, gen = label_reports(refs), label_reports(gens)
    assert got["micro14_upos"] == chexbert_f1(ref, gen)["micro14_upos"]
    assert got["example_f1_upos"] == example_based_prf(ref, gen, "positive")["f1"]
    assert np.isfinite(list(got.values())).all()
