"""SynthCXR's raw reports carry MIMIC's noise inside finding sentences, and the judged rule
cleaning recovers what the noise-free ground truth says: every label, side and severity."""

from __future__ import annotations

import re

import numpy as np
import pytest

from unixlib.data.synth.noise import dictation_slips, noisy_sentence, numbered
from unixlib.data.synth.synthetic import SynthCXR
from unixlib.data.text.clean import judged_rule_clean
from unixlib.data.text.judge import judge

N_REPORTS = 2000


@pytest.fixture(scope="module")
def reports() -> list[tuple[str, dict[str, float], str]]:
    gen = SynthCXR(seed=0, size=32)
    return [gen.text(i) for i in range(N_REPORTS)]


def _share(raws: list[str], pattern: str) -> float:
    return float(np.mean([re.search(pattern, " ".join(r.split())) is not None for r in raws]))


def test_noise_sits_inside_finding_sentences(reports) -> None:
    raws = [raw for raw, _, _ in reports]
    # a comparison or change word after a finding, not only as an opening sentence
    assert _share(raws, r"\w, (?:unchanged since|unchanged from|as compared to|similar to)") > 0.15
    assert _share(raws, r"has (?:increased|decreased|slightly)|is new\.|\bNew [a-z]") > 0.05
    assert _share(raws, r"\w, (?:discussed with|which was)|; these findings") > 0.03
    assert _share(raws, r"IMPRESSION: 1\. .* 2\. ") > 0.04
    assert _share(raws, r"FINDINGS: IMPRESSION:") > 0.02
    assert _share(raws, r"\b(the|of|is|and) \1\b|[a-z]\.[A-Z][a-z]") > 0.05


def test_cleaning_keeps_every_finding_side_and_severity(reports) -> None:
    kinds: dict[str, int] = {}
    words_truth = words_clean = 0
    for i, (raw, _, truth) in enumerate(reports):
        out = judged_rule_clean(raw)
        kinds[out.status.split(":")[0]] = kinds.get(out.status.split(":")[0], 0) + 1
        verdict = judge(truth, out.text)  # the ground truth as the reference
        assert verdict.ok, (i, verdict.reason, raw, out.text)
        assert "___" not in out.text and "FINDINGS: IMPRESSION:" not in out.text
        assert not re.search(r"\b(the|of|is|and) \1\b|\b\d\. [A-Z]", out.text), out.text
        words_truth += len(truth.split())
        words_clean += len(out.text.split())
    assert kinds.get("rules", 0) >= 0.995 * N_REPORTS  # the rule result itself passes
    assert words_clean <= 1.05 * words_truth  # cleaned reports stay as short as the truth


def test_reports_are_deterministic_by_seed() -> None:
    a, b, c = SynthCXR(seed=3), SynthCXR(seed=3), SynthCXR(seed=4)

    def key(gen: SynthCXR, i: int) -> tuple[str, str, str]:
        raw, labels, truth = gen.text(i)
        return raw, str(labels), truth  # str: NaN labels compare equal

    assert [key(a, i) for i in range(20)] == [key(b, i) for i in range(20)]
    assert [a.text(i)[0] for i in range(20)] != [c.text(i)[0] for i in range(20)]
    assert a.sample(5).report_truth == a.text(5)[2]


def test_noise_functions() -> None:
    rng = np.random.default_rng(0)
    outs = {noisy_sentence("Small left pleural effusion.", rng, urgent=True) for _ in range(200)}
    assert "Small left pleural effusion." in outs and len(outs) > 8
    assert all("left" in o and "mall" in o for o in outs)  # side and severity never touched
    assert numbered(["A b.", "C d."], np.random.default_rng(1)) in (
        "1. A b. 2. C d.",
        "1. A b 2. C d",
    )
    slips = {
        dictation_slips("The heart is normal. No effusion.", np.random.default_rng(s))
        for s in range(60)
    }
    assert (
        "The heart is is normal. No effusion." in slips
        and "The heart is normal.No effusion." in slips
    )
