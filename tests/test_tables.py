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
