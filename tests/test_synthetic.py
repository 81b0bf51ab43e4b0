"""SynthCXR: determinism, image geometry of findings, labels vs. report text, distribution."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from unixlib.data.schema import LABELS
from unixlib.data.synth.findings import OPACITY_FINDINGS
from unixlib.data.synth.reports import aggregate
from unixlib.data.synth.synthetic import FindingSpec, SynthCXR, gallery_rows, sample_findings
from unixlib.viz import synth_gallery

# Words that must appear in a report when the finding is present (any one of them).
MENTION = {
    "enlarged_cardiomediastinum": ("mediastin",),
    "cardiomegaly": ("cardiomegaly", "enlarge"),
    "lung_opacity": ("opacit",),
    "lung_lesion": ("nodul", "mass"),
    "edema": ("edema",),
    "consolidation": ("consolidat",),
    "pneumonia": ("pneumonia",),
    "atelectasis": ("atelectasis",),
    "pneumothorax": ("pneumothorax",),
    "pleural_effusion": ("effusion",),
    "pleural_other": ("pleural thickening",),
    "fracture": ("fracture",),
    "support_devices": ("tube", "catheter", "pacemaker"),
}
HEDGES = ("possible", "cannot be excluded", "may ", "concerning for", "questionable")


def region(img: np.ndarray, r0: float, r1: float, c0: float, c1: float) -> float:
    """Mean over a box given as fractions of the image (rows r0..r1, columns c0..c1)."""
    n = img.shape[0]
    return float(img[int(r0 * n) : int(r1 * n), int(c0 * n) : int(c1 * n)].mean())


@pytest.fixture(scope="module")
def samples() -> list:
    return list(SynthCXR(seed=1, size=32).generate(160))


def test_same_seed_index_size_gives_identical_bytes_and_report():
    a, b = SynthCXR(3, 64).sample(7), SynthCXR(3, 64).sample(7)
    assert a.image.tobytes() == b.image.tobytes()
    assert a.report_raw == b.report_raw and a.findings == b.findings and a.view == b.view
    c = SynthCXR(3, 64).sample(8)
    assert not np.array_equal(a.image, c.image)
    assert not np.array_equal(a.image, SynthCXR(4, 64).sample(7).image)


@pytest.mark.parametrize("size", [32, 64, 97, 256])
def test_shape_dtype_range(size):
    img = SynthCXR(0, size).sample(2).image
    assert img.shape == (size, size) and img.dtype == np.float32
    assert img.min() >= 0.0 and img.max() <= 1.0
    assert img.max() - img.min() > 0.5  # air outside the body and bright bone/mediastinum


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="size=16"):
        SynthCXR(0, 16)
    with pytest.raises(ValueError, match="index=-1"):
        SynthCXR(0, 32).sample(-1)
    with pytest.raises(ValueError, match="view="):
        SynthCXR(0, 32).render([], 0, view="LATERAL")
    with pytest.raises(ValueError, match="name"):
        FindingSpec("no_finding", "mild", "none")
    with pytest.raises(ValueError, match="side"):
        FindingSpec("cardiomegaly", "mild", "left")
    with pytest.raises(ValueError, match="severity"):
        FindingSpec("edema", "huge", "bilateral")
    with pytest.raises(ValueError, match="region"):
        FindingSpec("consolidation", "mild", "left", region="apex")
    with pytest.raises(ValueError, match="side must be"):
        FindingSpec("support_devices", "mild", "left", region="et_tube")


def test_severity_aliases_and_default_region():
    s = FindingSpec("pleural_effusion", "small", "left")
    assert (
        s.severity == "mild" and FindingSpec("pneumothorax", "large", "right").severity == "severe"
    )
    assert FindingSpec("consolidation", "mild", "left").region == "lower"
    assert FindingSpec("support_devices", "mild", "none").region == "et_tube"


def test_cardiomegaly_brightens_left_heart_border_only():
    gen = SynthCXR(0, 64)
    normal = gen.render([], 3)
    mild = gen.render([FindingSpec("cardiomegaly", "mild", "none")], 3) - normal
    severe = gen.render([FindingSpec("cardiomegaly", "severe", "none")], 3) - normal
    # The patient's left heart border lies on the image right, lower half.
    assert region(severe, 0.5, 0.72, 0.62, 0.8) > region(mild, 0.5, 0.72, 0.62, 0.8) > 0.02
    assert np.abs(severe[:20]).max() == 0.0  # upper chest untouched


def test_effusion_brightens_costophrenic_angle_on_its_side_only():
    gen = SynthCXR(0, 64)
    normal = gen.render([], 1)
    left = gen.render([FindingSpec("pleural_effusion", "moderate", "left")], 1) - normal
    right = gen.render([FindingSpec("pleural_effusion", "moderate", "right")], 1) - normal
    assert region(left, 0.6, 0.76, 0.72, 0.88) > 0.05  # patient left = image right
    assert region(left, 0.6, 0.76, 0.12, 0.28) == 0.0
    assert region(right, 0.6, 0.76, 0.12, 0.28) > 0.05
    assert region(right, 0.6, 0.76, 0.72, 0.88) == 0.0


def test_pneumothorax_darkens_its_upper_lateral_lung():
    gen = SynthCXR(0, 64)
    normal = gen.render([], 2)
    ptx = gen.render([FindingSpec("pneumothorax", "moderate", "left")], 2) - normal
    assert region(ptx, 0.15, 0.5, 0.62, 0.9) < -0.015
    assert region(ptx, 0.15, 0.5, 0.1, 0.38) == 0.0


def test_devices_add_bright_pixels():
    gen = SynthCXR(0, 64)
    normal = gen.render([], 0)
    devices = gen.render([FindingSpec("support_devices", "mild", "left", region="pacemaker")], 0)
    assert (devices - normal).max() > 0.1 and devices.mean() > normal.mean()


def test_labels_follow_findings_and_report(samples):
    for s in samples:
        assert list(s.labels) == list(LABELS)
        text = " ".join(s.report_raw.lower().split())  # undo line wrapping
        present = {f.name for f in s.findings}
        for f in s.findings:
            assert any(w in text for w in MENTION[f.name]), (f, s.report_raw)
            if f.name == "lung_opacity":
                continue  # checked below: other opacities can make it positive
            assert s.labels[f.name] == (-1.0 if f.hedged else 1.0), (f, s.report_raw)
            if f.hedged:
                assert any(h in text for h in HEDGES), s.report_raw
        if present & set(OPACITY_FINDINGS):
            assert s.labels["lung_opacity"] == 1.0
        absent = set(LABELS) - present - {"no_finding", "lung_opacity"}
        assert all(s.labels[n] == 0.0 or math.isnan(s.labels[n]) for n in absent), s.labels
        only_devices = present <= {"support_devices"}
        assert (
            (s.labels["no_finding"] == 1.0) if only_devices else math.isnan(s.labels["no_finding"])
        )


def test_negated_observations_are_absent_and_said_with_no(samples):
    negated = 0
    for s in samples:
        for name, value in s.labels.items():
            if value == 0.0:
                negated += 1
                assert name not in {f.name for f in s.findings}
        if any(v == 0.0 for v in s.labels.values()):
            text = " ".join(s.report_raw.lower().split())
            assert " no " in text or "normal" in text
    assert negated > len(samples)  # most reports negate something


def test_report_structure(samples):
    texts = [s.report_raw for s in samples]
    assert all("EXAMINATION:" in t and "IMPRESSION:" in t for t in texts)
    with_findings = np.mean(["FINDINGS:" in t for t in texts])
    assert 0.75 < with_findings < 0.98  # FINDINGS occasionally missing, as in MIMIC
    assert np.mean(["___" in t for t in texts]) > 0.6
    assert any("In comparison with the study of ___" in t for t in texts)
    assert any("Dr. ___" in t for t in texts)
    assert {s.view for s in samples} == {"PA", "AP"}
    # Lines wrap at spaces only: "plate-like" must not come back as "plate- like" once the
    # wrapped lines are joined (hyphenated words are common, so this can fail).
    assert sum("plate-like" in t for t in texts) >= 3
    assert not any(re.search(r"\w-\s*\n", t) for t in texts)


def test_finding_distribution():
    specs = [sample_findings(np.random.default_rng((0, i, 0)))[0] for i in range(600)]
    normal = np.mean([all(f.name == "support_devices" for f in s) for s in specs])
    assert 0.27 < normal < 0.42
    names = [f.name for s in specs for f in s]
    for name in MENTION:
        assert names.count(name) >= 5, name  # every observation occurs
    # Edema comes with cardiomegaly more often than without.
    with_edema = [s for s in specs if any(f.name == "edema" for f in s)]
    assert np.mean([any(f.name == "cardiomegaly" for f in s) for s in with_edema]) > 0.4


def test_aggregate_rules():
    out = aggregate(
        [{"edema": 0.0}, {"edema": -1.0}, {"pneumothorax": -1.0}, {"pneumothorax": 1.0}]
    )
    assert out["edema"] == -1.0 and out["pneumothorax"] == 1.0 and math.isnan(out["no_finding"])
    devices_only = aggregate([{"support_devices": 1.0, "edema": 0.0}])
    assert devices_only["no_finding"] == 1.0 and devices_only["edema"] == 0.0
    assert math.isnan(devices_only["cardiomegaly"])


def test_report_for_matches_chosen_spec():
    gen = SynthCXR(0, 32)
    spec = [FindingSpec("pleural_effusion", "large", "bilateral")]
    text = gen.report_for(spec, index=4)
    assert text == gen.report_for(spec, index=4)
    assert "large bilateral pleural effusions" in text.lower()
    assert gen.labels_for(spec, index=4)["pleural_effusion"] == 1.0
    hedged = gen.labels_for([FindingSpec("pneumonia", "mild", "left", hedged=True)], index=4)
    assert hedged["pneumonia"] == -1.0 and hedged["lung_opacity"] == 1.0


def test_gallery_writes_png(tmp_path):
    rows = gallery_rows(SynthCXR(0, 32), per_row=2)
    assert list(rows) == ["normal", *[n for n in LABELS if n != "no_finding"]]
    assert all(len(v) == 2 and v[0].shape == (32, 32) for v in rows.values())
    out = tmp_path / "figs" / "gallery.png"
    fig = synth_gallery(rows, out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(fig.axes) == 2 * len(rows)
    with pytest.raises(ValueError, match="at least one image"):
        synth_gallery({"normal": []}, tmp_path / "x.png")
