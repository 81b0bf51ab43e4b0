"""The trivial baselines of notebook 05, and the tables that put them beside the model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from unixlib.eval import baselines, image_eval, report_eval
from unixlib.eval.uncertainty import Resampling
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


R = Resampling(n_resamples=200, seed=0)


def test_table2_gives_this_runs_rows_in_percent_with_intervals_and_quotes_the_paper_apart():
    refs = ["Cardiomegaly.", "Normal chest.", "Left pleural effusion.", "Normal chest."]
    methods = {"UniX (this run)": refs, "copy": refs[::-1]}
    rows = report_eval.report_rows(refs, methods)
    table, quoted = understanding_tables.table2(rows, {"copy": "baseline"}, "rule labeler", R)
    ours = table.set_index("method")
    key = "micro14 (u=pos)"
    assert ours.at["UniX (this run)", key] == pytest.approx(100.0)  # its own references
    assert ours.at["UniX (this run)", f"{key}_low"] == pytest.approx(100.0)
    assert ours.at["copy", "kind"] == "baseline" and (table[SOURCE_COL] == THIS_RUN).all()
    assert (ours[f"{key}_low"] <= ours[key]).all() and (ours[key] <= ours[f"{key}_high"]).all()
    paper = quoted.set_index("method")
    assert (quoted[SOURCE_COL] == FROM_PAPER).all()
    assert paper.at["UniX (unified)", key] == pytest.approx(52.6)
    assert paper.at["LLaVA-Rad", "macro5 (u=neg)"] == pytest.approx(47.7)


def test_comparisons_say_beats_only_when_the_paired_interval_excludes_zero():
    rng = np.random.default_rng(0)
    pool = ["Cardiomegaly.", "Normal chest.", "Left pleural effusion.", "Pneumothorax."]
    refs = [pool[i] for i in rng.integers(0, 4, 80)]
    methods = {"model": refs, "wrong": [pool[(pool.index(t) + 1) % 4] for t in refs], "same": refs}
    rows = report_eval.report_rows(refs, methods)
    frame, sentences = understanding_tables.compare(rows, "model", ["wrong", "same"], r=R)
    by = frame.set_index(["metric", "baseline"])
    assert by.loc[("micro14 (u=pos)", "wrong"), "diff_low"] > 0
    assert by.loc[("micro14 (u=pos)", "same"), "p_value"] == 1.0
    assert sentences[0].startswith("micro14 (u=pos): model beats wrong")
    assert "no detectable difference between model and same" in sentences[1]


def test_table3_scores_each_set_with_intervals_and_quotes_the_paper_apart():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(40, 3))
    sets = {"same": real + rng.normal(scale=0.01, size=real.shape), "far": real + 3.0}
    align = {"same": np.full(40, 0.9), "real (test)": np.full(40, 0.95)}
    table, quoted = generation_tables.table3(real, sets, align, {"same": 64}, "enc", 4, R)
    assert len(table) == 5 and set(table["protocol"]) == {
        "whole test set",
        "mean of 4 shards",
        "alignment with their own reports",
    }
    whole = table[table["protocol"] == "whole test set"].set_index("images")
    assert whole.at["same", "FD"] < 0.01 < whole.at["far", "FD"]
    assert whole.at["same", "FD_low"] <= whole.at["same", "FD_high"]
    assert whole.at["same", "align"] == pytest.approx(0.9) and np.isnan(whole.at["far", "align"])
    assert np.isfinite(
        table.loc[table["protocol"] != "alignment with their own reports", "FD"]
    ).all()
    assert len(quoted) == 10 and (quoted[SOURCE_COL] == FROM_PAPER).all()


def test_real_reference_compares_disjoint_halves_of_equal_size():
    rng = np.random.default_rng(3)
    real = rng.normal(size=(60, 3))
    ref = generation_tables.real_reference(real, {"far": real + 2.0}, n_splits=4, seed=0)
    by = ref.set_index("images")
    assert (ref["studies per half"] == 30).all() and (ref["splits"] == 4).all()
    assert by.at["real vs real", "FD"] < by.at["far", "FD"]
    assert by.at["far", "FD_min"] <= by.at["far", "FD"] <= by.at["far", "FD_max"]


def test_table4_gives_fd_per_class_with_its_positives_and_quotes_the_paper_in_its_order():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(12, 2))
    labels = pd.DataFrame(0.0, index=range(12), columns=paper_rows.TABLE4_ORDER)
    labels.loc[:5, "cardiomegaly"] = 1.0
    table, quoted = generation_tables.table4(
        real, {"gen": real + 1.0}, labels, {"gen": 64}, "enc", R
    )
    card = table.set_index("class").loc["cardiomegaly"]
    assert card["n"] == 6
    assert card["FD"] == pytest.approx(2.0, abs=1e-6)  # a pure shift of 1 in 2 dims
    assert np.isnan(table.set_index("class").loc["edema", "FD"])  # no positive
    assert list(quoted.columns[2 : 2 + 14]) == list(paper_rows.TABLE4_ORDER)


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
