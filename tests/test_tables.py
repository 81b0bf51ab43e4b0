"""Tables are written as CSV, Markdown and LaTeX with the same content."""

from __future__ import annotations

import pandas as pd

from unixlib.viz.tables import FROM_PAPER, SOURCE_COL, THIS_RUN, save_table


def test_three_formats_with_caption_and_escaping(tmp_path):
    frame = pd.DataFrame(
        {SOURCE_COL: [FROM_PAPER, THIS_RUN], "F1 %": [53.6, 12.25], "note": ["a|b", None]}
    )
    paths = save_table(frame, tmp_path, "table2", caption="Table 2: F1 (50% of it)", floatfmt=".1f")
    assert pd.read_csv(paths["csv"]).shape == (2, 3)
    md = paths["md"].read_text().splitlines()
    assert md[0] == "Table 2: F1 (50% of it)"
    assert md[2] == "| source | F1 % | note |"
    assert md[4] == "| paper (quoted) | 53.6 | a\\|b |"
    assert md[5].startswith("| this run | 12.2 |")
    tex = paths["tex"].read_text()
    assert "\\caption{Table 2: F1 (50\\% of it)}" in tex and "\\label{tab:table2}" in tex
    assert "53.6" in tex


def test_interval_columns_show_as_one_cell_and_stay_apart_in_the_csv(tmp_path):
    frame = pd.DataFrame(
        {"method": ["ours"], "F1": [69.71], "F1_low": [66.12], "F1_high": [73.04], "n": [200]}
    )
    quoted = pd.DataFrame({"method": ["paper"], "F1": [52.6]})
    paths = save_table(frame, tmp_path, "t", caption="Table", floatfmt=".1f", quoted=quoted)
    md = paths["md"].read_text()
    assert "| 69.7 [66.1, 73.0] |" in md and "F1_low" not in md
    assert md.index("The paper (quoted") > md.index("69.7") and "| paper | 52.6 |" in md
    csv = pd.read_csv(paths["csv"])
    assert list(csv.columns) == ["method", "F1", "F1_low", "F1_high", "n"]
    assert csv["method"].tolist() == ["ours", "paper"]  # both blocks, told apart by a column
    assert "69.7 [66.1, 73.0]" in paths["tex"].read_text()
