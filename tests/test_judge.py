"""The self-judgment every cleaned row gets (labels, side, severity, spans), and the relaxed
rule result a failed judgment falls back to."""

from __future__ import annotations

from collections import Counter

import pandas as pd
import pytest

from unixlib.data.text import clean
from unixlib.data.text.clean import check_counts, clean_manifest, judged_rule_clean
from unixlib.data.text.iu_mesh import load_iu_reports
from unixlib.data.text.judge import finding_details, judge, reference_text
from unixlib.data.text.labeler import label_report

RAW = "FINDINGS: Large left pleural effusion. No pneumothorax. IMPRESSION: Left effusion."


@pytest.mark.parametrize(
    ("cleaned", "check", "reason"),
    [
        (
            "FINDINGS: Large left pleural effusion. No pneumothorax. IMPRESSION: Left effusion.",
            "",
            "",
        ),
        ("Large left pleural effusion.", "format", "not in 'FINDINGS"),
        (
            "FINDINGS: Large left pleural effusion ___. No pneumothorax.",
            "deid",
            "de-identification",
        ),
        (
            "FINDINGS: Large left pleural effusion.",
            "labels",
            "labels differ: pneumothorax negative",
        ),
        (
            "FINDINGS: Small right pleural effusion. No pneumothorax.",
            "side",
            "side differs: pleural_effusion left->right",
        ),
        (
            "FINDINGS: Small left pleural effusion. No pneumothorax.",
            "severity",
            "severity differs: pleural_effusion large->small",
        ),
        (
            "FINDINGS: Bilateral large pleural effusions. No pneumothorax.",
            "side",
            "side differs: pleural_effusion left->bilateral",
        ),
    ],
)
def test_judge_checks(cleaned: str, check: str, reason: str) -> None:
    verdict = judge(RAW, cleaned)
    assert verdict.check == check and verdict.reason.startswith(reason)
    assert verdict.ok == (check == "")


def test_finding_details_read_each_mention_clause() -> None:
    details = finding_details(
        "Small left pleural effusion and large right pneumothorax. The heart is mildly enlarged. "
        "Bibasilar atelectasis, no edema."
    )
    assert details["pleural_effusion"] == ({"left"}, {"small"})
    assert details["pneumothorax"] == ({"right"}, {"large"})
    assert details["cardiomegaly"] == (set(), {"mild"})
    assert details["atelectasis"] == ({"bilateral"}, set())
    assert "edema" not in details  # negatives carry no side or severity


def test_failed_rule_result_is_relaxed_not_dropped() -> None:
    # the notification sentence is the only one naming the pneumothorax: the rules drop it,
    # the judge sees the finding go, and only that sentence is restored (spans removed)
    raw = "FINDINGS: No effusion. Dr. ___ was notified of the left pneumothorax at ___."
    out = judged_rule_clean(raw)
    assert out.status.startswith("relaxed:labels differ: pneumothorax positive->not mentioned")
    assert out.check == "labels"
    assert out.text == "FINDINGS: No effusion. Dr. was notified of the left pneumothorax."
    assert judge(raw, out.text).ok
    passed = judged_rule_clean("FINDINGS: Small left effusion, unchanged since ___.")
    assert (passed.text, passed.status, passed.check) == (
        "FINDINGS: Small left effusion.",
        "rules",
        "",
    )


def test_unverified_keeps_rule_text(monkeypatch) -> None:
    from unixlib.data.text.judge import Judgment

    monkeypatch.setattr(clean, "judge", lambda raw, text: Judgment("labels", "labels differ: x"))
    out = judged_rule_clean("FINDINGS: Small left effusion.")
    assert (out.text, out.status, out.check) == (
        "FINDINGS: Small left effusion.",
        "unverified:labels differ: x",
        "labels",
    )


def test_manifest_records_the_check_of_every_row(tmp_path) -> None:
    raws = [
        "FINDINGS: Small left effusion, unchanged since ___.",
        "FINDINGS: No effusion. Dr. ___ was notified of the left pneumothorax at ___.",
        "",
    ]
    pd.DataFrame({"id": ["a", "b", "c"], "report_raw": raws}).to_parquet(tmp_path / "m.parquet")
    stats = clean_manifest(tmp_path / "m.parquet", tmp_path / "c.parquet")
    df = pd.read_parquet(tmp_path / "c.parquet")
    assert df.clean_status.str.split(":").str[0].tolist() == ["rules", "relaxed", "rejected"]
    assert df.clean_check.tolist() == ["", "labels", ""]
    assert stats.by_check == {"labels": 1} and stats.count("relaxed") == 1
    counts = check_counts(df.clean_status, df.clean_check)
    assert counts[
        ["rows", "rejected", "judged", "caught:labels", "relaxed", "passed"]
    ].tolist() == [
        3,
        1,
        2,
        1,
        1,
        1,
    ]


@pytest.mark.shared
def test_iu_reports_keep_every_label_side_and_severity(shared_data) -> None:
    """On all 3,365 IU X-ray train+val reports the judged rule cleaning changes no label, side
    or severity; the rule result itself passes on 99% and the rest is relaxed, none is left
    unverified."""
    raws = load_iu_reports(shared_data / "iu_reports" / "iu_reports_trainval.csv")
    out = [judged_rule_clean(raw) for raw in raws]
    kinds = Counter(o.status.split(":", 1)[0] for o in out)
    assert len(out) == 3365 and kinds["rejected"] == 28  # no FINDINGS/IMPRESSION text
    assert kinds["unverified"] == 0
    assert kinds["relaxed"] <= 30 and kinds["rules"] >= 3300
    for raw, o in zip(raws, out, strict=True):
        if o.text:
            assert judge(raw, o.text).ok
            assert label_report(o.text) == pytest.approx(
                label_report(reference_text(raw)), nan_ok=True
            )
            assert "XXXX" not in o.text and "FINDINGS: IMPRESSION:" not in o.text
