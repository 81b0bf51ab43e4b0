"""SynthCXR's ground-truth labels say what its reports say: the rule labeler, run on the
rule-cleaned report, reproduces every label value (1 / 0 / -1 / NaN) of a few hundred samples."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from unixlib.data.schema import LABELS
from unixlib.data.synth.synthetic import SynthCXR
from unixlib.data.text.labeler import label_report
from unixlib.data.text.reports import rule_clean

N_SAMPLES = 300


def _value(v: float) -> str:
    """A label value as a comparable token (NaN equals NaN)."""
    return "nan" if math.isnan(v) else f"{v:g}"


@pytest.fixture(scope="module")
def truth_and_pred() -> tuple[pd.DataFrame, pd.DataFrame]:
    gen = SynthCXR(seed=0, size=32)
    truth, pred = [], []
    for i in range(N_SAMPLES):
        s = gen.sample(i)
        clean = rule_clean(s.report_raw)
        assert clean.ok, (i, clean.reason)
        truth.append(s.labels)
        pred.append(label_report(clean.text))
    return pd.DataFrame(truth, columns=list(LABELS)), pd.DataFrame(pred, columns=list(LABELS))


def test_sample_covers_every_value(truth_and_pred) -> None:
    # The agreement below could not fail on a class the sample never states: make sure the
    # sample has hedged (-1), ruled-out (0), present (1) and unmentioned (NaN) findings.
    truth, _ = truth_and_pred
    seen = {_value(v) for c in LABELS if c != "no_finding" for v in truth[c]}
    assert seen == {"1", "0", "-1", "nan"}
    assert (truth["pneumonia"] == -1).sum() >= 5 and (truth["cardiomegaly"] == 0).sum() >= 20


def test_exact_value_agreement_per_class(truth_and_pred) -> None:
    truth, pred = truth_and_pred
    for c in LABELS:
        same = np.mean([_value(t) == _value(p) for t, p in zip(truth[c], pred[c], strict=True)])
        bad = [
            (i, _value(t), _value(p))
            for i, (t, p) in enumerate(zip(truth[c], pred[c], strict=True))
            if _value(t) != _value(p)
        ]
        assert same >= 0.99, (c, same, bad[:5])


def test_micro_f1_with_uncertain_as_positive(truth_and_pred) -> None:
    truth, pred = truth_and_pred
    t = truth.isin([1.0, -1.0]).to_numpy()
    p = pred.isin([1.0, -1.0]).to_numpy()
    tp, fp, fn = (t & p).sum(), (~t & p).sum(), (t & ~p).sum()
    assert tp > 500  # a few hundred reports state well over 500 findings
    assert tp / (tp + (fp + fn) / 2) >= 0.99
