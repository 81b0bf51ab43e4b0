"""The CheXpert-style labeler on hand-written sentences, its CSV round trip and the agreement maths."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from unixlib.data.schema import LABELS
from unixlib.data.text.iu_mesh import agreement, mesh_terms, mesh_to_labels
from unixlib.data.text.labeler import label_csv, label_report, label_texts

NAN = math.nan

# (sentence, {observation: expected value}); unlisted observations are not checked here.
CASES = [
    # Plain positives and synonyms.
    ("Cardiomegaly.", {"cardiomegaly": 1.0}),
    ("The heart is enlarged.", {"cardiomegaly": 1.0}),
    ("Heart size is mildly enlarged.", {"cardiomegaly": 1.0}),
    ("Enlargement of the cardiac silhouette.", {"cardiomegaly": 1.0}),
    ("Small left pleural effusion.", {"pleural_effusion": 1.0}),
    ("Right lower lobe consolidation.", {"consolidation": 1.0}),
    ("Patchy bibasilar airspace disease.", {"lung_opacity": 1.0}),
    ("Mild bibasilar atelectasis.", {"atelectasis": 1.0}),
    ("Small right apical pneumothorax.", {"pneumothorax": 1.0}),
    ("Pulmonary edema.", {"edema": 1.0}),
    ("Healed left rib fractures.", {"fracture": 1.0}),
    ("A 1 cm nodule in the right upper lobe.", {"lung_lesion": 1.0}),
    ("Biapical pleural thickening.", {"pleural_other": 1.0}),
    ("Right lower lobe pneumonia.", {"pneumonia": 1.0}),
    # Negation before the mention, including long coordinated lists.
    ("No pleural effusion.", {"pleural_effusion": 0.0}),
    ("Without focal consolidation.", {"consolidation": 0.0}),
    ("Negative for pneumothorax.", {"pneumothorax": 0.0}),
    (
        "No focal airspace consolidation, pleural effusion or pneumothorax.",
        {"consolidation": 0.0, "pleural_effusion": 0.0, "pneumothorax": 0.0},
    ),
    ("No focal opacity to suggest pneumonia.", {"lung_opacity": 0.0, "pneumonia": 0.0}),
    # Negation after the mention.
    ("Pneumothorax is not seen.", {"pneumothorax": 0.0}),
    ("Effusions are not identified.", {"pleural_effusion": 0.0}),
    ("The previously seen consolidation has resolved.", {"consolidation": 0.0}),
    # Anchors qualified as normal are negative mentions.
    ("Heart size is normal.", {"cardiomegaly": 0.0}),
    ("Normal heart size.", {"cardiomegaly": 0.0}),
    ("The cardiac silhouette is within normal limits.", {"cardiomegaly": 0.0}),
    ("The heart is not enlarged.", {"cardiomegaly": 0.0}),
    ("Borderline heart size.", {"cardiomegaly": -1.0}),
    # A qualifier before coordinated anchors covers each of them; the nearest one still wins.
    (
        "Normal heart size and mediastinal contours.",
        {"cardiomegaly": 0.0, "enlarged_cardiomediastinum": 0.0},
    ),
    (
        "Normal heart size, mediastinal contours and pulmonary vascularity.",
        {"cardiomegaly": 0.0, "enlarged_cardiomediastinum": 0.0, "edema": 0.0},
    ),
    (
        "Normal heart size and widened mediastinal contours.",
        {"cardiomegaly": 0.0, "enlarged_cardiomediastinum": 1.0},
    ),
    # General normal statements name no specific observation (CheXpert leaves them blank).
    ("The lungs are clear.", {"lung_opacity": NAN, "pleural_effusion": NAN}),
    ("No acute cardiopulmonary process.", {"edema": NAN, "pneumonia": NAN}),
    # Uncertainty before and after; negated uncertainty beats negation.
    ("Cannot exclude pneumonia.", {"pneumonia": -1.0}),
    ("A small effusion is not excluded.", {"pleural_effusion": -1.0}),
    ("Possible small left pleural effusion.", {"pleural_effusion": -1.0}),
    ("Opacity may represent atelectasis.", {"lung_opacity": 1.0, "atelectasis": -1.0}),
    ("Atelectasis versus pneumonia.", {"atelectasis": -1.0, "pneumonia": -1.0}),
    ("Pneumonia is a consideration.", {"pneumonia": -1.0}),
    ("Mild pulmonary vascular congestion.", {"edema": -1.0}),
    # Scope: cues stop at "but", "however", "there is".
    ("No effusion, but there is consolidation.", {"pleural_effusion": 0.0, "consolidation": 1.0}),
    (
        "No pneumothorax; however, a small effusion may be present.",
        {"pneumothorax": 0.0, "pleural_effusion": -1.0},
    ),
    ("Cardiomegaly without pulmonary edema.", {"cardiomegaly": 1.0, "edema": 0.0}),
    # Look-alikes are no mentions.
    ("Small pericardial effusion.", {"pleural_effusion": NAN}),
    ("Calcified nodule in the left base.", {"lung_lesion": NAN}),
    ("Plate-like atelectasis at the left base.", {"atelectasis": 1.0, "support_devices": NAN}),
    # "Nodular opacity" is an opacity, as IU indexers read it (labeler_rules docstring).
    ("A 6 mm nodular opacity in the lingula.", {"lung_opacity": 1.0, "lung_lesion": NAN}),
    # Support devices.
    ("Left subclavian pacemaker in place.", {"support_devices": 1.0}),
    ("Right PICC line with tip in the SVC.", {"support_devices": 1.0}),
    ("The endotracheal tube has been removed.", {"support_devices": 0.0}),
    ("Plate and screws fixate the right clavicle.", {"support_devices": 1.0}),
    # CheXpert: heart failure also means uncertain cardiomegaly.
    ("Findings consistent with CHF.", {"edema": 1.0, "cardiomegaly": -1.0}),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_sentence_labels(text: str, expected: dict[str, float]) -> None:
    got = label_report(text)
    for name, value in expected.items():
        if math.isnan(value):
            assert math.isnan(got[name]), (text, name, got[name])
        else:
            assert got[name] == value, (text, name, got[name])


def test_output_has_every_label_and_empty_text_is_blank() -> None:
    got = label_report("")
    assert list(got) == list(LABELS)
    # Nothing is mentioned, so no pathology either: No Finding is positive, the rest NaN.
    assert got["no_finding"] == 1.0
    assert all(math.isnan(got[n]) for n in LABELS if n != "no_finding")


def test_non_string_is_rejected() -> None:
    with pytest.raises(TypeError, match="str"):
        label_report(None)  # type: ignore[arg-type]


def test_aggregation_across_sentences() -> None:
    # Positive beats negative, uncertain beats negative, positive beats uncertain.
    assert label_report("No effusion. Small right effusion.")["pleural_effusion"] == 1.0
    assert label_report("No effusion. Possible left effusion.")["pleural_effusion"] == -1.0
    assert label_report("Possible atelectasis. Left basal atelectasis.")["atelectasis"] == 1.0


def test_no_finding_logic() -> None:
    normal = label_report("Heart size is normal. No pneumothorax or effusion. Lungs are clear.")
    assert normal["no_finding"] == 1.0
    # A positive or uncertain observation blanks No Finding (CheXpert never writes 0 there).
    assert math.isnan(label_report("Mild cardiomegaly.")["no_finding"])
    assert math.isnan(label_report("Possible small effusion.")["no_finding"])
    # Support devices alone do not count as a finding.
    devices = label_report("Pacemaker in place. Lungs are clear.")
    assert devices["support_devices"] == 1.0 and devices["no_finding"] == 1.0
    # Abnormalities outside the 13 classes (CheXpert's "other finding" list) also blank it.
    assert math.isnan(label_report("Thoracic scoliosis. Lungs are clear.")["no_finding"])
    assert label_report("No scoliosis.")["no_finding"] == 1.0


def test_label_texts_keeps_order_and_columns() -> None:
    df = label_texts(["No effusion.", "Large right effusion.", ""])
    assert list(df.columns) == list(LABELS)
    assert df["pleural_effusion"].tolist()[:2] == [0.0, 1.0]
    assert math.isnan(df["pleural_effusion"].iloc[2])


def test_label_csv_round_trip(tmp_path) -> None:
    src = tmp_path / "reports.csv"
    pd.DataFrame(
        {
            "id": ["a", "b", "c"],
            "findings": ["Heart is enlarged.", None, "No pneumothorax."],
            "impression": ["No effusion.", "Possible pneumonia.", None],
        }
    ).to_csv(src, index=False)
    out_path = tmp_path / "labels.csv"
    out = label_csv(src, ["findings", "impression"], out_path)
    assert list(out.columns) == ["id", "findings", "impression", *LABELS]
    back = pd.read_csv(out_path)
    assert back["id"].tolist() == ["a", "b", "c"]
    assert back["cardiomegaly"].tolist()[0] == 1.0
    assert back["pleural_effusion"].tolist()[0] == 0.0
    assert back["pneumonia"].tolist()[1] == -1.0
    assert back["pneumothorax"].tolist()[2] == 0.0
    assert back["fracture"].isna().all()  # not mentioned -> empty cell


def test_label_csv_missing_column_is_named(tmp_path) -> None:
    src = tmp_path / "reports.csv"
    pd.DataFrame({"findings": ["No effusion."]}).to_csv(src, index=False)
    with pytest.raises(ValueError, match="impression"):
        label_csv(src, ["findings", "impression"], tmp_path / "out.csv")
    with pytest.raises(ValueError, match="at least one"):
        label_csv(src, [], tmp_path / "out.csv")


def test_mesh_parsing_and_mapping() -> None:
    assert mesh_terms("Cardiomegaly/mild|Opacity/lung/base") == [
        ("Cardiomegaly", ("mild",)),
        ("Opacity", ("lung", "base")),
    ]
    truth = mesh_to_labels("Cardiac Shadow/enlarged|Thickening/pleura|Calcified Granuloma")
    assert truth["cardiomegaly"] == 1.0 and truth["pleural_other"] == 1.0
    assert sum(truth.values()) == 2.0  # the granuloma maps to nothing
    assert mesh_to_labels("Cardiac Shadow")["cardiomegaly"] == 0.0  # qualifier required
    assert mesh_to_labels("normal")["no_finding"] == 1.0
    with pytest.raises(ValueError, match="non-empty"):
        mesh_to_labels("")


def test_agreement_maths_hand_computed() -> None:
    # Class a: pred 1,1,-1,0 vs truth 1,0,1,1. Uncertain as positive: tp=2 fp=1 fn=1.
    # Class b: pred NaN,1,0,0 vs truth 0,1,0,0: tp=1 fp=0 fn=0.
    pred = pd.DataFrame({"a": [1.0, 1.0, -1.0, 0.0], "b": [NAN, 1.0, 0.0, 0.0]})
    truth = pd.DataFrame({"a": [1.0, 0.0, 1.0, 1.0], "b": [0.0, 1.0, 0.0, 0.0]})
    t = agreement(pred, truth, ["a", "b"])
    assert t.loc["a", ["tp", "fp", "fn", "support"]].tolist() == [2, 1, 1, 3]
    assert t.loc["a", "precision"] == pytest.approx(2 / 3)
    assert t.loc["a", "recall"] == pytest.approx(2 / 3)
    assert t.loc["a", "f1"] == pytest.approx(2 / (2 + 1))
    assert t.loc["b", "f1"] == pytest.approx(1.0)
    # micro pools tp=3 fp=1 fn=1 -> F1 = 3 / (3 + 1); macro averages 2/3 and 1.
    assert t.loc["micro", "f1"] == pytest.approx(3 / 4)
    assert t.loc["macro", "f1"] == pytest.approx((2 / 3 + 1.0) / 2)
    # Uncertain as negative: class a has tp=1 fp=1 fn=2 -> F1 = 1 / (1 + 1.5).
    strict = agreement(pred, truth, ["a"], uncertain_as=0.0)
    assert strict.loc["a", "f1"] == pytest.approx(1 / 2.5)


def test_agreement_rejects_bad_input() -> None:
    pred = pd.DataFrame({"a": [1.0]})
    with pytest.raises(ValueError, match="rows"):
        agreement(pred, pd.DataFrame({"a": [1.0, 0.0]}), ["a"])
    with pytest.raises(ValueError, match="missing"):
        agreement(pred, pd.DataFrame({"a": [1.0]}), ["b"])
    with pytest.raises(ValueError, match="uncertain_as"):
        agreement(pred, pd.DataFrame({"a": [1.0]}), ["a"], uncertain_as=0.5)


def test_agreement_applies_uncertain_as_to_truth_too():
    """A hedged finding labelled -1 on both sides is a match under either convention."""
    import pandas as pd

    from unixlib.data.text.iu_mesh import agreement

    pred = pd.DataFrame({"edema": [-1.0, 1.0, 0.0, -1.0]})
    truth = pd.DataFrame({"edema": [-1.0, 1.0, 0.0, 0.0]})
    as_pos = agreement(pred, truth, ["edema"], uncertain_as=1.0).loc["edema"]
    assert (as_pos.tp, as_pos.fp, as_pos.fn) == (2, 1, 0)
    as_neg = agreement(pred, truth, ["edema"], uncertain_as=0.0).loc["edema"]
    assert (as_neg.tp, as_neg.fp, as_neg.fn) == (1, 0, 0)


@pytest.mark.parametrize(
    "text",
    [
        "Discoid plate atelectasis at the left base.",
        "Kerley B lines are present.",
        "Septal lines at both bases.",
        "Scarring which leads to volume loss in the right upper lobe.",
        "Blunting of the right pleural space, XXXX a XXXX effusion or scarring.",
        "Vague density related to the scapular tip.",
    ],
)
def test_ordinary_words_are_no_device(text: str) -> None:
    assert math.isnan(label_report(text)["support_devices"])


@pytest.mark.parametrize(
    "text",
    ["Right XXXX-A-XXXX in place.", "Pacer leads to the right ventricle.", "Left chest port."],
)
def test_devices_still_found(text: str) -> None:
    assert label_report(text)["support_devices"] == 1.0


def test_deid_spans_read_as_absent_words() -> None:
    raw = label_report("The heart, pulmonary XXXX and mediastinum are within normal limits.")
    assert raw["cardiomegaly"] == 0.0 and raw["enlarged_cardiomediastinum"] == 0.0
    assert math.isnan(raw["edema"])  # "pulmonary XXXX" is not "pulmonary vasculature"
