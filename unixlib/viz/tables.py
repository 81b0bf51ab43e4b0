"""Tables: every table is written three ways (CSV for machines, Markdown for the README and
notebooks, LaTeX for papers) from one DataFrame, with rows quoted from the paper marked as such.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

# Column that says where a row comes from: this run, or quoted from the paper (PAPER.md).
SOURCE_COL = "source"
FROM_PAPER, THIS_RUN = "paper (quoted)", "this run"


def _markdown(frame: pd.DataFrame, floatfmt: str) -> str:
    """A GitHub-flavoured Markdown table without the optional `tabulate` dependency."""
    cols = [str(c) for c in frame.columns]

    def cell(v: object) -> str:
        if v is pd.NA:  # a missing value of a nullable column (e.g. Int64)
            return ""
        if isinstance(v, float):
            return "" if pd.isna(v) else format(v, floatfmt)
        return str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += [
        "| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)
    ]
    return "\n".join(lines) + "\n"


def save_table(
    frame: pd.DataFrame,
    out_dir: Path,
    stem: str,
    caption: str = "",
    floatfmt: str = ".3f",
) -> dict[str, Path]:
    """Write ``<stem>.csv``, ``<stem>.md`` and ``<stem>.tex`` into ``out_dir``; return the paths.

    The Markdown file starts with the caption (if any) as a paragraph; the LaTeX file is a
    ``table`` environment with the caption and ``label{tab:<stem>}``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {ext: out_dir / f"{stem}.{ext}" for ext in ("csv", "md", "tex")}
    frame.to_csv(paths["csv"], index=False)
    md = (f"{caption}\n\n" if caption else "") + _markdown(frame, floatfmt)
    paths["md"].write_text(md)
    latex = frame.to_latex(index=False, float_format=lambda v: format(v, floatfmt), na_rep="")
    caption_tex = caption.replace("_", r"\_").replace("%", r"\%")
    paths["tex"].write_text(
        "\\begin{table}[t]\n\\centering\n"
        + (f"\\caption{{{caption_tex}}}\n" if caption else "")
        + f"\\label{{tab:{stem}}}\n{latex}\\end{{table}}\n"
    )
    return paths
