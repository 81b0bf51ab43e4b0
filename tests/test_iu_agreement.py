"""Agreement of the rule labeler with IU X-ray human MeSH annotations (train+val reports only)."""

from __future__ import annotations

from collections import Counter

import pandas as pd
import pytest

from unixlib.data.iu_mesh import (
    MAPPED_CLASSES,
    MESH_RULES,
    MIN_SUPPORT,
    iu_agreement,
    load_iu_truth,
    mesh_terms,
    scored_classes,
)

pytestmark = pytest.mark.shared


@pytest.fixture(scope="module")
def iu_csv(shared_data):
    path = shared_data / "iu_reports" / "iu_reports_trainval.csv"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return path


def test_mapping_covers_what_it_claims(iu_csv) -> None:
    texts, truth = load_iu_truth(iu_csv)
    assert len(texts) == len(truth) == 3295  # 3,365 reports minus 70 "No Indexing"
    assert list(truth.columns) == list(MAPPED_CLASSES)
    # Every mapping rule fires on some study: no dead entries in the table.
    mesh = pd.read_csv(iu_csv)["mesh_major"].dropna()
    seen = Counter()
    for value in mesh:
        for heading, qualifiers in mesh_terms(value):
            for rule_heading, needed, _ in MESH_RULES:
                if heading == rule_heading and (needed is None or needed in qualifiers):
                    seen[(rule_heading, needed)] += 1
    assert {(h, q) for h, q, _ in MESH_RULES} == set(seen)
    # Scored classes: every mapped class with enough support (Enlarged Cardiomediastinum has not).
    classes = scored_classes(truth)
    assert all(truth[c].sum() >= MIN_SUPPORT for c in classes)
    assert set(MAPPED_CLASSES) - set(classes) == {"enlarged_cardiomediastinum"}
    assert truth["no_finding"].sum() == 1084


def test_iu_agreement_meets_targets(iu_csv) -> None:
    main = iu_agreement(iu_csv)  # uncertain counted as positive
    assert main.loc["micro", "f1"] >= 0.88
    assert main.loc["macro", "f1"] >= 0.85
    strict = iu_agreement(iu_csv, uncertain_as=0.0)  # uncertain counted as negative
    assert strict.loc["micro", "f1"] >= 0.88
    assert strict.loc["macro", "f1"] >= 0.85
