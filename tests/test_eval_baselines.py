"""The trivial baselines of notebook 05, and the tables that put them beside the model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from unixlib.eval import baselines, image_eval, report_eval
from unixlib.eval.understanding import score_reports
from unixlib.experiments import generation_tables, paper_rows, understanding_tables
from unixlib.viz.tables import FROM_PAPER, SOURCE_COL, THIS_RUN

TRAIN = ["No acute process.", "Cardiomegaly.", "No acute process.", "Small left effusion.", ""]


def test_most_frequent_report_counts_texts_and_ignores_empty_ones():
    assert baselines.most_frequent_report(TRAIN) == "No acute process."
    with pytest.raises(ValueError, match="no non-empty"):
        baselines.most_frequent_report(["", "  "])


def test_random_reports_are_seeded_training_reports():
    a = baselines.random_reports(TRAIN, 20, seed=3)
    assert a == baselines.random_reports(TRAIN, 20, seed=3)
    assert a != baselines.random_reports(TRAIN, 20, seed=4)
    assert set(a) <= {t for t in TRAIN if t}


def test_retrieval_returns_the_report_of_the_most_similar_training_image():
    train = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    query = np.array([[0.1, 2.0], [3.0, 0.2], [5.0, 5.1]])  # cosine: row 1, row 0, row 2
    assert baselines.retrieval_reports(train, ["a", "b", "c"], query) == ["b", "a", "c"]
    with pytest.raises(ValueError, match="3 training feature rows for 2"):
        baselines.retrieval_reports(train, ["a", "b"], query)


def test_shuffled_reports_move_every_report_to_another_row():
    reports = [f"report {i}" for i in range(9)]
    shuffled = baselines.shuffled_reports(reports, seed=0)
    assert sorted(shuffled) == sorted(reports)
    assert all(a != b for a, b in zip(reports, shuffled, strict=True))


def test_always_normal_row_equals_the_labelers_scores_of_that_one_report():
    refs = ["Cardiomegaly. No effusion.", "Normal chest.", "Left pleural effusion."]
    always = baselines.most_frequent_report(["Normal chest.", "Normal chest.", "Cardiomegaly."])
    scores = report_eval.score_methods(refs, {"always": [always] * 3})
    direct = score_reports(refs, [always] * 3)
    for key, value in direct.items():
        assert scores.at["always", key] == pytest.approx(value, nan_ok=True)
    # one distinct text for three images
    assert scores.at["always", "distinct"] == pytest.approx(1 / 3)


def test_table2_puts_this_runs_rows_in_percent_before_the_quoted_paper_rows():
    refs = ["Cardiomegaly.", "Normal chest."]
    scores = report_eval.score_methods(refs, {"UniX (this run)": refs, "copy": refs[::-1]})
    table = understanding_tables.table2(scores, {"copy": "baseline"}, "project rule labeler")
    ours = table[table[SOURCE_COL] == THIS_RUN].set_index("method")
    assert ours.at["UniX (this run)", "micro14 (u=pos)"] == pytest.approx(100.0)
    assert ours.at["copy", "kind"] == "baseline"
    paper = table[table[SOURCE_COL] == FROM_PAPER].set_index("method")
    assert paper.at["UniX (unified)", "micro14 (u=pos)"] == pytest.approx(52.6)
    assert paper.at["LLaVA-Rad", "macro5 (u=neg)"] == pytest.approx(47.7)


def test_beats_baselines_says_which_way_each_comparison_goes():
    scores = pd.DataFrame({"m": [0.6, 0.6, 0.4]}, index=["ours", "low", "high"])
    lines = understanding_tables.beats_baselines(scores, "ours", ["low", "high"], ["m"])
    assert lines == ["ours m = 0.600: ties low (0.600); beats high (0.400)"]
    scores = pd.DataFrame({"m": [0.5, 0.4, 0.7]}, index=["ours", "low", "high"])
    (line,) = understanding_tables.beats_baselines(scores, "ours", ["low", "high"], ["m"])
    assert line == "ours m = 0.500: beats low (0.400); does NOT beat high (0.700)"


def test_table3_scores_each_set_on_both_protocols_and_quotes_the_paper():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(40, 3))
    sets = {
        "same": real + rng.normal(scale=0.01, size=real.shape),
        "far": real + 3.0,
        "val": rng.normal(size=(28, 3)),
    }
    table = generation_tables.table3(
        real, sets, {"same": 0.9}, {"same": 64}, "enc", n_shards=4, kd_subsets=5
    )
    ours = table[table[SOURCE_COL] == THIS_RUN]
    assert len(ours) == 6 and set(ours["protocol"]) == {"whole test set", "mean of 4 shards"}
    whole = ours[ours["protocol"] == "whole test set"].set_index("images")
    assert whole.at["same", "FD"] < 0.01 < whole.at["far", "FD"]
    assert whole.at["same", "align"] == 0.9 and np.isnan(whole.at["far", "align"])
    assert np.isfinite(ours["FD"]).all() and np.isfinite(ours["coverage"]).all()
    assert (table[SOURCE_COL] == FROM_PAPER).sum() == 10


def test_table4_counts_positives_and_puts_columns_in_the_papers_order():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(12, 2))
    labels = pd.DataFrame(0.0, index=range(12), columns=paper_rows.TABLE4_ORDER)
    labels.loc[:5, "cardiomegaly"] = 1.0
    table = generation_tables.table4(real, {"gen": real + 1.0}, labels, {"gen": 64}, "enc")
    counts = table.iloc[0]
    assert counts["images"] == "n positive (test)" and counts["cardiomegaly"] == 6
    gen = table[table["images"] == "gen"].iloc[0]
    assert gen["cardiomegaly"] == pytest.approx(2.0, abs=1e-6)  # a pure shift of 1 in 2 dims
    assert np.isnan(gen["edema"])
    assert list(table.columns[4:]) == list(paper_rows.TABLE4_ORDER)


def test_memoized_labeler_labels_each_distinct_text_once_and_keeps_order():
    seen: list[str] = []

    def spy(texts):
        seen.extend(texts)
        from unixlib.data.text.labeler import label_texts

        return label_texts(texts)

    label = report_eval.memoized(spy)
    texts = ["Cardiomegaly.", "No effusion.", "Cardiomegaly."]
    first = label(texts)
    again = label(["No effusion.", "Cardiomegaly."])
    assert seen == ["Cardiomegaly.", "No effusion."]
    assert list(first["cardiomegaly"].fillna(9)) == [1.0, 9, 1.0]
    assert list(again["pleural_effusion"].fillna(9)) == [0.0, 9]


def test_mean_fraction_is_the_fraction_of_the_mean_aurocs_over_the_named_classes():
    summary = pd.DataFrame(
        {
            "class": ["cardiomegaly", "edema", "fracture"],
            "auroc_generated": [0.9, 0.6, 0.5],
            "auroc_real": [1.0, 0.8, 0.9],
        }
    )
    # classes cardiomegaly + edema: means 0.75 and 0.9 -> (0.75 - 0.5) / (0.9 - 0.5)
    assert image_eval.mean_fraction(summary, ["cardiomegaly", "edema"]) == pytest.approx(0.625)
