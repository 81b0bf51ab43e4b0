"""Section parsing and rule cleaning of radiology reports (unixlib.data.text.reports)."""

from __future__ import annotations

import pandas as pd
import pytest

from unixlib.data.sources.common import report_problem
from unixlib.data.text.judge import reference_text
from unixlib.data.text.reports import (
    SECTION_KEYS,
    clean_section,
    format_report,
    parse_sections,
    report_body,
    rule_clean,
    split_report,
)

MIMIC = """                                 FINAL REPORT
 EXAMINATION:  CHEST (PA AND LAT)

 INDICATION:  ___ year old woman with ?pleural effusion  // ?pleural effusion

 TECHNIQUE:  Chest PA and lateral

 COMPARISON:  ___

 FINDINGS:

 In comparison with the study of ___, there is little change in the substantial
 enlargement of the cardiomediastinal silhouette. Large left pleural effusion is new.
 There is no pneumothorax.

 IMPRESSION:

 Large left pleural effusion.

 NOTIFICATION:  Dr. ___ was notified by telephone at 10:15 a.m. on ___.
"""

IU = (
    "Comparison: None.\nIndication: Chest pain.\n"
    "Findings: The heart, pulmonary XXXX and mediastinum are within normal limits. "
    "XXXX basilar atelectasis. The XXXX are intact.\n"
    "Impression: No acute cardiopulmonary abnormality."
)


def test_parse_sections_mimic() -> None:
    s = parse_sections(MIMIC)
    assert set(s) == set(SECTION_KEYS)
    assert s["examination"] == "CHEST (PA AND LAT)"
    assert s["indication"] == "___ year old woman with ?pleural effusion // ?pleural effusion"
    assert s["technique"] == "Chest PA and lateral"
    assert s["comparison"] == "___"
    assert s["findings"].startswith("In comparison with the study of ___, there is little")
    assert s["findings"].endswith("There is no pneumothorax.")
    assert s["impression"] == "Large left pleural effusion."
    assert s["notification"].startswith("Dr. ___ was notified")
    assert s["preamble"] == "" and s["wet_read"] == ""


def test_parse_sections_iu_and_wet_read() -> None:
    s = parse_sections(IU)
    assert s["comparison"] == "None."
    assert s["indication"] == "Chest pain."
    assert s["findings"].startswith("The heart, pulmonary XXXX")
    assert s["impression"] == "No acute cardiopulmonary abnormality."
    w = parse_sections(
        "WET READ: ___ 7:23 PM\n No acute process.\nFINAL REPORT\nIMPRESSION: Clear."
    )
    assert w["wet_read"] == "___ 7:23 PM No acute process."
    assert w["impression"] == "Clear."
    # a repeated header appends; a lower-case word with a colon mid-line is not a header
    r = parse_sections(
        "FINDINGS: Clear lungs, comparison: none given. IMPRESSION: A. IMPRESSION: B."
    )
    assert r["findings"] == "Clear lungs, comparison: none given."
    assert r["impression"] == "A. B."


def test_paper_fig3_example_and_mimic_report() -> None:
    result = rule_clean(MIMIC)
    assert result.ok and result.reason == ""
    assert result.text == (
        "FINDINGS: There is substantial enlargement of the cardiomediastinal silhouette. "
        "Large left pleural effusion is present. There is no pneumothorax. "
        "IMPRESSION: Large left pleural effusion."
    )


def test_iu_report_deid_spans() -> None:
    result = rule_clean(IU)
    assert result.text == (
        "FINDINGS: The heart and mediastinum are within normal limits. "
        "Basilar atelectasis. IMPRESSION: No acute cardiopulmonary abnormality."
    )


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        # comparisons: rewritten where a finding is stated, dropped where only the comparison is
        (
            "Moderate right pleural effusion, unchanged since ___.",
            "Moderate right pleural effusion.",
        ),
        (
            "Calcified granuloma is again seen in the right upper lobe.",
            "Calcified granuloma is seen in the right upper lobe.",
        ),
        ("Left pleural effusion is unchanged.", "Left pleural effusion is present."),
        ("Stable enlarged cardiomediastinal silhouette.", "Enlarged cardiomediastinal silhouette."),
        ("Lung volumes remain low.", "Lung volumes are low."),
        ("Mild edema has improved compared to the prior study.", "Mild edema is present."),
        # change words and notifications inside a finding sentence: the finding stays
        ("The small left effusion has increased since ___.", "The small left effusion is present."),
        (
            "New large right pneumothorax, discussed with Dr. Smith at 3 p.m.",
            "Large right pneumothorax.",
        ),
        (
            "Small left pleural effusion, which was discussed with Dr. ___ at ___.",
            "Small left pleural effusion.",
        ),
        (
            "Moderate pulmonary edema. These findings were telephoned to Dr. ___ on ___.",
            "Moderate pulmonary edema.",
        ),
        ("There is a new right basilar opacity.", "There is a right basilar opacity."),
        (
            "There is interval increase in the size of the left pleural effusion.",
            "There is left pleural effusion.",
        ),
        ("The pneumothorax has resolved.", "The pneumothorax has resolved."),
        # never a word the raw text lacks; an "other finding" survives its span
        ("Heart and pulmonary XXXX are normal.", "Heart is normal."),
        ("Pulmonary XXXX are normal.", ""),
        ("Stable scoliosis XXXX.", "Scoliosis."),
        ("There is stable, mild cardiomegaly.", "There is mild cardiomegaly."),
        ("The chest shows an unchanged large opacity.", "The chest shows a large opacity."),
        ("Left subclavian ICD is unchanged in position.", "Left subclavian ICD is present."),
        (
            "Interstitial markings are unchanged in the interval.",
            "Interstitial markings are present.",
        ),
        (
            "No change chronic interstitial lung disease.",
            "There is chronic interstitial lung disease.",
        ),
        (
            "The effusion is stable, and the tube is in place.",
            "The effusion is stable, and the tube is in place.",
        ),
        ("Compared to prior, there is no significant change.", ""),
        ("No change in the appearance of the heart and lungs.", ""),
        ("Heart size is stable.", ""),
        ("Comparison XXXX, XXXX.", ""),
        ("No comparison chest x-XXXX.", ""),
        # notifications, technique, fillers
        ("Dr. ___ was notified by telephone at ___.", ""),
        ("Findings were discussed with the referring physician at 3 p.m.", ""),
        ("PA and lateral views of the chest were obtained.", ""),
        (
            "Frontal and lateral views of the chest show normal size of the cardiac silhouette.",
            "Normal size of the cardiac silhouette.",
        ),
        ("Clinical correlation is recommended.", ""),
        ("Please see the CT report for details.", ""),
        ("CT chest with contrast may be helpful for further evaluation.", ""),
        # de-identification: spans cut, meaningless leftovers dropped, findings kept
        ("XXXX XXXX opacities in right mid lung.", "Opacities in right mid lung."),
        ("The XXXX are intact.", ""),
        ("There are no XXXX of a pleural effusion.", "There are no signs of a pleural effusion."),
        ("Right chest XXXX tip in the low SVC.", "Right chest tip in the low SVC."),
        ("Right XXXX-A-XXXX remains in XXXX.", "Right Port-A-Cath is in place."),
    ],
)
def test_sentence_rules(raw: str, clean: str) -> None:
    assert clean_section(raw) == clean


def test_clinical_content_kept_verbatim() -> None:
    text = (
        "Possible small left pleural effusion. No right pneumothorax. Severe cardiomegaly. "
        "Mild bibasilar atelectasis, cannot exclude pneumonia. Right IJ catheter tip in the SVC. "
        "1.9 x 1.8 cm nodule in the left upper lobe."
    )
    assert clean_section(text) == text
    # list enumerators go, the decimal numbers stay, also mid-text ("aspiration 2. Suture")
    assert clean_section("1. Small effusion. 2. No edema.") == "Small effusion. No edema."
    assert clean_section("1. No pneumonia 2. Clips at the left apex 3. Mild cardiomegaly") == (
        "No pneumonia. Clips at the left apex. Mild cardiomegaly."
    )
    assert clean_section("A 1.5 cm nodule. 2. No edema.") == "A 1.5 cm nodule. No edema."


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty report"),
        ("   \n ", "empty report"),
        ("INDICATION: cough. COMPARISON: ___.", "no findings or impression section"),
        (
            "FINDINGS: Comparison is made to ___. IMPRESSION: Dr. ___ was notified.",
            "nothing left after cleaning",
        ),
    ],
)
def test_rejections(raw: str, reason: str) -> None:
    result = rule_clean(raw)
    assert (result.ok, result.text, result.reason) == (False, "", reason)


def test_report_body_decides_for_every_stage() -> None:
    """Free text (no header) is findings; headers without FINDINGS/IMPRESSION are no content.
    The source check, the rule cleaner and the LLM judge's reference all follow it."""
    free = "The lungs are clear.\n No effusion."
    assert report_body(free) == ("The lungs are clear. No effusion.", "")
    assert report_body("INDICATION: cough. COMPARISON: ___.") == ("", "")
    assert report_body("FINAL REPORT\n INDICATION: x\n IMPRESSION: Normal.") == ("", "Normal.")
    assert rule_clean(free).text == "FINDINGS: The lungs are clear. No effusion."
    assert report_problem(free) is None
    assert reference_text(free) == "FINDINGS: The lungs are clear. No effusion."
    assert report_problem("INDICATION: cough.") == (
        "report has neither FINDINGS nor IMPRESSION content"
    )
    assert not rule_clean("INDICATION: cough.").ok


def test_missing_section_loses_its_key() -> None:
    """No "FINDINGS: IMPRESSION:" artefact; the old spelling with an empty key still parses."""
    assert rule_clean("IMPRESSION: No acute process.").text == "IMPRESSION: No acute process."
    assert rule_clean("FINDINGS: Clear lungs.").text == "FINDINGS: Clear lungs."
    assert rule_clean("FINDINGS: IMPRESSION: 1. Clear lungs.").text == "IMPRESSION: Clear lungs."
    assert split_report("FINDINGS: IMPRESSION: No acute process.") == ("", "No acute process.")
    assert split_report("FINDINGS: Clear lungs. IMPRESSION:") == ("Clear lungs.", "")
    assert split_report("IMPRESSION: No acute process.") == ("", "No acute process.")
    assert split_report("FINDINGS: Clear lungs.") == ("Clear lungs.", "")


@pytest.mark.parametrize(
    ("findings", "impression"),
    [("Clear lungs. No effusion.", "Normal chest."), ("", "X."), ("Y.", "")],
)
def test_format_split_round_trip(findings: str, impression: str) -> None:
    assert split_report(format_report(findings, impression)) == (findings, impression)


def test_split_rejects_other_formats() -> None:
    with pytest.raises(ValueError, match="FINDINGS"):
        split_report("Clear lungs. IMPRESSION: none")
    with pytest.raises(ValueError, match="FINDINGS"):
        split_report("")


@pytest.mark.shared
def test_real_iu_reports_leave_no_deid_span(shared_data) -> None:
    df = pd.read_csv(shared_data / "iu_reports" / "iu_reports_trainval.csv").fillna("")
    df = df.iloc[:400]
    raws = [
        f"FINDINGS: {f}\nIMPRESSION: {i}" for f, i in zip(df.findings, df.impression, strict=True)
    ]
    results = [rule_clean(r) for r in raws]
    kept = [r.text for r in results if r.ok]
    assert len(kept) >= 390  # only reports with both sections empty are rejected
    assert all(r.reason == "no findings or impression section" for r in results if not r.ok)
    assert not any("XXXX" in t for t in kept)
    assert all(any(split_report(t)) for t in kept)  # a section survives in every kept text
