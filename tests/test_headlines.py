"""The paper's headline claims recomputed with their formulas (issue 22 item 6), by hand, and
Fig. 1's cross-model comparison (quoted rows + this run, parameters on an axis)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from unixlib.experiments.headlines import billions, comparison, gain, headlines
from unixlib.viz import fig1_comparison


def test_the_paper_s_claims_from_its_quoted_rows() -> None:
    frame, sentences = headlines()
    values = dict(zip(frame["claim"], frame["paper value"], strict=True))
    assert values["+46.1% understanding"] == pytest.approx((52.6 - 36.0) / 36.0 * 100)  # 46.11
    assert values["+24.2% generation"] == pytest.approx((71.243 - 54.022) / 71.243 * 100)  # 24.17
    assert values["25% of the parameters"] == pytest.approx(2 * 1.5 / 12 * 100)  # 25.0
    assert round(values["+46.1% understanding"], 1) == 46.1
    assert round(values["+24.2% generation"], 1) == 24.2
    assert frame["paper"].tolist() == [
        "(52.6 - 36.0) / 36.0",
        "(71.243 - 54.022) / 71.243",
        "2 x 1.5B / 12B",
    ]
    assert frame["this run value"].isna().all()
    assert all("not measured by this run" in s for s in sentences)


def test_this_run_s_claims_against_the_same_quoted_row() -> None:
    frame, sentences = headlines(40.0, 60.0, 3.2, setting="SynthCXR 64 px, tiny preset")
    ours = dict(zip(frame["claim"], frame["this run value"], strict=True))
    assert ours["+46.1% understanding"] == pytest.approx(100 * 4 / 36)  # 11.11
    assert ours["+24.2% generation"] == pytest.approx(100 * 11.243 / 71.243)  # 15.78
    assert ours["25% of the parameters"] == pytest.approx(100 * 3.2 / 12)  # 26.67
    assert frame["this run"].tolist() == [
        "(40.0 - 36.0) / 36.0",
        "(71.243 - 60.000) / 71.243",
        "3.2B / 12B",
    ]
    assert sentences[0] == (
        "+46.1% understanding [(F1 - F1_LLM-CXR) / F1_LLM-CXR, micro-F1-14, uncertain as "
        "positive]: paper (52.6 - 36.0) / 36.0 = 46.1%; SynthCXR 64 px, tiny preset: "
        "(40.0 - 36.0) / 36.0 = 11.1% (against the paper's quoted LLM-CXR row)"
    )
    # a worse FD than LLM-CXR's is a negative gain, not a positive one
    assert gain(80.0, 71.243, higher_is_better=False) == pytest.approx(-100 * 8.757 / 71.243)


def test_parameter_counts_parse_or_stay_unplaced() -> None:
    assert billions("12B") == 12 and billions("0.86B") == 0.86
    assert math.isnan(billions("<1B")) and math.isnan(billions("-"))


def test_fig1_comparison_places_every_quoted_model_and_this_run(tmp_path: Path) -> None:
    frame = comparison(40.0, 60.0, 3.2, label="this run")
    ours = frame[frame["source"] == "this run"]
    assert ours["task"].tolist() == ["understanding", "generation"]
    unix = frame[frame["model"] == "UniX (unified)"]
    assert unix["params_b"].tolist() == [3.0] and unix["value"].tolist() == [52.6]
    assert math.isnan(frame.set_index("model").at["GPT-4V", "params_b"])
    assert len(frame[frame["task"] == "generation"]) == 10 + 1  # Table 3's rows + this run
    fig = fig1_comparison(frame, tmp_path / "fig1_comparison.png")
    assert (tmp_path / "fig1_comparison.png").stat().st_size > 10_000
    assert (tmp_path / "fig1_comparison.pdf").is_file()
    understanding, generation = fig.axes[:2]
    placed = frame[frame["params_b"].notna()]
    n_points = [
        sum(len(c.get_offsets()) for c in ax.collections) for ax in (understanding, generation)
    ]
    assert n_points == [
        int((placed["task"] == "understanding").sum()),
        int((placed["task"] == "generation").sum()),
    ]
    assert understanding.get_xscale() == "log"
    assert comparison(None, None, None)["source"].eq("paper (quoted)").all()
