"""``python -m unixlib compare A B``: two evaluations paired over the same test studies."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from unixlib.cli.main import main
from unixlib.experiments import compare

FINDINGS = [
    "FINDINGS: Moderate cardiomegaly. IMPRESSION: Cardiomegaly.",
    "FINDINGS: Small left pleural effusion. IMPRESSION: Left effusion.",
    "FINDINGS: No acute cardiopulmonary process.",
    "FINDINGS: Right lower lobe consolidation. IMPRESSION: Pneumonia.",
]


def _evaluation(folder, reports, references, ids=None):
    folder.mkdir(parents=True)
    ids = ids or [f"s{i}" for i in range(len(references))]
    frame = pd.DataFrame({"id": ids, "reference": references, compare.MODEL: reports})
    frame.to_csv(folder / compare.REPORTS, index=False)
    return folder


def test_reports_of_two_runs_are_compared_pairwise(tmp_path):
    rng = np.random.default_rng(0)
    references = [FINDINGS[i] for i in rng.integers(0, 4, 120)]
    wrong = [FINDINGS[(FINDINGS.index(t) + 1) % 4] for t in references]
    a = _evaluation(tmp_path / "a", references, references)  # A writes every reference
    b = _evaluation(tmp_path / "b", wrong, references)  # B always the next finding
    frame, sentences = compare.compare_runs(a, b, r=compare.Resampling(200))
    micro = frame.set_index("measure").loc["micro-F1-14"]
    assert micro["a_value"] == pytest.approx(100.0) and micro["diff_low"] > 0
    assert sentences[0].startswith("micro-F1-14: a beats b") and micro["p_value"] < 0.01
    same, said = compare.compare_runs(a, a, r=compare.Resampling(200))
    assert (same["diff_value"] == 0).all() and all("no detectable difference" in s for s in said)


def test_compare_refuses_evaluations_of_other_studies(tmp_path, capsys):
    a = _evaluation(tmp_path / "a", FINDINGS, FINDINGS)
    b = _evaluation(tmp_path / "b", FINDINGS, FINDINGS, ids=["x0", "x1", "x2", "x3"])
    assert main(["compare", str(a), str(b)]) == 2
    assert "not on the same studies" in capsys.readouterr().err
    assert main(["compare", str(a), str(tmp_path / "none")]) == 2
    assert "run `python -m unixlib evaluate` first" in capsys.readouterr().err


def test_compare_command_writes_its_table(tmp_path, capsys):
    a = _evaluation(tmp_path / "a", FINDINGS, FINDINGS)
    b = _evaluation(tmp_path / "b", FINDINGS[::-1], FINDINGS)
    out = tmp_path / "out"
    assert main(["compare", str(a), str(b), "--n-resamples", "100", "--out", str(out)]) == 0
    table = pd.read_csv(out / "comparison.csv")
    assert set(table["measure"]) == {"micro-F1-14", "macro-F1-14"}
    assert {"diff_low", "diff_high", "p_value"} <= set(table.columns)
    assert "micro-F1-14:" in capsys.readouterr().out
